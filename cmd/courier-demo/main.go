// Command courier-demo runs every courier pattern end to end against the
// backend the SDK's configuration points at (AWS_ENDPOINT_URL for an
// emulator), prints a timeline per pattern and a summary table, and writes
// a Mermaid diagram per pattern into demo-out/. make demo runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/courier-aws/courier/internal/demo"
)

func main() {
	pattern := flag.String("pattern", "all", "the pattern to run (all runs every one)")
	out := flag.String("out", "demo-out", "directory for the diagrams")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "courier-demo:", err)
		os.Exit(2)
	}
	if _, err := demo.Run(ctx, cfg, demo.Options{Only: *pattern, OutDir: *out, Out: os.Stdout}); err != nil {
		fmt.Fprintln(os.Stderr, "courier-demo:", err)
		os.Exit(1)
	}
}
