// Package patterns is courier's catalogue of messaging patterns on Amazon
// SQS and SNS, each built from three parts:
//
//   - Message: body, attributes and the headers patterns need (correlation
//     id, return address, group id, deduplication id, trace context);
//     courier's headers travel packed in one message attribute.
//   - Producer: batched sends that are checked before any request and
//     report each message's fate (a message is reported sent only when SQS
//     accepted it).
//   - Consumer: long polling, a bounded worker pool, visibility heartbeat,
//     batched deletes after success, FIFO group order, graceful shutdown.
//
// The patterns, each in its files:
//
//   - One-way messaging (oneway.go): Sender, Receiver.
//   - Point-to-point with competing consumers (pointtopoint.go): CompetingConsumers.
//   - Request-response (requester.go, responder.go, returnaddress.go,
//     outbox.go, call.go, replyqueue.go): Requester, Responder, Call,
//     HandleCall, Sweep. The return address and the correlation id travel
//     in the message; one reply queue per Requester serves any number of
//     concurrent calls.
//   - Publish-subscribe and topic-queue chaining (publisher.go, fanout.go,
//     subscriber.go): Publisher, Chain, HTTPSubscriber.
//   - Scatter-gather (scatterer.go, aggregator.go, scattergather.go,
//     aggregatestore*.go): Scatterer, Aggregator, ScatterGather.
//   - Recipient list (recipientlist.go): RecipientList. Rules written in Go
//     compute each message's destinations (queues and topics); copies are
//     batched per destination, checked before any request, and a
//     destination that fails is reported (RecipientError) while the others
//     still receive.
//
// # One shape for every constructor
//
// Every constructor is called the way the AWS SDK's are:
//
//	x, err := patterns.NewX(clients..., required..., optFns...)
//
// First the clients, as narrow interfaces that the SDK's *sqs.Client,
// *sns.Client, *s3.Client and *dynamodb.Client satisfy; then what X cannot
// work without (the queue URL, topic ARN, bucket, table, store or handler
// it is for); then any number of func(*XOptions) that change X's options,
// a struct whose zero values mean the defaults. The constructor applies
// them in order, checks the result and returns an error wrapping
// ErrInvalidConfig that names the field; it never panics. A prepared
// XOptions value goes in whole as func(o *XOptions) { *o = prepared }.
// Examples:
//
//	c, err := patterns.NewConsumer(sqsClient, queueURL, func(o *patterns.ConsumerOptions) { o.Workers = 4 })
//	p, err := patterns.NewProducer(sqsClient, queueURL)
//	r, err := patterns.NewResponder(sqsClient, requestQueueURL, func(o *patterns.ResponderOptions) { o.AllowNames = []string{"billing-reply-*"} })
//
// What crosses every pattern (Logger, Tracer, Metrics, ClaimCheck,
// Backoff) is a field of the options. What changes how a message is
// handled is a handler wrapper, a function from Handler to Handler (or
// with options, to (Handler, error)), applied before Run: Idempotent,
// JSONHandler, Recover; Call and HandleCall do the same for typed
// request-response. The errors a caller can branch on are the Err*
// sentinels (errors.Is) and the types *SendError, *RecipientError,
// *RemoteError and *OpError (errors.As).
//
// Options on the core: retry backoff (ConsumerOptions.Backoff,
// ExponentialBackoff), SQS fair-queue tenant keys (ProducerOptions.TenantKey),
// and the attribute budget (ErrTooManyAttributes, checked before sending).
//
// Clients are the SDK's own (*sqs.Client, *sns.Client) behind narrow
// interfaces; endpoints come from the SDK's configuration
// (AWS_ENDPOINT_URL for an emulator). Errors are values: test them with
// errors.Is against the Err* sentinels; AWS errors are classified in one
// table (Classify) and wrapped with the operation and resource (OpError).
package patterns
