// Package memaws is an in-memory Amazon SQS, SNS and (the few calls of) S3
// for tests, the way net/http/httptest is an in-memory HTTP server: a test
// makes a Server, hands its clients to the code under test, and nothing
// else runs: no emulator, no socket, no Docker.
//
//	mem := memaws.New()
//	p, _ := patterns.NewProducer(mem.SQS(), url)
//
// # Why it speaks the wire protocols
//
// A Server is an aws.HTTPClient: the SDK's own *sqs.Client, *sns.Client and
// *s3.Client talk to it, over SQS's JSON 1.0 protocol, SNS's query protocol
// and S3's REST protocol, without a network in between. We chose that over
// implementing courier's narrow client interfaces directly because
//   - the SDK's retryer, error decoding (typed errors such as
//     *types.QueueDoesNotExist, smithy.APIError codes) and MD5 checks run
//     inside a test exactly as they run against AWS, so a fault the Server
//     injects reaches courier the way a real one does;
//   - code that calls the SDK directly (sqs.NewFromConfig(mem.Config()))
//     runs on it unchanged, and so does every courier test written against
//     an emulator: the conformance suite runs on it as a third backend;
//   - it has no goroutines of its own and no sockets, so it runs inside a
//     testing/synctest bubble, where visibility timeouts, long polls and
//     delays take no real time.
//
// # What it follows
//
// AWS's documented behaviour, not an emulator's: visibility timeouts and
// ApproximateReceiveCount, redrive to a dead-letter queue after
// maxReceiveCount, long polling, delays, batch limits and validation with
// AWS's error codes, FIFO queues (group order, a group held while one of
// its messages is in flight, deduplication for five minutes by id or
// content), SNS topics with raw and enveloped SQS subscriptions, filter
// policies (evaluated by patterns/filter), FIFO topics. Where it and an
// emulator differ, localstack/FIDELITY.md says which follows AWS.
//
// # Faults
//
// An Injector decides, per call, what goes wrong: a whole request refused
// (throttling, 500s), single batch entries failed, the response lost after
// the operation took effect, a slow or hung call, a standard-queue message
// delivered twice. Server.Advance moves the server's clock forward (a
// consumer paused past its visibility timeout). Faults are seeded by the
// caller, so a failing run replays exactly.
package memaws
