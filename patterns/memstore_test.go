package patterns_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// The memory idempotency store honours expiry and a cap: at the cap a new
// key is refused (ErrStoreFull), nothing held is dropped, and room comes
// back as records are released or expire.
func TestMemoryIdempotencyStoreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s, _ := patterns.NewMemoryIdempotencyStore(func(o *patterns.MemoryIdempotencyStoreOptions) { o.MaxRecords = 3 })
		begin := func(key string, want patterns.IdempotencyState, wantErr error) {
			t.Helper()
			got, err := s.Begin(ctx, key, "t-"+key, time.Now().Add(time.Minute))
			if !errors.Is(err, wantErr) || (err == nil && got != want) {
				t.Fatalf("begin %s: %v, %v; want %v, %v", key, got, err, want, wantErr)
			}
		}
		begin("a", patterns.IdempotencyStarted, nil)
		begin("b", patterns.IdempotencyStarted, nil)
		begin("c", patterns.IdempotencyStarted, nil)
		begin("d", 0, patterns.ErrStoreFull)
		begin("a", patterns.IdempotencyInProgress, nil) // a held key still answers at the cap
		if err := s.Complete(ctx, "a", "t-a", time.Now().Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, "b", "t-b"); err != nil {
			t.Fatal(err)
		}
		begin("d", patterns.IdempotencyStarted, nil) // b's room
		begin("e", 0, patterns.ErrStoreFull)         // a completed, c and d in progress: all kept
		begin("a", patterns.IdempotencyCompleted, nil)

		time.Sleep(2 * time.Minute) // c and d's in-progress time is over
		if n := s.Len(); n != 1 {
			t.Fatalf("Len after the in-progress records expired = %d, want 1 (a)", n)
		}
		begin("e", patterns.IdempotencyStarted, nil)
		time.Sleep(10 * time.Minute)
		if n := s.Len(); n != 0 {
			t.Fatalf("Len after every record expired = %d, want 0", n)
		}
	})
}

// Through Idempotent: at the cap the handler does not run and the error
// (retryable: the message stays on the queue) says why.
func TestIdempotentStoreFull(t *testing.T) {
	s, _ := patterns.NewMemoryIdempotencyStore(func(o *patterns.MemoryIdempotencyStoreOptions) { o.MaxRecords = 1 })
	runs := 0
	h, err := patterns.Idempotent(func(context.Context, *patterns.Message) error { runs++; return nil }, s, func(o *patterns.IdempotencyOptions) { o.Logger = discardLogger() })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h(ctx, &patterns.Message{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := h(ctx, &patterns.Message{ID: "m2"}); !errors.Is(err, patterns.ErrStoreFull) {
		t.Fatalf("second key at a cap of 1: %v, want ErrStoreFull", err)
	}
	if err := h(ctx, &patterns.Message{ID: "m1"}); err != nil {
		t.Fatalf("the completed key at the cap: %v", err)
	}
	if runs != 1 {
		t.Fatalf("handler ran %d times, want 1", runs)
	}
}

// The memory aggregate store honours its TTL and a cap: at the cap the
// oldest processed aggregate makes room; with none processed, Open and an
// implicit open by Add fail with ErrStoreFull and keep what is in progress.
func TestMemoryAggregateStoreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s, err := patterns.NewMemoryAggregateStore(func(o *patterns.AggregateStoreOptions) {
			o.MaxAggregates, o.TTL = 2, time.Hour
		})
		if err != nil {
			t.Fatal(err)
		}
		open := func(cid string, wantErr error) {
			t.Helper()
			if err := s.Open(ctx, &patterns.Aggregate{CorrelationID: cid, Quorum: 1, OpenedAt: time.Now()}); !errors.Is(err, wantErr) {
				t.Fatalf("open %s: %v, want %v", cid, err, wantErr)
			}
		}
		open("a", nil)
		open("b", nil)
		open("c", patterns.ErrStoreFull)
		implicit := &patterns.Aggregate{Quorum: 2, OpenedAt: time.Now()}
		if _, err := s.Add(ctx, "d", patterns.Response{MessageID: "m1", ReceivedAt: time.Now()}, implicit); !errors.Is(err, patterns.ErrStoreFull) {
			t.Fatalf("implicit open at the cap: %v, want ErrStoreFull", err)
		}
		if res, err := s.Add(ctx, "a", patterns.Response{MessageID: "m2", ReceivedAt: time.Now()}, nil); err != nil || res.Outcome != patterns.Added {
			t.Fatalf("add to a held aggregate at the cap: %+v, %v", res, err)
		}
		if agg, err := s.Complete(ctx, "a", patterns.CompletedQuorum, "m2", time.Now()); err != nil || agg == nil {
			t.Fatalf("complete a: %v, %v", agg, err)
		}
		open("c", patterns.ErrStoreFull) // a is complete but not processed: kept
		if err := s.MarkProcessed(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		open("c", nil) // a, processed, made room
		if agg, _ := s.Get(ctx, "a"); agg != nil {
			t.Fatalf("a still held: %+v", agg)
		}
		if agg, _ := s.Get(ctx, "b"); agg == nil {
			t.Fatal("b, in progress, was dropped")
		}
		time.Sleep(time.Hour)
		if n := s.Len(); n != 0 {
			t.Fatalf("Len after the TTL = %d, want 0", n)
		}
		open("d", nil)
	})
}
