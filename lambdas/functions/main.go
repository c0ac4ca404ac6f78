package functions

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/lambdas/adapter"
)

// Main is the whole main package of a function in lambdas/: it makes the
// logger and the AWS clients, builds the handler of the function called
// name in lambdas/contract from the environment (New, AdapterOptions) and
// starts the Lambda runtime. app sets the application's logic
// (Deps.Handler, Deps.RequestHandler) or replaces a client; without it the
// function runs courier's example logic. A setting that cannot work ends
// the cold start with the error on stderr, which Lambda reports as an init
// error.
func Main(name string, app ...func(*Deps)) {
	if err := start(name, os.Getenv, os.Stdout, lambda.Start, app...); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// start is Main up to the runtime, which it hands the handler to.
func start(name string, getenv Env, logs io.Writer, run func(handler any), app ...func(*Deps)) error {
	log, err := NewLogger(logs, getenv)
	if err != nil {
		return err
	}
	// LoadDefaultConfig reads the environment the runtime sets (region,
	// credentials, AWS_ENDPOINT_URL); the bound covers a credential
	// process or profile that does not answer.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	// Clients are cheap to make and make no request until used; New and
	// AdapterOptions use those the function's settings call for.
	d := Deps{
		SQS: sqs.NewFromConfig(awsCfg), DynamoDB: dynamodb.NewFromConfig(awsCfg), S3: s3.NewFromConfig(awsCfg), Log: log,
	}
	for _, fn := range app {
		fn(&d)
	}
	h, err := New(name, getenv, d)
	if err != nil {
		return err
	}
	opts, err := AdapterOptions(name, getenv, d)
	if err != nil {
		return err
	}
	run(adapter.SQSHandler(h, append(opts, adapter.WithLogger(log))...))
	return nil
}
