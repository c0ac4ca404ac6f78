package memaws_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// A handler's unit test: the queue, the producer and the consumer all run
// in the test's process, on the SDK's own clients, with nothing to start.
func Example() {
	mem := memaws.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, err := mem.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders")})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := patterns.NewProducer(mem.SQS(), *q.QueueUrl)
	if err := p.Send(ctx, &patterns.Message{Body: []byte("order-1")}); err != nil {
		fmt.Println(err)
		return
	}
	c, _ := patterns.NewConsumer(mem.SQS(), *q.QueueUrl, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = slog.New(slog.DiscardHandler)
	})
	_ = c.Run(ctx, func(_ context.Context, m *patterns.Message) error {
		fmt.Println("handled", string(m.Body))
		cancel()
		return nil
	})
	// Output: handled order-1
}

// Faults are injected per call: here SQS fails the second entry of a
// batch, as it may under load, and the producer reports exactly that
// message as not sent.
func ExampleInjectorFunc() {
	failSecond := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
		if c.Operation == "SendMessageBatch" {
			return memaws.Fault{FailEntries: map[int]memaws.EntryError{1: {Code: "InvalidParameterValue", Message: "injected", SenderFault: true}}}
		}
		return memaws.Fault{}
	})
	mem := memaws.New()
	ctx := context.Background()
	q, _ := mem.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders")})
	p, _ := patterns.NewProducer(mem.SQS(memaws.WithFaults(failSecond)), *q.QueueUrl)
	err := p.Send(ctx, &patterns.Message{Body: []byte("a")}, &patterns.Message{Body: []byte("b")}, &patterns.Message{Body: []byte("c")})
	var se *patterns.SendError
	if errors.As(err, &se) {
		for _, f := range se.Failed {
			fmt.Println("not sent:", string(f.Message.Body))
		}
	}
	fmt.Println("stored:", len(mem.Messages(*q.QueueUrl)))
	// Output:
	// not sent: b
	// stored: 2
}
