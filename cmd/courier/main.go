// Command courier does the chores of running courier's queues and topics
// from a shell: send, tail, peek, dlq (show, redrive), filter, stats.
//
//	go install github.com/courier-aws/courier/cmd/courier@latest
//	courier -h
//
// It reads the standard AWS configuration (AWS_PROFILE, AWS_REGION,
// AWS_ENDPOINT_URL, ...) as every SDK does. Exit status: 0 done, 1 an AWS
// or runtime error (or, for filter, an invalid policy), 2 bad input.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], &env{
		in: os.Stdin, out: os.Stdout, err: os.Stderr, tty: isTerminal(os.Stdout),
		load: loadConfig,
	})
	stop()
	os.Exit(code)
}

func loadConfig(ctx context.Context, g globals) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if g.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(g.profile))
	}
	if g.region != "" {
		opts = append(opts, config.WithRegion(g.region))
	}
	if g.endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(g.endpoint))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
