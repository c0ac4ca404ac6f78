// Command aggregator is the gather half of courier's scatter-gather as a
// Lambda function: an SQS event source mapping (ReportBatchItemFailures
// on) feeds it responses from the response queue; it groups them by
// correlation id in a DynamoDB table (conditional writes: concurrent
// invocations complete each aggregate once) and sends each completed
// aggregate to the result queue (functions.Aggregator).
//
// Configuration: the variables lambdas/contract lists for "aggregator"; the
// AWS SDK's own (region, credentials, AWS_ENDPOINT_URL) from the runtime.
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
	h, err := functions.New("aggregator", os.Getenv, functions.Deps{
		SQS: sqs.NewFromConfig(awsCfg), DynamoDB: dynamodb.NewFromConfig(awsCfg), Log: log,
	})
	if err != nil {
		fail(err)
	}
	lambda.Start(adapter.SQSHandler(h, adapter.WithLogger(log)))
}

// fail ends a cold start that cannot work; Lambda reports it as an init error.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "aggregator:", err)
	os.Exit(1)
}
