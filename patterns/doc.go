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
// The patterns, one file each:
//
//   - One-way messaging (oneway.go): Sender, Receiver.
//   - Point-to-point with competing consumers (pointtopoint.go): CompetingConsumers.
//   - Request-response (requestreply.go, replyqueue.go): Requester,
//     Responder, Call, HandleCall, Sweep. The return address and the
//     correlation id travel in the message; one reply queue per Requester
//     serves any number of concurrent calls.
//   - Recipient list (recipientlist.go): RecipientList. Rules written in Go
//     compute each message's destinations (queues and topics); copies are
//     batched per destination, checked before any request, and a
//     destination that fails is reported (RecipientError) while the others
//     still receive.
//
// Options on the core: retry backoff (ConsumerConfig.Backoff,
// ExponentialBackoff), SQS fair-queue tenant keys (ProducerOptions.TenantKey),
// and the attribute budget (ErrTooManyAttributes, checked before sending).
//
// Clients are the SDK's own (*sqs.Client, *sns.Client) behind narrow
// interfaces; endpoints come from the SDK's configuration
// (AWS_ENDPOINT_URL for an emulator). Errors are values: test them with
// errors.Is against the Err* sentinels; AWS errors are classified in one
// table (Classify) and wrapped with the operation and resource (OpError).
package patterns
