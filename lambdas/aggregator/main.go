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

import "github.com/courier-aws/courier/lambdas/functions"

func main() { functions.Main("aggregator") }
