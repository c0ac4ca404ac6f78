// Command subscriber is courier's filtered subscriber as a Lambda function:
// it consumes a queue chained to an SNS topic through a subscription with a
// filter policy (SNS envelopes or raw delivery, either); functions.Subscriber
// says what it does with each message. With COURIER_CLAIM_CHECK_BUCKET set
// it reads payloads published through a claim check (patterns.ClaimCheck)
// from that bucket.
//
// Configuration: the variables lambdas/contract lists for "subscriber".
package main

import "github.com/courier-aws/courier/lambdas/functions"

func main() { functions.Main("subscriber") }
