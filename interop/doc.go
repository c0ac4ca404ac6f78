// Package interop tests courier against peers in another language, over
// real emulators (LocalStack, moto): Python programs (interop/python),
// written from docs/wire.md alone and not from courier's Go source, and
// the AWS Extended Clients for Python.
//
//   - request-response both ways: a boto3 requester calls a courier
//     Responder, and a courier Requester calls a boto3 responder, each with
//     a normal reply and an error reply;
//   - claim check both ways: the Python SQS Extended Client sends a large
//     message with 9 user attributes that a courier Consumer reads, and a
//     courier Producer sends one that the Python client reads;
//   - claim check through SNS: the Python SNS Extended Client publishes to
//     a topic that courier reads from subscribed queues (raw and
//     enveloped), and a courier Publisher publishes what the Python SQS
//     Extended Client reads from a raw subscription.
//
// The Python programs run in .venv-peers, which scripts/peers.sh makes
// (make test runs it); without it the tests skip and say so. The package
// has no non-test code besides this comment.
package interop
