// Package functions holds courier's Lambda functions, so that a test (or
// the local runner) reaches exactly what each main package in lambdas/
// runs. A function is generic: New reads every setting from the
// environment variables declared in lambdas/contract, and nothing else,
// and the application's logic comes in Deps. The worker, subscriber and
// responder courier deploys run example logic (Worker, Subscriber, Echo)
// that shows them working; a service's own function is one line:
//
//	func main() {
//		functions.Main("worker", func(d *functions.Deps) { d.Handler = handleOrder })
//	}
//
// and gets the configuration of the contract (idempotency, retry backoff,
// claim check, log level) with it.
package functions

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/patterns"
)

// Env reads an environment variable: os.Getenv, or a map in tests.
type Env func(string) string

// Deps is what a function takes from outside its configuration.
type Deps struct {
	// SQS is the client of the responder (replies), the aggregator
	// (completed aggregates), and of the retry backoff of the worker and
	// the subscriber (COURIER_RETRY_BACKOFF; an *sqs.Client).
	SQS patterns.SQSAPI
	// DynamoDB is the client of the aggregator's store (the table
	// COURIER_AGGREGATE_TABLE names) and of the worker's idempotency
	// records (COURIER_IDEMPOTENCY_TABLE).
	DynamoDB interface {
		patterns.DynamoDBAPI
		patterns.DynamoDBIdempotencyAPI
	}
	// S3 is the client the subscriber resolves claim-check pointers with
	// (the bucket COURIER_CLAIM_CHECK_BUCKET names).
	S3 patterns.ClaimCheckAPI
	// Store, when set, is the aggregator's store instead (tests).
	Store patterns.AggregateStore
	Log   *slog.Logger

	// Handler is the application's logic of the worker and the subscriber:
	// what each message is for. nil runs the example logic courier ships
	// (Worker: digest and log each job; Subscriber: log each message),
	// which shows the function working and nothing more.
	Handler patterns.Handler
	// RequestHandler is the application's logic of the responder: the
	// reply to each request. nil runs Echo, the example.
	RequestHandler patterns.RequestHandler
}

// ErrNoAggregateStore: the aggregator was given neither a store nor a
// DynamoDB client.
var ErrNoAggregateStore = errors.New("courier: the aggregator needs a DynamoDB client (or a store)")

// NewLogger returns the JSON logger the functions log with, at the level
// COURIER_LOG_LEVEL names (debug, info, warn, error; default info). JSON,
// because CloudWatch Logs Insights queries its fields.
func NewLogger(w io.Writer, getenv Env) (*slog.Logger, error) {
	var level slog.Level
	if s := getenv(contract.EnvLogLevel); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			return nil, fmt.Errorf("%w: %s=%q: %v", patterns.ErrInvalidConfig, contract.EnvLogLevel, s, err)
		}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// New returns the handler of the function called name in
// contract.Functions(), configured from getenv. A missing or invalid
// setting is an error here, at cold start, not at the first message.
func New(name string, getenv Env, d Deps) (patterns.Handler, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	switch name {
	case "worker":
		work := d.Handler
		if work == nil {
			work = Worker(d.Log)
		}
		table := getenv(contract.EnvIdempotencyTable)
		if table == "" {
			return work, nil
		}
		if d.DynamoDB == nil {
			return nil, fmt.Errorf("%w: %s=%s but no DynamoDB client", patterns.ErrInvalidConfig, contract.EnvIdempotencyTable, table)
		}
		store, err := patterns.NewDynamoDBIdempotencyStore(d.DynamoDB, table)
		if err != nil {
			return nil, err
		}
		return patterns.Idempotent(work, store, func(o *patterns.IdempotencyOptions) { o.Logger = d.Log })
	case "subscriber":
		if d.Handler != nil {
			return d.Handler, nil
		}
		return Subscriber(d.Log), nil
	case "responder":
		queueURL, o, err := LoadResponderConfig(getenv)
		if err != nil {
			return nil, err
		}
		answer := d.RequestHandler
		if answer == nil {
			answer = Echo
		}
		return Responder(d.SQS, queueURL, o, answer, d.Log)
	case "aggregator":
		cfg, err := LoadAggregatorConfig(getenv)
		if err != nil {
			return nil, err
		}
		store := d.Store
		if store == nil {
			if d.DynamoDB == nil {
				return nil, fmt.Errorf("%w (table %s)", ErrNoAggregateStore, cfg.Table)
			}
			if store, err = patterns.NewDynamoDBAggregateStore(d.DynamoDB, cfg.Table); err != nil {
				return nil, err
			}
		}
		return Aggregator(d.SQS, store, cfg, d.Log)
	}
	return nil, fmt.Errorf("%w: no function %q in lambdas/contract", patterns.ErrInvalidConfig, name)
}

// required reads a variable that must be set.
func required(getenv Env, name string) (string, error) {
	v := getenv(name)
	if v == "" {
		return "", fmt.Errorf("%w: %s is not set", patterns.ErrInvalidConfig, name)
	}
	return v, nil
}

// AdapterOptions returns the adapter options function name runs with, from
// the variables lambdas/contract lists for it: COURIER_RETRY_BACKOFF spaces
// its retries (and then needs d.SQS), COURIER_CLAIM_CHECK_BUCKET resolves
// claim-check pointers (and then needs d.S3). A main package passes them to adapter.SQSHandler
// with its logger.
func AdapterOptions(name string, getenv Env, d Deps) ([]func(*adapter.Options), error) {
	fn, _ := contract.Lookup(name)
	setting := func(v string) string { // only the variables fn reads
		if !slices.Contains(fn.Env, v) {
			return ""
		}
		return getenv(v)
	}
	var opts []func(*adapter.Options)
	if s := setting(contract.EnvRetryBackoff); s != "" {
		base, max, err := contract.ParseRetryBackoff(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", patterns.ErrInvalidConfig, err)
		}
		backoff := patterns.ExponentialBackoff(base, max)
		vis, ok := d.SQS.(adapter.VisibilityAPI)
		if !ok {
			return nil, fmt.Errorf("%w: %s=%s but no SQS client that can change visibility", patterns.ErrInvalidConfig, contract.EnvRetryBackoff, s)
		}
		opts = append(opts, func(o *adapter.Options) { o.Backoff, o.SQS = backoff, vis })
	}
	if bucket := setting(contract.EnvClaimCheckBucket); bucket != "" {
		if d.S3 == nil {
			return nil, fmt.Errorf("%w: %s=%s but no S3 client", patterns.ErrInvalidConfig, contract.EnvClaimCheckBucket, bucket)
		}
		// A topic's payloads are shared by every subscription: never
		// deleted here; the bucket's lifecycle rule removes them (infra).
		cc, err := patterns.NewClaimCheck(d.S3, bucket, func(o *patterns.ClaimCheckOptions) { o.KeepObjects = true })
		if err != nil {
			return nil, err
		}
		opts = append(opts, func(o *adapter.Options) { o.ClaimCheck = cc })
	}
	return opts, nil
}
