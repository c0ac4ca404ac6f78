package adapter_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/internal/lambdatest"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// Under the event source mapping (played by localrunner), a record whose
// handler fails comes back after the backoff, not after the queue's 30 s
// visibility timeout, and after maxReceiveCount receives it is in the DLQ.
func TestSQSHandlerBackoff(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceiveCount: 3})
		p, _ := patterns.NewProducer(b.SQS(), q.URL)
		if err := p.Send(context.Background(), &patterns.Message{Body: []byte("fails")}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var at []time.Time
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		h := adapter.SQSHandler(func(context.Context, *patterns.Message) error {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			return errors.New("always fails")
		}, func(o *adapter.Options) {
			o.Backoff = patterns.ExponentialBackoff(time.Second, 4*time.Second)
			o.SQS = b.SQS()
			o.Logger = quiet
		})
		r := lambdatest.Start(t, b, localrunner.Config{QueueURL: q.URL, ReportBatchItemFailures: true, WaitTime: time.Second, Logger: quiet}, h)
		var dlq int
		lambdatest.WaitFor(t, "message in the DLQ", func() bool {
			dlq += len(b.Drain(t, q.DLQURL, 100*time.Millisecond))
			return dlq > 0
		})
		r.Stop()
		mu.Lock()
		defer mu.Unlock()
		if len(at) != 3 {
			t.Fatalf("handled %d times, want maxReceiveCount=3", len(at))
		}
		for i := range 2 {
			if gap := at[i+1].Sub(at[i]); gap < 800*time.Millisecond || gap > 10*time.Second {
				t.Errorf("gap %d = %v: want the 1-2 s backoff, not the 30 s visibility timeout", i+1, gap)
			}
		}
	})
}
