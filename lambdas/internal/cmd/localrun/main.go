// Command localrun runs one of courier's Lambda functions on a laptop: the
// function's handler, configured from the environment exactly as in Lambda
// (the variables lambdas/contract lists), fed by the local runner playing
// the SQS event source mapping against the endpoint the AWS SDK is given
// (AWS_ENDPOINT_URL: an emulator). It runs until interrupted.
//
//	eval "$(scripts/emulator.sh env localstack)"
//	go run ./lambdas/internal/cmd/localrun -function worker -queue "$QUEUE_URL"
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/functions"
	"github.com/courier-aws/courier/lambdas/localrunner"
)

func main() {
	name := flag.String("function", "worker", "function in lambdas/contract")
	queue := flag.String("queue", "", "URL of the queue the event source mapping reads")
	batch := flag.Int("batch", 10, "BatchSize")
	window := flag.Duration("window", 0, "MaximumBatchingWindow")
	timeout := flag.Duration("timeout", 30*time.Second, "function timeout")
	concurrency := flag.Int("concurrency", 1, "MaxConcurrency")
	wait := flag.Duration("wait", 20*time.Second, "long-poll wait (shutdown waits for a poll under way)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *name, localrunner.Config{
		QueueURL: *queue, BatchSize: *batch, MaximumBatchingWindow: *window, FunctionTimeout: *timeout,
		MaxConcurrency: *concurrency, WaitTime: *wait, ReportBatchItemFailures: true, FunctionName: *name,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "localrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name string, cfg localrunner.Config) error {
	log, err := functions.NewLogger(os.Stdout, os.Getenv)
	if err != nil {
		return err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	client := sqs.NewFromConfig(awsCfg)
	d := functions.Deps{
		SQS: client, Log: log, DynamoDB: dynamodb.NewFromConfig(awsCfg),
		// An emulator on an IP endpoint takes path-style S3 requests only.
		S3: s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = os.Getenv("AWS_ENDPOINT_URL") != "" }),
	}
	h, err := functions.New(name, os.Getenv, d)
	if err != nil {
		return err
	}
	opts, err := functions.AdapterOptions(name, os.Getenv, d)
	if err != nil {
		return err
	}
	cfg.Logger = log
	r, err := localrunner.New(client, cfg)
	if err != nil {
		return err
	}
	log.Info("local runner started", "function", name, "queue", cfg.QueueURL)
	err = r.Run(ctx, adapter.SQSHandler(h, append(opts, adapter.WithLogger(log))...))
	log.Info("local runner stopped", "stats", fmt.Sprintf("%+v", r.Stats()))
	return err
}
