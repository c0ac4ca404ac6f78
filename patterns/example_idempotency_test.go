package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// Idempotent runs a handler's side effect once per key: here the same
// payment is sent twice (a retried send upstream) and keyed by its
// payment id, so the card is charged once. With a DynamoDB store
// (NewDynamoDBIdempotencyStore) every consumer process and Lambda
// invocation of the queue shares the records.
func ExampleIdempotent() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "payments", map[string]string{"VisibilityTimeout": "2"})
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	charged := 0
	charge := func(_ context.Context, m *patterns.Message) error {
		charged++
		fmt.Println("charged", m.Attr("payment"))
		return nil
	}
	store, err := patterns.NewMemoryIdempotencyStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	h, err := patterns.Idempotent(charge, store, func(o *patterns.IdempotencyOptions) {
		o.Key = func(m *patterns.Message) (string, error) {
			if id := m.Attr("payment"); id != "" {
				return id, nil
			}
			return "", errors.New("no payment id")
		}
		o.Logger = quiet
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	p, _ := patterns.NewProducer(sqsClient, queueURL)
	for range 2 {
		m := &patterns.Message{Body: []byte(`{"amount":42}`)}
		m.SetAttr("payment", "pay-7")
		_ = p.Send(ctx, m)
	}
	c, _ := patterns.NewConsumer(sqsClient, queueURL, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet
	})
	go func() {
		for c.Stats().Deleted < 2 {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	_ = c.Run(ctx, h)
	fmt.Println("deliveries:", c.Stats().Deleted, "charges:", charged)
	// Output:
	// charged pay-7
	// deliveries: 2 charges: 1
}
