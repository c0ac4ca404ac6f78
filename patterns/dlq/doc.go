// Package dlq reads and empties SQS dead-letter queues: Find a queue's
// dead-letter queue from its redrive policy, Peek at what sits there
// without consuming it, and Redrive it back to where it came from (or to
// another queue).
//
// Every function takes the client (an *sqs.Client satisfies API) and the
// SDK's style of options, optFns ...func(*XOptions); options that cannot
// work fail before any request with patterns.ErrInvalidConfig.
//
// # Peek
//
// SQS has no way to read a message without receiving it. Peek receives
// with a short visibility timeout (PeekOptions.Hold) and, when it has what
// it wanted, sets the visibility of every message it received back to 0,
// so they are at once visible again, in their order (FIFO). We chose that
// over receiving with VisibilityTimeout 0: a message received with 0 stays
// visible, so the next receive of the same Peek returns it again and a
// Peek could never see past the first ten (on a FIFO queue, past the head
// of a group). The cost: while a Peek runs (and for at most Hold if the
// process dies), consumers do not get the messages it holds. Either way a
// receive counts: ApproximateReceiveCount goes up by one per Peek, which
// on a queue that has a redrive policy brings its messages nearer to
// their dead-letter queue. On a dead-letter queue (the usual target) it
// does not matter unless that queue has a redrive policy of its own.
//
// # Redrive
//
// Redrive uses SQS's StartMessageMoveTask on standard queues where the
// backend has it, and follows the task until it ends; where it does not
// (moto answers with an HTML error page), and on FIFO queues, it moves the
// messages itself: receive, send, and delete only what the destination
// accepted. So nothing is lost; a message is sent twice only when its
// delete fails after its send was accepted, which at-least-once delivery
// allows, and Redrive then stops and says which (ErrNotDeleted).
//
// Why not the move task for FIFO queues (it can still be asked for,
// Method MoveTask): it re-sends each message with the deduplication id
// it has in the dead-letter queue. AWS gives a message its own message id
// as deduplication id when it moves it to a FIFO dead-letter queue, so
// that is safe there; but LocalStack and memaws keep the first send's id,
// and LocalStack's move task then has the source queue drop, as
// duplicates, every message first sent less than five minutes ago, while
// it reports them moved (TestRedrive found all 12 lost). Copy decides per
// message, and keeps the order itself.
//
// Copy on FIFO queues moves one message group at a time, in order, one
// message per SendMessage, and keeps MessageGroupId and
// MessageDeduplicationId, unless SQS could hold that id against the
// message's first send (it is not the message's id and that send is less
// than the five-minute deduplication window ago): then the message gets a
// deduplication id derived from its old one and its message id, stable
// across retries, so a resend of it is still deduplicated.
// Result.NewDeduplicationIDs counts them.
package dlq
