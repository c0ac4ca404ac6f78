package patterns_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

func TestExponentialBackoff(t *testing.T) {
	b := patterns.ExponentialBackoff(time.Second, time.Minute)
	for _, tt := range []struct {
		receive  int
		min, max time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{4, 4 * time.Second, 8 * time.Second},
		{30, 30 * time.Second, time.Minute}, // capped
	} {
		for range 50 {
			if d := b(tt.receive); d < tt.min || d > tt.max {
				t.Fatalf("receive %d: %v outside [%v, %v]", tt.receive, d, tt.min, tt.max)
			}
		}
	}
	if d := patterns.ExponentialBackoff(time.Hour, 0)(20); d > patterns.MaxVisibilityTimeout {
		t.Errorf("uncapped backoff %v exceeds the SQS maximum", d)
	}
}

// A failing handler's message comes back after the backoff, not after the
// queue's 30 s visibility timeout, and ends in the DLQ after maxReceiveCount.
func TestRetryBackoffSpacesRedeliveries(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceiveCount: 3})
		p, _ := patterns.NewProducer(b.SQS(), q.URL)
		if err := p.Send(context.Background(), &patterns.Message{Body: []byte("fails")}); err != nil {
			t.Fatal(err)
		}
		cfg := quietConfig(q.URL)
		cfg.Backoff = patterns.ExponentialBackoff(time.Second, 4*time.Second)
		c, _ := patterns.NewConsumer(b.SQS(), cfg.url, cfg.set)
		var mu sync.Mutex
		var at []time.Time
		stop := runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				mu.Lock()
				at = append(at, time.Now())
				mu.Unlock()
				return errors.New("always fails")
			})
		})
		var dlq int
		waitFor(t, 45*time.Second, "message in the DLQ", func() bool {
			dlq += len(b.Drain(t, q.DLQURL, 100*time.Millisecond))
			return dlq > 0
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(at) != 3 {
			t.Fatalf("handled %d times, want maxReceiveCount=3", len(at))
		}
		// Policy: 1st failure -> 1s, 2nd -> 1..2s (whole seconds, rounded up).
		// Allow for polling slack, but far below the 30 s queue timeout.
		for i, want := range []time.Duration{time.Second, time.Second} {
			gap := at[i+1].Sub(at[i])
			if gap < want-200*time.Millisecond || gap > want+6*time.Second {
				t.Errorf("gap %d = %v, want about %v+ (the backoff), not the 30 s visibility timeout", i+1, gap, want)
			}
		}
	})
}

func TestVisibilitySeconds(t *testing.T) {
	for d, want := range map[time.Duration]int32{
		0: 1, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, time.Minute: 60,
		patterns.MaxVisibilityTimeout: 43200, 24 * time.Hour: 43200, -time.Second: 1,
	} {
		if got := patterns.VisibilitySeconds(d); got != want {
			t.Errorf("VisibilitySeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// memoryIdempotencyStore is a MemoryIdempotencyStore with the defaults,
// which cannot fail.
func memoryIdempotencyStore() *patterns.MemoryIdempotencyStore {
	s, err := patterns.NewMemoryIdempotencyStore()
	if err != nil {
		panic(err)
	}
	return s
}
