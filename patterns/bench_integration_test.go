package patterns_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// benchEnabled gates the end-to-end benchmarks that make bench runs on the
// emulator: they print "BENCH <name> <value> <unit>" lines and assert only
// that the work was done, never a time.
func benchEnabled(t *testing.T) {
	if os.Getenv("COURIER_BENCH") != "1" {
		t.Skip("end-to-end benchmark: run with make bench (COURIER_BENCH=1)")
	}
}

// TestBenchOneWay sends 10,000 messages through a Producer and handles them
// with a Consumer, and reports API requests per message (the physical
// minimum with batches of ten is 0.30: one send, one receive and one delete
// per ten messages).
func TestBenchOneWay(t *testing.T) {
	benchEnabled(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const n = 10000
		q := b.CreateQueue(t, backend.QueueOptions{})
		var rc patterns.RequestCounter
		client := b.SQS(&rc)
		ctx := context.Background()
		p, err := patterns.NewProducer(client, q.URL)
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]*patterns.Message, n)
		for i := range msgs {
			msgs[i] = &patterns.Message{Body: []byte(fmt.Sprintf(`{"n":%d,"pad":"0123456789012345678901234567890123456789"}`, i))}
		}
		start := time.Now()
		if err := p.Send(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		sent := time.Since(start)
		c, err := patterns.NewConsumer(client, q.URL, func(o *patterns.ConsumerOptions) {
			o.WaitTime = time.Second
			o.Logger = discardLogger()
		})
		if err != nil {
			t.Fatal(err)
		}
		var handled atomic.Int64
		stop := runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(context.Context, *patterns.Message) error { handled.Add(1); return nil })
		})
		waitFor(t, 10*time.Minute, "all handled", func() bool { return handled.Load() >= n })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		total := time.Since(start)
		if st := c.Stats(); st.Deleted != n {
			t.Fatalf("deleted %d of %d", st.Deleted, n)
		}
		t.Logf("%s: requests %v", b.Name, rc.Counts())
		fmt.Printf("BENCH oneway_requests_per_message %.3f req/msg\n", float64(rc.Total())/n)
		fmt.Printf("BENCH oneway_billed_requests_per_message %.3f req/msg\n", float64(rc.Billed())/n)
		fmt.Printf("BENCH oneway_send_messages_per_second %.0f msg/s\n", n/sent.Seconds())
		fmt.Printf("BENCH oneway_end_to_end_messages_per_second %.0f msg/s\n", n/total.Seconds())
	})
}

// TestBenchFIFO sends 20 groups x 100 messages to a FIFO queue and handles
// them with a group-aware Consumer; it reports throughput and requests per
// message.
func TestBenchFIFO(t *testing.T) {
	benchEnabled(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const groups, per = 20, 100
		q := b.CreateQueue(t, backend.QueueOptions{FIFO: true})
		var rc patterns.RequestCounter
		client := b.SQS(&rc)
		p, err := patterns.NewProducer(client, q.URL)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		sendGroups(t, p, groups, per)
		cfg := quietConfig(q.URL)
		cfg.Workers = groups
		c, _ := patterns.NewConsumer(client, cfg.url, cfg.set)
		var handled atomic.Int64
		stop := runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(context.Context, *patterns.Message) error { handled.Add(1); return nil })
		})
		waitFor(t, 10*time.Minute, "all handled", func() bool { return handled.Load() >= groups*per })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("%s: requests %v", b.Name, rc.Counts())
		fmt.Printf("BENCH fifo_messages_per_second %.0f msg/s\n", groups*per/took.Seconds())
		fmt.Printf("BENCH fifo_requests_per_message %.3f req/msg\n", float64(rc.Total())/(groups*per))
	})
}

// TestBenchFanOut publishes 1,000 messages to a topic with three chained
// queues and consumes every copy. It reports the publisher's SNS requests
// per message (PublishBatch: the minimum is 0.10) and the requests per
// delivered copy on the consuming side.
func TestBenchFanOut(t *testing.T) {
	benchEnabled(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const n, subscribers = 1000, 3
		ctx := context.Background()
		topic := b.CreateTopic(t, false, nil)
		var pubRC, subRC patterns.RequestCounter
		var urls []string
		for range subscribers {
			q := b.CreateQueue(t, backend.QueueOptions{})
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = true }); err != nil {
				t.Fatal(err)
			}
			urls = append(urls, q.URL)
		}
		pub, err := patterns.NewPublisher(b.SNS(&pubRC), topic)
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]*patterns.Message, n)
		for i := range msgs {
			msgs[i] = &patterns.Message{Body: []byte(fmt.Sprintf(`{"event":%d}`, i))}
		}
		if err := pub.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		var handled atomic.Int64
		var stops []func() error
		for _, url := range urls {
			c, err := patterns.NewConsumer(b.SQS(&subRC), url, func(o *patterns.ConsumerOptions) {
				o.WaitTime = time.Second
				o.Logger = discardLogger()
			})
			if err != nil {
				t.Fatal(err)
			}
			stops = append(stops, runFor(t, func(ctx context.Context) error {
				return c.Run(ctx, func(context.Context, *patterns.Message) error { handled.Add(1); return nil })
			}))
		}
		waitFor(t, 5*time.Minute, "every copy handled", func() bool { return handled.Load() >= n*subscribers })
		for _, stop := range stops {
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: publish %v, consume %v", b.Name, pubRC.Counts(), subRC.Counts())
		fmt.Printf("BENCH fanout_publish_requests_per_message %.3f req/msg\n", float64(pubRC.Total())/n)
		fmt.Printf("BENCH fanout_consume_requests_per_copy %.3f req/msg\n", float64(subRC.Total())/(n*subscribers))
	})
}
