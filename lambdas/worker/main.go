// Command worker is courier's one-way worker as a Lambda function: an SQS
// event source mapping (ReportBatchItemFailures on) feeds it batches from
// its queue; functions.Worker says what it does with each message. With
// COURIER_IDEMPOTENCY_TABLE set it runs each message once
// (patterns.Idempotent on a DynamoDB store), whatever SQS redelivers; with
// COURIER_RETRY_BACKOFF set a failed job comes back after an exponential
// backoff instead of the queue's visibility timeout.
//
// Configuration: the variables lambdas/contract lists for "worker".
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/lambdas/functions"
)

func main() {
	log, err := functions.NewLogger(os.Stdout, os.Getenv)
	if err != nil {
		fail(err)
	}
	d := functions.Deps{Log: log}
	table, backoff := os.Getenv(contract.EnvIdempotencyTable), os.Getenv(contract.EnvRetryBackoff)
	if table != "" || backoff != "" {
		awsCfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			fail(err)
		}
		if table != "" {
			d.DynamoDB = dynamodb.NewFromConfig(awsCfg)
		}
		if backoff != "" {
			d.SQS = sqs.NewFromConfig(awsCfg)
		}
	}
	h, err := functions.New("worker", os.Getenv, d)
	if err != nil {
		fail(err)
	}
	opts, err := functions.AdapterOptions("worker", os.Getenv, d)
	if err != nil {
		fail(err)
	}
	lambda.Start(adapter.SQSHandler(h, append(opts, adapter.WithLogger(log))...))
}

// fail ends a cold start that cannot work; Lambda reports it as an init error.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "worker:", err)
	os.Exit(1)
}
