// Command worker is courier's one-way worker as a Lambda function: an SQS
// event source mapping (ReportBatchItemFailures on) feeds it batches from
// its queue; functions.Worker says what it does with each message.
//
// Configuration: the variables lambdas/contract lists for "worker".
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/functions"
)

func main() {
	log, err := functions.NewLogger(os.Stdout, os.Getenv)
	if err != nil {
		fail(err)
	}
	h, err := functions.New("worker", os.Getenv, functions.Deps{Log: log})
	if err != nil {
		fail(err)
	}
	lambda.Start(adapter.SQSHandler(h, adapter.WithLogger(log)))
}

// fail ends a cold start that cannot work; Lambda reports it as an init error.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "worker:", err)
	os.Exit(1)
}
