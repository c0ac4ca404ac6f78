// Command responder is courier's request-response responder as a Lambda
// function: an SQS event source mapping (ReportBatchItemFailures on) feeds
// it requests from its request queue, and it sends each reply to the
// request's return address if the allowlist lets it (functions.Responder,
// functions.LoadResponderConfig).
//
// Configuration: the variables lambdas/contract lists for "responder"; the
// AWS SDK's own (region, credentials, AWS_ENDPOINT_URL) from the runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/functions"
)

func main() {
	log, err := functions.NewLogger(os.Stdout, os.Getenv)
	if err != nil {
		fail(err)
	}
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fail(err)
	}
	h, err := functions.New("responder", os.Getenv, functions.Deps{SQS: sqs.NewFromConfig(awsCfg), Log: log})
	if err != nil {
		fail(err)
	}
	lambda.Start(adapter.SQSHandler(h, adapter.WithLogger(log)))
}

// fail ends a cold start that cannot work; Lambda reports it as an init error.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "responder:", err)
	os.Exit(1)
}
