package backend

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// FailToDLQ receives the messages of q (made with MaxReceiveCount) and
// makes them visible again at once, again and again, until SQS has moved
// want of them to q's dead-letter queue, as a consumer that always fails
// would; it fails the test after 20 seconds.
func (b *Backend) FailToDLQ(t testing.TB, q Queue, want int) {
	t.Helper()
	client := b.SQS()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		visible, inflight := b.Counts(t, q.DLQURL)
		if visible+inflight >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d messages reached the dead-letter queue %s", b.Name, visible+inflight, want, q.DLQURL)
		}
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatalf("receive %s: %v", q.URL, err)
		}
		var entries []types.ChangeMessageVisibilityBatchRequestEntry
		for i, m := range out.Messages {
			entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
			})
		}
		if len(entries) > 0 {
			if _, err := client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.URL), Entries: entries}); err != nil {
				t.Fatalf("release %s: %v", q.URL, err)
			}
		}
	}
}
