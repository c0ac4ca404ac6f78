// Command responder is courier's request-response responder as a Lambda
// function: an SQS event source mapping (ReportBatchItemFailures on) feeds
// it requests from its request queue, and it sends each reply to the
// request's return address if the allowlist lets it (functions.Responder,
// functions.LoadResponderConfig).
//
// Configuration: the variables lambdas/contract lists for "responder"; the
// AWS SDK's own (region, credentials, AWS_ENDPOINT_URL) from the runtime.
package main

import "github.com/courier-aws/courier/lambdas/functions"

func main() { functions.Main("responder") }
