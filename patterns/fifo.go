package patterns

import "strconv"

// FIFO queues and topics.
//
// What courier does with a FIFO destination (a queue or topic whose name
// ends in .fifo):
//
//   - Sending: every message needs a GroupID (1-128 characters, letters,
//     digits, punctuation), checked before any request. A DeduplicationID
//     is optional when the queue or topic has content-based deduplication;
//     otherwise SQS refuses the entry and the error says so. Batches keep
//     each group's order: a group's messages stay in one lane, sent in
//     order, and after a message of a group fails, the group's later
//     messages in the same Send are not sent (ErrGroupStopped) so that the
//     group's order cannot break. A failed entry is resent only when no
//     later entry of its group was accepted in the same request; otherwise
//     it is reported, with the rest of its group: SendError.Failed lists,
//     in order, what to resend.
//   - Receiving: the Consumer splits each receive into runs per group. A
//     run is handled by one worker, one message at a time, in order; runs of
//     different groups go in parallel up to Workers. When a handler fails,
//     the rest of that group's run is left alone: SQS returns the failed
//     message and the ones behind it, in order, after the visibility
//     timeout, and holds back the group meanwhile. The heartbeat extends
//     the visibility of every received message not yet finished, including
//     those waiting behind a slow one in their run.
//
// High throughput: SQS raises a FIFO queue's limits when deduplication is
// scoped to the message group and the throughput limit is per group.
// FIFOQueueAttributes returns the attributes for CreateQueue.

// FIFOOptions shapes a FIFO queue.
type FIFOOptions struct {
	// ContentBasedDeduplication deduplicates by a SHA-256 of the body when
	// a message has no DeduplicationID.
	ContentBasedDeduplication bool
	// HighThroughput sets DeduplicationScope=messageGroup and
	// FifoThroughputLimit=perMessageGroupId.
	HighThroughput bool
	// VisibilityTimeoutSeconds, when > 0, sets the queue's visibility timeout.
	VisibilityTimeoutSeconds int
}

// FIFOQueueAttributes returns CreateQueue attributes for a FIFO queue.
func FIFOQueueAttributes(o FIFOOptions) map[string]string {
	attrs := map[string]string{"FifoQueue": "true"}
	if o.ContentBasedDeduplication {
		attrs["ContentBasedDeduplication"] = "true"
	}
	if o.HighThroughput {
		attrs["DeduplicationScope"] = "messageGroup"
		attrs["FifoThroughputLimit"] = "perMessageGroupId"
	}
	if o.VisibilityTimeoutSeconds > 0 {
		attrs["VisibilityTimeout"] = strconv.Itoa(o.VisibilityTimeoutSeconds)
	}
	return attrs
}
