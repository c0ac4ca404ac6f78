// Package cdkpatterns provisions courier's messaging patterns with the AWS
// CDK: one construct per pattern, each a function NewX(scope, id, props)
// returning the resources a caller needs.
//
//	NewQueueWithDLQ          one-way, point-to-point, competing consumers
//	NewQueueFunction         a Lambda function from lambdas/ on a queue
//	NewRequestResponse       request queue + responder function
//	NewTopicQueueChain       publish-subscribe, fan-out, message filter
//	NewFIFOChain             FIFO topic + FIFO queues, high throughput
//	NewRecipientListTargets  the queues and topics a router sends to
//	NewScatterGather         scatter topic, responders, aggregator, state table
//
// Secure by default: every queue has a DLQ (the DLQs are the end of the
// chain) and SSE (SQS-managed, or a KMS key you pass); queues and topics
// refuse requests without TLS; topics are encrypted (the AWS-managed key
// alias/aws/sns, or yours); a topic may send only to the queues subscribed
// to it (queue policies carry aws:SourceArn); grants name exact actions,
// never wildcards. A function reads exactly the environment variables
// lambdas/contract declares for it, and the queue it consumes keeps a
// message invisible for at least six times the function's timeout (plus the
// batching window), as Lambda's documentation asks.
//
// Invalid props are reported as construct validation errors: cdk synth (and
// any assertion on the stack) fails, naming the construct and the reason.
//
// Constructs that hold both messaging resources and functions (request-
// response, scatter-gather) take a FunctionScope: the functions go there
// (another stack) and the queues, topics and tables stay in scope, so that
// the messaging stack deploys on its own.
//
// The constructs carry the cdk-nag suppressions they need, each with its
// reason, so that a caller running the AwsSolutions and Serverless packs sees
// only findings about its own resources.
package cdkpatterns
