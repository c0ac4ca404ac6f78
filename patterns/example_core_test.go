package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// A Producer sends in batches and reports each message's fate.
func ExampleProducer_Send() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "producer", nil)
	defer done()

	p, err := patterns.NewProducer(sqsClient, queueURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	var msgs []*patterns.Message
	for i := range 25 {
		msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf("order %d", i))})
	}
	err = p.Send(context.Background(), msgs...) // 3 requests: 10 + 10 + 5
	fmt.Println("sent:", err == nil, "all have ids:", msgs[0].ID != "" && msgs[24].ID != "")

	// A bad message fails before any request, naming the problem.
	big := &patterns.Message{Body: []byte(strings.Repeat("x", patterns.MaxSQSMessageBytes))}
	big.SetAttr("kind", "huge")
	err = p.Send(context.Background(), big)
	fmt.Println(errors.Is(err, patterns.ErrMessageTooLarge))
	// Output:
	// sent: true all have ids: true
	// true
}

// A Consumer runs a handler on each message; returning nil deletes it.
func ExampleConsumer_Run() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "consumer", nil)
	defer done()
	p, _ := patterns.NewProducer(sqsClient, queueURL)
	_ = p.Send(context.Background(),
		&patterns.Message{Body: []byte("a")}, &patterns.Message{Body: []byte("b")}, &patterns.Message{Body: []byte("c")})

	c, err := patterns.NewConsumer(sqsClient, queueURL, func(o *patterns.ConsumerOptions) { o.WaitTime = time.Second })
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []string
	err = c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(m.Body))
		if len(got) == 3 {
			cancel() // graceful: finishes in-flight work and flushes deletes
		}
		return nil
	})
	sort.Strings(got)
	fmt.Println(got, err, c.Stats().Deleted)
	// Output: [a b c] <nil> 3
}

// One-way: the sender goes on; the receiver handles the message later.
func ExampleSender() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "oneway", nil)
	defer done()

	sender, _ := patterns.NewSender(sqsClient, queueURL)
	id, err := sender.SendJSON(context.Background(), map[string]int{"order": 42})
	fmt.Println(id != "", err)

	type order struct{ Order int }
	receiver, _ := patterns.NewReceiver(sqsClient, queueURL, func(o *patterns.ConsumerOptions) { o.WaitTime = time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	_ = receiver.Run(ctx, patterns.JSONHandler(func(ctx context.Context, o order, m *patterns.Message) error {
		fmt.Println("order", o.Order)
		cancel()
		return nil
	}))
	// Output:
	// true <nil>
	// order 42
}

// Competing consumers share one queue; SQS hands each message to one of them.
func ExampleCompetingConsumers() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "competing", nil)
	defer done()
	p, _ := patterns.NewProducer(sqsClient, queueURL)
	var msgs []*patterns.Message
	for i := range 30 {
		msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprint(i))})
	}
	_ = p.Send(context.Background(), msgs...)

	group, _ := patterns.NewCompetingConsumers(sqsClient, queueURL, 3, func(o *patterns.ConsumerOptions) { o.WaitTime = time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	seen := map[string]bool{}
	_ = group.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(m.Body)] = true
		if len(seen) == 30 {
			cancel()
		}
		return nil
	})
	fmt.Println(len(seen), "messages handled by", len(group.Consumers()), "consumers")
	// Output: 30 messages handled by 3 consumers
}

// A Receiver handles one-way messages: each is deleted only after its
// handler returned nil; a failed one comes back after its visibility
// timeout (and goes to the DLQ after the queue's maxReceiveCount).
func ExampleReceiver() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "invoices", map[string]string{"VisibilityTimeout": "1"})
	defer done()
	sender, _ := patterns.NewSender(sqsClient, queueURL)
	_, _ = sender.SendBody(context.Background(), []byte("invoice 7"))

	receiver, _ := patterns.NewReceiver(sqsClient, queueURL, func(o *patterns.ConsumerOptions) { o.WaitTime = time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	_ = receiver.Run(ctx, func(_ context.Context, m *patterns.Message) error {
		attempts++
		if attempts == 1 {
			fmt.Println("attempt 1: failed, left on the queue")
			return errors.New("ledger unavailable")
		}
		fmt.Printf("attempt %d: %s handled, deleted\n", attempts, m.Body)
		cancel()
		return nil
	})
	// Output:
	// attempt 1: failed, left on the queue
	// attempt 2: invoice 7 handled, deleted
}
