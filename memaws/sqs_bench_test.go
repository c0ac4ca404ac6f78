package memaws_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// BenchmarkDeepQueue sends b.N messages in batches, then receives and
// deletes them all: the cost per message should not grow with the depth.
func BenchmarkDeepQueue(b *testing.B) {
	for _, fifo := range []bool{false, true} {
		b.Run(fmt.Sprintf("fifo=%v", fifo), func(b *testing.B) {
			ctx := context.Background()
			_, c, url := qServer(b, "deep", nil)
			if fifo {
				url = qCreate(b, c, "deep.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
			}
			for i := 0; i < b.N; i += 10 {
				var es []types.SendMessageBatchRequestEntry
				for j := range 10 {
					e := types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(fmt.Sprint("m", i+j))}
					if fifo {
						e.MessageGroupId = aws.String(fmt.Sprint("g", (i+j)%50))
					}
					es = append(es, e)
				}
				if _, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: es}); err != nil {
					b.Fatal(err)
				}
			}
			for left := b.N; left > 0; {
				out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
				if err != nil {
					b.Fatal(err)
				}
				if len(out.Messages) == 0 {
					break
				}
				var es []types.DeleteMessageBatchRequestEntry
				for i, m := range out.Messages {
					es = append(es, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
				}
				if _, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: es}); err != nil {
					b.Fatal(err)
				}
				left -= len(out.Messages)
			}
		})
	}
}
