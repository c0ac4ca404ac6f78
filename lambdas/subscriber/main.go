// Command subscriber is courier's filtered subscriber as a Lambda function:
// it consumes a queue chained to an SNS topic through a subscription with a
// filter policy (SNS envelopes or raw delivery, either); functions.Subscriber
// says what it does with each message. With COURIER_CLAIM_CHECK_BUCKET set
// it reads payloads published through a claim check (patterns.ClaimCheck)
// from that bucket.
//
// Configuration: the variables lambdas/contract lists for "subscriber".
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
	bucket, backoff := os.Getenv(contract.EnvClaimCheckBucket), os.Getenv(contract.EnvRetryBackoff)
	if bucket != "" || backoff != "" {
		awsCfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			fail(err)
		}
		if bucket != "" {
			d.S3 = s3.NewFromConfig(awsCfg)
		}
		if backoff != "" {
			d.SQS = sqs.NewFromConfig(awsCfg)
		}
	}
	h, err := functions.New("subscriber", os.Getenv, d)
	if err != nil {
		fail(err)
	}
	opts, err := functions.AdapterOptions("subscriber", os.Getenv, d)
	if err != nil {
		fail(err)
	}
	lambda.Start(adapter.SQSHandler(h, append(opts, adapter.WithLogger(log))...))
}

// fail ends a cold start that cannot work; Lambda reports it as an init error.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "subscriber:", err)
	os.Exit(1)
}
