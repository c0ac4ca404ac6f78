package patterns

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A memory idempotency store drops records whose time has passed: 10,001
// completed records an hour past their expiry are gone at the next Begin.
func TestMemoryIdempotencyStorePurgesExpired(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now()
	now := t0
	s, _ := NewMemoryIdempotencyStore()
	s.now = func() time.Time { return now }
	for i := range 10_001 {
		key := fmt.Sprint("k", i)
		if _, err := s.Begin(ctx, key, "t", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, key, "t", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	now = t0.Add(2 * time.Hour)
	if _, err := s.Begin(ctx, "new", "t", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	n := len(s.recs)
	s.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d records held an hour after 10,001 of them expired, want 1", n)
	}
}

// A memory aggregate store holds a bounded number of aggregates: past
// the default cap (10,000), with none processed or expired, Open refuses.
func TestMemoryAggregateStoreDefaultCap(t *testing.T) {
	ctx := context.Background()
	s, err := NewMemoryAggregateStore()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 10_000 {
		if err := s.Open(ctx, &Aggregate{CorrelationID: fmt.Sprint("c", i), Quorum: 1, OpenedAt: now}); err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	if err := s.Open(ctx, &Aggregate{CorrelationID: "one-too-many", Quorum: 1, OpenedAt: now}); err == nil {
		t.Fatal("the 10,001st aggregate was opened; the store has no cap")
	}
}
