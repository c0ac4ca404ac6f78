package dlq_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/dlq"
)

// A poison message reaches the dead-letter queue after maxReceiveCount
// failed receives; once the bug is fixed, an operator finds the queue's
// DLQ, looks at what sits there, and sends it back. (memaws here; the same
// calls work on SQS, where Redrive uses a message move task.)
func Example() {
	ctx := context.Background()
	mem := memaws.New()
	client := mem.SQS()
	dead, _ := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders-dlq")})
	deadARN, _ := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dead.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	orders, _ := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders"), Attributes: map[string]string{
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"2"}`, deadARN.Attributes["QueueArn"]),
	}})

	p, _ := patterns.NewProducer(client, *orders.QueueUrl)
	_ = p.Send(ctx, &patterns.Message{Body: []byte("order-1")}, &patterns.Message{Body: []byte("order-2")})
	// A buggy consumer receives each order twice and never deletes it;
	// the third receive finds them past maxReceiveCount and SQS moves them.
	for range 3 {
		_, _ = client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: orders.QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 1})
		mem.Advance(2 * time.Second)
	}

	q, _ := dlq.Find(ctx, client, *orders.QueueUrl)
	fmt.Println("dead-letter queue:", q.URL, "after", q.MaxReceiveCount, "receives")
	msgs, _ := dlq.Peek(ctx, client, q.URL)
	for _, m := range msgs {
		fmt.Println("waiting:", m.Body)
	}

	res, err := dlq.Redrive(ctx, client, q.URL)
	fmt.Println("moved", res.Moved, "of", res.ToMove, err)

	// The fixed consumer handles them.
	c, _ := patterns.NewConsumer(client, *orders.QueueUrl, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = slog.New(slog.DiscardHandler)
	})
	runCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	var handled atomic.Int32
	_ = c.Run(runCtx, func(_ context.Context, m *patterns.Message) error {
		fmt.Println("handled", string(m.Body))
		if handled.Add(1) == 2 {
			stop()
		}
		return nil
	})
	// Unordered output:
	// dead-letter queue: http://memaws.invalid/123456789012/orders-dlq after 2 receives
	// waiting: order-1
	// waiting: order-2
	// moved 2 of 2 <nil>
	// handled order-1
	// handled order-2
}
