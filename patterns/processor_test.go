package patterns_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// crashBeforeMark is a store whose first MarkProcessed does not happen:
// the process dies between the processor and the mark.
type crashBeforeMark struct {
	patterns.AggregateStore
	crashed bool
}

type crash struct{}

func (s *crashBeforeMark) MarkProcessed(ctx context.Context, cid string) error {
	if !s.crashed {
		s.crashed = true
		panic(crash{})
	}
	return s.AggregateStore.MarkProcessed(ctx, cid)
}

// A crash after the processor and before MarkProcessed: the response that
// completed the aggregate is delivered again and the processor runs again
// with the same aggregate (at least once). IdempotentProcessor, keyed by
// the correlation id, runs the side effect once.
func TestProcessorAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name       string
		idempotent bool
		effects    int
	}{
		{"plain: at least once", false, 2},
		{"IdempotentProcessor: once", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mem, err := patterns.NewMemoryAggregateStore()
			if err != nil {
				t.Fatal(err)
			}
			store := &crashBeforeMark{AggregateStore: mem}
			var effects int
			var seen []string
			p := patterns.Processor(func(_ context.Context, a *patterns.Aggregate) error {
				effects++
				seen = append(seen, a.CorrelationID)
				return nil
			})
			if tc.idempotent {
				if p, err = patterns.IdempotentProcessor(p, memoryIdempotencyStore(), func(o *patterns.IdempotencyOptions) { o.Logger = discardLogger() }); err != nil {
					t.Fatal(err)
				}
			}
			agg, err := patterns.NewAggregator(offlineClient(), "", store, p, func(o *patterns.AggregatorOptions) { o.Logger = discardLogger() })
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Open(ctx, &patterns.Aggregate{CorrelationID: "cid-1", Quorum: 1, OpenedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			resp := &patterns.Message{ID: "resp-1", CorrelationID: "cid-1", Body: []byte("quote")}
			resp.SetHeader(patterns.ResponderHeader, "acme")
			h := agg.Handler()
			func() {
				defer func() {
					if r := recover(); r != (crash{}) {
						t.Fatalf("recovered %v, want the crash", r)
					}
				}()
				_ = h(ctx, resp)
			}()
			if err := h(ctx, resp); err != nil { // SQS delivers it again
				t.Fatal(err)
			}
			if effects != tc.effects {
				t.Fatalf("processor's side effect ran %d times, want %d", effects, tc.effects)
			}
			for _, cid := range seen {
				if cid != "cid-1" {
					t.Fatalf("processor saw correlation id %q", cid)
				}
			}
			if a, _ := mem.Get(ctx, "cid-1"); a == nil || !a.Processed {
				t.Fatalf("aggregate after the redelivery: %+v, want processed", a)
			}
			if err := h(ctx, resp); err != nil || effects != tc.effects {
				t.Fatalf("a third delivery, after the mark: %v, %d effects", err, effects)
			}
		})
	}
}

func TestIdempotentProcessorConfig(t *testing.T) {
	p := func(context.Context, *patterns.Aggregate) error { return nil }
	store, _ := patterns.NewMemoryIdempotencyStore()
	if _, err := patterns.IdempotentProcessor(nil, store); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("nil processor: %v", err)
	}
	if _, err := patterns.IdempotentProcessor(p, nil); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("nil store: %v", err)
	}
	key := func(*patterns.Message) (string, error) { return "k", nil }
	if _, err := patterns.IdempotentProcessor(p, store, func(o *patterns.IdempotencyOptions) { o.Key = key }); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("a Key of its own: %v", err)
	}
}
