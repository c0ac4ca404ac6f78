package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// sendGroups sends groups x perGroup messages "g<group>-<seq>", interleaved
// across groups, and returns them by group in sent order.
func sendGroups(t *testing.T, p *patterns.Producer, groups, perGroup int) map[string][]string {
	t.Helper()
	sent := map[string][]string{}
	var msgs []*patterns.Message
	for seq := range perGroup {
		for g := range groups {
			group := fmt.Sprintf("g%02d", g)
			body := fmt.Sprintf("%s-%03d", group, seq)
			msgs = append(msgs, &patterns.Message{Body: []byte(body), GroupID: group, DeduplicationID: body})
			sent[group] = append(sent[group], body)
		}
	}
	if err := p.Send(context.Background(), msgs...); err != nil {
		t.Fatalf("send: %v", err)
	}
	return sent
}

// For every group, the sequence of first successes is the sent order, even
// with handlers failing at random; nothing is lost.
func TestFIFOGroupOrderWithFailures(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		groups, perGroup := 20, 100
		if !b.Caps.DeepQueues {
			perGroup = 10 // keep the queue shallow where receive slows with depth
		}
		q := b.CreateQueue(t, backend.QueueOptions{FIFO: true, VisibilityTimeout: 2 * time.Second})
		p, err := patterns.NewProducer(b.SQS(), q.URL)
		if err != nil {
			t.Fatal(err)
		}
		sent := sendGroups(t, p, groups, perGroup)

		cfg := quietConfig(q.URL)
		cfg.Workers = 4
		c, _ := patterns.NewConsumer(b.SQS(), cfg.url, cfg.set)
		var mu sync.Mutex
		done := map[string]bool{}
		order := map[string][]string{}
		var distinct, failures atomic.Int64
		rng := rand.New(rand.NewPCG(1, 2))
		stop := runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				mu.Lock()
				defer mu.Unlock()
				if rng.Float64() < 0.05 {
					failures.Add(1)
					return errors.New("random failure")
				}
				body := string(m.Body)
				if !done[body] {
					done[body] = true
					order[m.GroupID] = append(order[m.GroupID], body)
					distinct.Add(1)
				}
				return nil
			})
		})
		waitFor(t, 4*time.Minute, "every message handled", func() bool { return distinct.Load() == int64(groups*perGroup) })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d failures injected, stats %+v", b.Name, failures.Load(), c.Stats())
		if !b.Caps.FIFOOrderAfterVisibilityExpiry {
			t.Logf("%s lacks FIFOOrderAfterVisibilityExpiry (localstack/FIDELITY.md): order after a failure is the emulator's, not checked; completeness is", b.Name)
			return
		}
		for g, want := range sent {
			got := order[g]
			for i := range want {
				if i >= len(got) || got[i] != want[i] {
					t.Fatalf("group %s: handled order diverges at %d: got %v, want %v", g, i, got[max(0, i-2):min(len(got), i+3)], want[max(0, i-2):min(len(want), i+3)])
				}
			}
		}
	})
}

// A message sent twice with the same deduplication id within five minutes
// is delivered once.
func TestFIFODeduplication(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{FIFO: true})
		p, _ := patterns.NewProducer(b.SQS(), q.URL)
		ctx := context.Background()
		for range 2 {
			if err := p.Send(ctx, &patterns.Message{Body: []byte("charge card 42"), GroupID: "card-42", DeduplicationID: "charge-42"}); err != nil {
				t.Fatal(err)
			}
		}
		if got := len(b.Drain(t, q.URL, 2*time.Second)); got != 1 {
			t.Errorf("delivered %d times, want once", got)
		}
		// Re-sent after the first was received and deleted, still within
		// five minutes: AWS deduplicates it too.
		if err := p.Send(ctx, &patterns.Message{Body: []byte("charge card 42"), GroupID: "card-42", DeduplicationID: "charge-42"}); err != nil {
			t.Fatal(err)
		}
		// A loaded moto can take seconds to answer: wait long enough that
		// "not delivered" means deduplicated, not slow.
		got := len(b.Drain(t, q.URL, 5*time.Second))
		switch {
		case b.Caps.FIFODedupAfterDelete && got != 0:
			t.Errorf("re-sent after delete: delivered %d times, want 0 (deduplicated for 5 minutes)", got)
		case !b.Caps.FIFODedupAfterDelete && got != 1:
			t.Errorf("%s lacks FIFODedupAfterDelete but delivered %d times: update the capability", b.Name, got)
		case !b.Caps.FIFODedupAfterDelete:
			t.Logf("%s lacks FIFODedupAfterDelete (localstack/FIDELITY.md): the re-send was delivered again", b.Name)
		}
	})
}

// A missing or invalid group id on a FIFO queue fails before any request.
func TestFIFOGroupIDFailsFast(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{FIFO: true, ContentDedup: true})
		var rc patterns.RequestCounter
		p, _ := patterns.NewProducer(b.SQS(&rc), q.URL)
		for _, g := range []string{"", "has space", string(make([]byte, 129))} {
			err := p.Send(context.Background(), &patterns.Message{Body: []byte("x"), GroupID: g}, &patterns.Message{Body: []byte("y"), GroupID: "ok"})
			if !errors.Is(err, patterns.ErrInvalidGroupID) {
				t.Errorf("group %q: err = %v, want ErrInvalidGroupID", g, err)
			}
		}
		if rc.Total() != 0 {
			t.Errorf("%d requests made, want none", rc.Total())
		}
	})
}
