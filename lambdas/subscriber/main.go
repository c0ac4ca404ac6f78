// Command subscriber is courier's filtered subscriber as a Lambda function:
// it consumes a queue chained to an SNS topic through a subscription with a
// filter policy (SNS envelopes or raw delivery, either); functions.Subscriber
// says what it does with each message.
//
// Configuration: the variables lambdas/contract lists for "subscriber".
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
	h, err := functions.New("subscriber", os.Getenv, functions.Deps{Log: log})
	if err != nil {
		fail(err)
	}
	lambda.Start(adapter.SQSHandler(h, adapter.WithLogger(log)))
}

// fail ends a cold start that cannot work; Lambda reports it as an init error.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "subscriber:", err)
	os.Exit(1)
}
