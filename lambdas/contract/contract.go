// Package contract declares, once, the Lambda functions courier ships and the
// environment variables each one reads. lambdas/ reads exactly these names and
// infra/ sets exactly these names; a test on each side checks it.
package contract

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
		{Name: "worker", Env: []string{EnvLogLevel, EnvIdempotencyTable}},
		{Name: "responder", Env: []string{EnvLogLevel, EnvQueueURL, EnvReplyAllowlist}},
		{Name: "aggregator", Env: []string{EnvLogLevel, EnvAggregateTable, EnvResultQueueURL, EnvExpectedResponses}},
		{Name: "subscriber", Env: []string{EnvLogLevel, EnvClaimCheckBucket}},
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
