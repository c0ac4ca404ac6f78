package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// The store contract, on memory.
func TestMemoryAggregateStore(t *testing.T) {
	s, err := patterns.NewMemoryAggregateStore()
	if err != nil {
		t.Fatal(err)
	}
	testAggregateStore(t, s)
}

// The store contract, on DynamoDB (each backend that has it).
func TestDynamoDBAggregateStore(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		client, table := dynamoTable(t, b)
		s, err := patterns.NewDynamoDBAggregateStore(client, table)
		if err != nil {
			t.Fatal(err)
		}
		testAggregateStore(t, s)
	})
}

func resp(responder, id string, at time.Time) patterns.Response {
	return patterns.Response{Responder: responder, MessageID: id, Body: []byte(responder + ":" + id), ReceivedAt: at}
}

// testAggregateStore checks what the aggregator relies on: each outcome of
// Add, Complete exactly once (and again only for the same message until
// processed), under concurrency too.
func testAggregateStore(t *testing.T, s patterns.AggregateStore) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	cid := fmt.Sprintf("agg-%d", now.UnixNano())
	open := func(cid string, a patterns.Aggregate) {
		t.Helper()
		a.CorrelationID, a.OpenedAt = cid, now
		if err := s.Open(ctx, &a); err != nil {
			t.Fatalf("open %s: %v", cid, err)
		}
	}
	add := func(cid string, r patterns.Response, want patterns.AddOutcome) *patterns.Aggregate {
		t.Helper()
		res, err := s.Add(ctx, cid, r, nil)
		if err != nil {
			t.Fatalf("add %s/%s: %v", r.Responder, r.MessageID, err)
		}
		if res.Outcome != want {
			t.Fatalf("add %s/%s to %s: %v, want %v", r.Responder, r.MessageID, cid, res.Outcome, want)
		}
		return res.Aggregate
	}

	open(cid, patterns.Aggregate{Expected: []string{"a", "b", "c"}})
	if err := s.Open(ctx, &patterns.Aggregate{CorrelationID: cid, OpenedAt: now}); !errors.Is(err, patterns.ErrAggregateExists) {
		t.Errorf("second open: %v, want ErrAggregateExists", err)
	}
	if a := add(cid, resp("a", "m1", now), patterns.Added); len(a.Responses) != 1 || string(a.Responses[0].Body) != "a:m1" {
		t.Errorf("after the first add: %+v", a.Responses)
	}
	add(cid, resp("a", "m1", now), patterns.AlreadyAdded) // the same message again
	add(cid, resp("a", "m2", now), patterns.Duplicate)    // a second answer
	a := add(cid, resp("b", "m3", now), patterns.Added)
	if len(a.Responses) != 2 || a.Complete() {
		t.Errorf("after b: %d responses, complete %v", len(a.Responses), a.Complete())
	}
	if res, err := s.Add(ctx, cid+"-none", resp("a", "m9", now), nil); err != nil || res.Outcome != patterns.Unknown {
		t.Errorf("add to no aggregate: %v %v", res.Outcome, err)
	}

	// Completion: once, to the first caller; again to the same message
	// until processed (its processor failed and it came back).
	got, err := s.Complete(ctx, cid, patterns.CompletedDeadline, "m-deadline", now)
	if err != nil || got == nil {
		t.Fatalf("complete: %v %v", got, err)
	}
	if got.Reason != patterns.CompletedDeadline || len(got.Responses) != 2 || len(got.Missing) != 1 || got.Missing[0] != "c" {
		t.Errorf("completed: reason %q, %d responses, missing %v", got.Reason, len(got.Responses), got.Missing)
	}
	if again, err := s.Complete(ctx, cid, patterns.CompletedAll, "m-other", now); again != nil || err != nil {
		t.Errorf("second completion by another message: %v %v, want nil", again, err)
	}
	if again, err := s.Complete(ctx, cid, patterns.CompletedDeadline, "m-deadline", now); again == nil || err != nil {
		t.Errorf("completion by the same message before processed: %v %v, want the aggregate", again, err)
	}
	if err := s.MarkProcessed(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Complete(ctx, cid, patterns.CompletedDeadline, "m-deadline", now); again != nil || err != nil {
		t.Errorf("completion by the same message after processed: %v %v, want nil", again, err)
	}
	add(cid, resp("c", "m4", now), patterns.Late)
	if g, err := s.Get(ctx, cid); err != nil || g == nil || !g.Complete() || len(g.Responses) != 2 {
		t.Errorf("get: %+v %v", g, err)
	}

	// Past its deadline, an open aggregate takes no response.
	dl := cid + "-deadline"
	open(dl, patterns.Aggregate{Quorum: 5, Deadline: now.Add(time.Minute)})
	add(dl, resp("a", "d1", now), patterns.Added)
	if a := add(dl, resp("b", "d2", now.Add(time.Minute)), patterns.Late); a == nil || a.Complete() || len(a.Responses) != 1 {
		t.Errorf("late by deadline: %+v", a)
	}

	// An implicit aggregate: the first response opens it.
	im := cid + "-implicit"
	res, err := s.Add(ctx, im, resp("a", "i1", now), &patterns.Aggregate{Quorum: 2, OpenedAt: now})
	if err != nil || res.Outcome != patterns.Added || res.Aggregate.Quorum != 2 || len(res.Aggregate.Responses) != 1 {
		t.Errorf("implicit open: %+v %v", res, err)
	}

	// Concurrency: 16 responders at once are all counted; 16 completions
	// at once, one wins.
	cc := cid + "-concurrent"
	open(cc, patterns.Aggregate{Quorum: 100})
	var wg sync.WaitGroup
	var won atomic.Int64
	for i := range 16 {
		wg.Go(func() {
			if _, err := s.Add(ctx, cc, resp(fmt.Sprint("r", i), fmt.Sprint("c", i), now), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 16 {
		wg.Go(func() {
			a, err := s.Complete(ctx, cc, patterns.CompletedPredicate, fmt.Sprint("by", i), now)
			if err != nil {
				t.Error(err)
			}
			if a != nil {
				won.Add(1)
				if len(a.Responses) != 16 {
					t.Errorf("completed with %d responses, want 16", len(a.Responses))
				}
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d completions won, want 1", won.Load())
	}
}

func dynamoTable(t *testing.T, b *backend.Backend) (*dynamodb.Client, string) {
	t.Helper()
	return b.DynamoDB(), b.CreateTable(t)
}
