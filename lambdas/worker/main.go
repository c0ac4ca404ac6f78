// Command worker is courier's one-way worker as a Lambda function: an SQS
// event source mapping (ReportBatchItemFailures on) feeds it batches from
// its queue; functions.Worker says what it does with each message. With
// COURIER_IDEMPOTENCY_TABLE set it runs each message once
// (patterns.Idempotent on a DynamoDB store), whatever SQS redelivers; with
// COURIER_RETRY_BACKOFF set a failed job comes back after an exponential
// backoff instead of the queue's visibility timeout.
//
// Configuration: the variables lambdas/contract lists for "worker".
package main

import "github.com/courier-aws/courier/lambdas/functions"

func main() { functions.Main("worker") }
