package memaws_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

func orderHandler(context.Context, *patterns.Message) error { return nil }

// TestOrderHandler is README.md's "Testing your own handlers" snippet, kept
// here so that it compiles and passes.
func TestOrderHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // visibility timeouts and long polls on a fake clock
		mem := memaws.New()
		ctx, cancel := context.WithCancel(t.Context())
		q, _ := mem.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders")})
		p, _ := patterns.NewProducer(mem.SQS(), *q.QueueUrl)
		_ = p.Send(ctx, &patterns.Message{Body: []byte(`{"id":1}`)})

		// This consumer's calls fail the way SQS fails under load.
		throttled := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
			if c.Operation == "DeleteMessageBatch" && c.Attempt == 1 {
				return memaws.Fault{Err: memaws.Throttled("sqs")}
			}
			return memaws.Fault{}
		})
		c, _ := patterns.NewConsumer(mem.SQS(memaws.WithFaults(throttled)), *q.QueueUrl)
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, orderHandler) }()
		time.Sleep(time.Minute) // no real time passes
		cancel()
		if err := <-done; err != nil { // Run finishes its graceful shutdown
			t.Fatal(err)
		}
		if left := mem.Messages(*q.QueueUrl); len(left) != 0 {
			t.Errorf("not handled: %+v", left)
		}
	})
}
