package localrunner_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// A Lambda handler run on a laptop against an emulator (AWS_ENDPOINT_URL),
// as the event source mapping would run it in AWS. (No Output: it needs a
// running emulator and runs until interrupted.)
func ExampleRunner() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	handle := func(ctx context.Context, m *patterns.Message) error {
		fmt.Println("got", string(m.Body))
		return nil
	}
	r, err := localrunner.New(sqs.NewFromConfig(awsCfg), localrunner.Config{
		QueueURL:                os.Getenv("QUEUE_URL"),
		BatchSize:               10,
		ReportBatchItemFailures: true, // as infra/ configures the mapping
		FunctionTimeout:         30 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := r.Run(ctx, adapter.SQSHandler(handle)); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%+v\n", r.Stats())
}
