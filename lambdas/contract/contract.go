// Package contract declares, once, the Lambda functions courier ships and the
// environment variables each one reads. lambdas/ reads exactly these names and
// infra/ sets exactly these names; a test on each side checks it.
package contract

import (
	"fmt"
	"strings"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// Environment variable names read by the functions in lambdas/.
const (
	// EnvLogLevel is the slog level (debug, info, warn, error); all functions read it.
	EnvLogLevel = "COURIER_LOG_LEVEL"
	// EnvQueueURL is the queue a function consumes (the responder's request
	// queue: its default reply allowlist is its own account).
	EnvQueueURL = "COURIER_QUEUE_URL"
	// EnvReplyAllowlist is a comma-separated list of queue-URL prefixes or
	// queue ARNs patterns a responder may reply to.
	EnvReplyAllowlist = "COURIER_REPLY_ALLOWLIST"
	// EnvAggregateTable is the DynamoDB table holding scatter-gather state.
	EnvAggregateTable = "COURIER_AGGREGATE_TABLE"
	// EnvResultQueueURL is where the aggregator's processor sends completed aggregates.
	EnvResultQueueURL = "COURIER_RESULT_QUEUE_URL"
	// EnvExpectedResponses is how many responses complete an aggregate
	// that no scatterer opened.
	EnvExpectedResponses = "COURIER_EXPECTED_RESPONSES"
	// EnvIdempotencyTable is the DynamoDB table of the worker's
	// idempotency records; empty: the worker is not idempotent.
	EnvIdempotencyTable = "COURIER_IDEMPOTENCY_TABLE"
	// EnvClaimCheckBucket is the S3 bucket the subscriber resolves
	// claim-check pointers from (patterns.ClaimCheck): payloads published
	// above the topic's limit. Payloads are shared by the topic's
	// subscriptions, so the function never deletes them; the bucket's
	// lifecycle rule does.
	EnvClaimCheckBucket = "COURIER_CLAIM_CHECK_BUCKET"
	// EnvRetryBackoff spaces the retries of a message whose handler failed
	// (patterns.ExponentialBackoff with jitter): "<base>,<max>" as Go
	// durations, e.g. "5s,15m". Empty: a failed message comes back after
	// the queue's visibility timeout. The function's role then needs
	// sqs:ChangeMessageVisibility and sqs:GetQueueUrl on its queue (infra
	// grants them when it sets the variable).
	EnvRetryBackoff = "COURIER_RETRY_BACKOFF"
)

// Function describes one Lambda function in lambdas/: its directory name
// under lambdas/ (also the asset zip name) and the variables it reads.
type Function struct {
	Name string
	Env  []string
}

// Functions lists every function courier ships.
func Functions() []Function {
	return []Function{
		{Name: "worker", Env: []string{EnvLogLevel, EnvIdempotencyTable, EnvRetryBackoff}},
		{Name: "responder", Env: []string{EnvLogLevel, EnvQueueURL, EnvReplyAllowlist}},
		{Name: "aggregator", Env: []string{EnvLogLevel, EnvAggregateTable, EnvResultQueueURL, EnvExpectedResponses}},
		{Name: "subscriber", Env: []string{EnvLogLevel, EnvClaimCheckBucket, EnvRetryBackoff}},
	}
}

// Lookup returns the function named name.
func Lookup(name string) (Function, bool) {
	for _, f := range Functions() {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// ParseRetryBackoff reads a COURIER_RETRY_BACKOFF value, "<base>,<max>"
// as Go durations with 0 < base <= max <= 12h (the longest visibility
// timeout SQS takes). infra checks the value it sets with it; the
// functions read it with it.
func ParseRetryBackoff(s string) (base, max time.Duration, err error) {
	b, m, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, fmt.Errorf("%s=%q: want \"<base>,<max>\", e.g. \"5s,15m\"", EnvRetryBackoff, s)
	}
	if base, err = time.ParseDuration(strings.TrimSpace(b)); err == nil {
		max, err = time.ParseDuration(strings.TrimSpace(m))
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%s=%q: %w", EnvRetryBackoff, s, err)
	}
	if base <= 0 || max < base || max > patterns.MaxVisibilityTimeout {
		return 0, 0, fmt.Errorf("%s=%q: want 0 < base <= max <= 12h", EnvRetryBackoff, s)
	}
	return base, max, nil
}
