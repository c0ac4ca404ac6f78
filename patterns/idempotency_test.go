package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// eachIdempotencyStore runs fn with a memory store and, on each backend
// with DynamoDB, a DynamoDB store.
func eachIdempotencyStore(t *testing.T, fn func(t *testing.T, b *backend.Backend, s patterns.IdempotencyStore)) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		t.Run("memory", func(t *testing.T) { fn(t, b, memoryIdempotencyStore()) })
		t.Run("dynamodb", func(t *testing.T) {
			s, err := patterns.NewDynamoDBIdempotencyStore(b.DynamoDB(), b.CreateTable(t))
			if err != nil {
				t.Fatal(err)
			}
			fn(t, b, s)
		})
	})
}

// The store contract: one owner at a time, completed records skip,
// released and expired in-progress records can be taken again, and a
// delivery whose claim was taken over cannot complete it.
func TestIdempotencyStore(t *testing.T) {
	eachIdempotencyStore(t, func(t *testing.T, _ *backend.Backend, s patterns.IdempotencyStore) {
		ctx := context.Background()
		later := time.Now().Add(time.Minute)
		begin := func(key, token string, until time.Time, want patterns.IdempotencyState) {
			t.Helper()
			got, err := s.Begin(ctx, key, token, until)
			if err != nil || got != want {
				t.Fatalf("begin %s by %s: %v %v, want %v", key, token, got, err, want)
			}
		}
		begin("a", "t1", later, patterns.IdempotencyStarted)
		begin("a", "t2", later, patterns.IdempotencyInProgress)
		if err := s.Complete(ctx, "a", "t2", later); err == nil {
			t.Error("a delivery that does not own the key completed it")
		}
		if err := s.Complete(ctx, "a", "t1", later); err != nil {
			t.Fatal(err)
		}
		begin("a", "t3", later, patterns.IdempotencyCompleted)

		begin("b", "t1", later, patterns.IdempotencyStarted)
		if err := s.Release(ctx, "b", "t1"); err != nil {
			t.Fatal(err)
		}
		begin("b", "t2", later, patterns.IdempotencyStarted) // released: runs again

		// A claim past its time (its owner died) is taken over; the old
		// owner can then neither complete nor release it.
		begin("c", "dead", time.Now().Add(-time.Millisecond), patterns.IdempotencyStarted)
		begin("c", "t2", later, patterns.IdempotencyStarted)
		if err := s.Complete(ctx, "c", "dead", later); err == nil {
			t.Error("the expired owner completed a key taken over")
		}
		if err := s.Release(ctx, "c", "dead"); err == nil {
			t.Error("the expired owner released a key taken over")
		}
		begin("c", "t3", later, patterns.IdempotencyInProgress)

		var started atomic.Int64
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				st, err := s.Begin(ctx, "d", fmt.Sprint("t", i), later)
				if err != nil {
					t.Error(err)
				}
				if st == patterns.IdempotencyStarted {
					started.Add(1)
				}
			})
		}
		wg.Wait()
		if started.Load() != 1 {
			t.Errorf("%d of 16 concurrent deliveries started, want 1", started.Load())
		}
	})
}

// A message handled, then delivered again because its delete never
// happened (the visibility timeout expired): the side effect ran once and
// the second delivery is acknowledged.
func TestIdempotentRedelivery(t *testing.T) {
	eachIdempotencyStore(t, func(t *testing.T, b *backend.Backend, s patterns.IdempotencyStore) {
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: time.Second})
		var effects, deliveries atomic.Int64
		h, err := patterns.Idempotent(func(context.Context, *patterns.Message) error {
			effects.Add(1)
			return nil
		}, s, func(o *patterns.IdempotencyOptions) { o.Logger = discardLogger() })
		if err != nil {
			t.Fatal(err)
		}
		c, err := patterns.NewConsumer(b.SQS(), q.URL, quiet)
		if err != nil {
			t.Fatal(err)
		}
		runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				err := h(ctx, m)
				if deliveries.Add(1) == 1 {
					return errors.New("crashed after the side effect, before the delete")
				}
				return err
			})
		})
		sendAll(t, b, q.URL, &patterns.Message{Body: []byte("charge card 42")})
		waitFor(t, 30*time.Second, "the second delivery handled", func() bool { return c.Stats().Deleted == 1 })
		if effects.Load() != 1 || deliveries.Load() != 2 {
			t.Errorf("side effect ran %d times over %d deliveries, want once over 2", effects.Load(), deliveries.Load())
		}
	})
}

// Two deliveries of one message at once: one runs, the other fails with
// the retryable ErrIdempotencyInProgress. And a delivery whose handler
// died mid-run (its claim left in the store) holds the key only until its
// in-progress time passes; then the message runs.
func TestIdempotentConcurrentAndCrash(t *testing.T) {
	eachIdempotencyStore(t, func(t *testing.T, b *backend.Backend, s patterns.IdempotencyStore) {
		entered, release := make(chan struct{}, 1), make(chan struct{})
		var effects atomic.Int64
		h, err := patterns.Idempotent(func(context.Context, *patterns.Message) error {
			entered <- struct{}{}
			<-release
			effects.Add(1)
			return nil
		}, s, func(o *patterns.IdempotencyOptions) { o.Logger = discardLogger() })
		if err != nil {
			t.Fatal(err)
		}
		m := &patterns.Message{ID: backend.UniqueName(t), Body: []byte("ship order 7")}
		first := make(chan error, 1)
		go func() { first <- h(context.Background(), m) }()
		<-entered // the first delivery owns the key and runs
		if err := h(context.Background(), m); !errors.Is(err, patterns.ErrIdempotencyInProgress) {
			t.Errorf("the concurrent delivery: %v, want ErrIdempotencyInProgress", err)
		}
		close(release)
		if err := <-first; err != nil || effects.Load() != 1 {
			t.Fatalf("first delivery: %v, %d effects", err, effects.Load())
		}

		// Crash: a delivery claimed "ship order 8" for 2 s and died.
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: time.Second})
		byBody := func(m *patterns.Message) (string, error) { return string(m.Body), nil }
		if _, err := s.Begin(context.Background(), "ship order 8", "crashed", time.Now().Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		var crashEffects, refused atomic.Int64
		h2, _ := patterns.Idempotent(func(context.Context, *patterns.Message) error { crashEffects.Add(1); return nil }, s, func(o *patterns.IdempotencyOptions) {
			o.Key = byBody
			o.Logger = discardLogger()
		})
		c, err := patterns.NewConsumer(b.SQS(), q.URL, quiet)
		if err != nil {
			t.Fatal(err)
		}
		runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				err := h2(ctx, m)
				if errors.Is(err, patterns.ErrIdempotencyInProgress) {
					refused.Add(1)
				}
				return err
			})
		})
		sendAll(t, b, q.URL, &patterns.Message{Body: []byte("ship order 8")})
		waitFor(t, 30*time.Second, "the message handled after the crashed claim expired", func() bool { return c.Stats().Deleted == 1 })
		if crashEffects.Load() != 1 || refused.Load() == 0 {
			t.Errorf("%d effects, %d deliveries refused while the crashed claim held; want 1 effect after at least one refusal", crashEffects.Load(), refused.Load())
		}
	})
}

func sendAll(t *testing.T, b *backend.Backend, url string, msgs ...*patterns.Message) {
	t.Helper()
	p, err := patterns.NewProducer(b.SQS(), url)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}
