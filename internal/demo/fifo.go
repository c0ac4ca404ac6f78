package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// fifo: three accounts' transactions on a FIFO queue. Each account is a
// message group: its transactions are handled one at a time, in order,
// while different accounts run in parallel. One handler failure holds its
// account back until the message comes again; the others go on.
func fifo(ctx context.Context, env *Env) (Result, error) {
	const per = 5
	accounts := []string{"alice", "bob", "carol"}
	url, _, err := env.Queue(ctx, "ledger", QueueSpec{FIFO: true, VisibilitySeconds: 1, MaxReceiveCount: 5})
	if err != nil {
		return Result{}, err
	}
	p, err := patterns.NewProducer(env.SQS, url)
	if err != nil {
		return Result{}, err
	}
	var msgs []*patterns.Message
	for i := range per {
		for _, a := range accounts {
			body := fmt.Sprintf("%s tx %d", a, i+1)
			msgs = append(msgs, &patterns.Message{Body: []byte(body), GroupID: a, DeduplicationID: fmt.Sprintf("%s-%d", a, i+1)})
		}
	}
	// A duplicate send (same deduplication id) is dropped by SQS.
	msgs = append(msgs, &patterns.Message{Body: []byte("alice tx 1"), GroupID: "alice", DeduplicationID: "alice-1"})
	if err := p.Send(ctx, msgs...); err != nil {
		return Result{}, err
	}
	env.Trail.Add("producer", "ledger.fifo", fmt.Sprintf("%d transactions in 3 groups, plus a duplicate", len(msgs)-1))

	c, err := patterns.NewConsumer(env.SQS, url, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Workers = 3
		o.Logger = quiet
	})
	if err != nil {
		return Result{}, err
	}
	var mu sync.Mutex
	order := map[string][]string{}
	seen := map[string]bool{}
	failedOnce := false
	stop := consume(ctx, c, func(ctx context.Context, m *patterns.Message) error {
		mu.Lock()
		defer mu.Unlock()
		body := string(m.Body)
		if body == "bob tx 2" && !failedOnce {
			failedOnce = true
			env.Trail.Add("ledger.fifo", "worker "+m.GroupID, body+" FAILED, group waits")
			return errors.New("ledger locked")
		}
		if !seen[body] {
			seen[body] = true
			order[m.GroupID] = append(order[m.GroupID], body)
		}
		env.Trail.Add("ledger.fifo", "worker "+m.GroupID, body)
		return nil
	})
	werr := waitUntil(ctx, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == per*len(accounts)
	})
	time.Sleep(1500 * time.Millisecond) // a duplicate would arrive now
	if err := stop(); err != nil {
		return Result{}, err
	}
	if werr != nil {
		return Result{}, fmt.Errorf("handled %d of %d: %w", len(seen), per*len(accounts), werr)
	}
	for _, a := range accounts {
		for i, body := range order[a] {
			if want := fmt.Sprintf("%s tx %d", a, i+1); body != want {
				return Result{Messages: len(seen)}, fmt.Errorf("group %s out of order: %v", a, order[a])
			}
		}
	}
	if h := c.Stats().Handled; h != int64(per*len(accounts)) {
		return Result{Messages: len(seen)}, fmt.Errorf("handled %d deliveries, want %d: the duplicate was not deduplicated", h, per*len(accounts))
	}
	return Result{Messages: len(seen), Summary: fmt.Sprintf("%d transactions in %d groups, each group in order (bob waited behind a failure); the duplicate was dropped", len(seen), len(accounts))}, nil
}
