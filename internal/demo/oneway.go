package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-aws/courier/patterns"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// consume runs a consumer in the background; stop ends it and returns its error.
func consume(ctx context.Context, c interface {
	Run(context.Context, patterns.Handler) error
}, h patterns.Handler) (stop func() error) {
	return background(ctx, func(ctx context.Context) error { return c.Run(ctx, h) })
}

// background runs fn until stop is called; stop returns fn's error.
func background(ctx context.Context, fn func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
}

// oneWay: a sender puts orders on a queue and goes on; a receiver handles
// them later. Nobody replies.
func oneWay(ctx context.Context, env *Env) (Result, error) {
	const n = 20
	url, _, err := env.Queue(ctx, "orders", QueueSpec{MaxReceiveCount: 3})
	if err != nil {
		return Result{}, err
	}
	sender, err := patterns.NewSender(env.SQS, url)
	if err != nil {
		return Result{}, err
	}
	msgs := make([]*patterns.Message, n)
	for i := range msgs {
		msgs[i] = &patterns.Message{Body: []byte(fmt.Sprintf(`{"order":%d}`, i+1))}
		msgs[i].SetAttr("kind", "order")
	}
	if err := sender.Send(ctx, msgs...); err != nil {
		return Result{}, err
	}
	env.Trail.Add("sender", "orders queue", fmt.Sprintf("SendMessageBatch of %d orders", n))

	receiver, err := patterns.NewReceiver(env.SQS, url, func(o *patterns.ConsumerOptions) {
		o.WaitTime = 2 * time.Second
		o.Logger = quiet
	})
	if err != nil {
		return Result{}, err
	}
	var handled atomic.Int64
	seen := sync.Map{}
	stop := consume(ctx, receiver, func(ctx context.Context, m *patterns.Message) error {
		if _, dup := seen.LoadOrStore(m.ID, true); !dup {
			handled.Add(1)
		}
		env.Trail.Add("orders queue", "receiver", "deliver order")
		return nil
	})
	werr := waitUntil(ctx, func() bool { return handled.Load() == n })
	if err := stop(); err != nil {
		return Result{}, err
	}
	if werr != nil {
		return Result{Messages: int(handled.Load())}, fmt.Errorf("handled %d of %d: %w", handled.Load(), n, werr)
	}
	st := receiver.Stats()
	env.Trail.Add("receiver", "orders queue", fmt.Sprintf("DeleteMessageBatch (%d deleted)", st.Deleted))
	if st.Deleted != n {
		return Result{Messages: n}, fmt.Errorf("deleted %d of %d", st.Deleted, n)
	}
	return Result{Messages: n, Summary: fmt.Sprintf("%d orders sent one-way, each handled and deleted once", n)}, nil
}

// competingConsumers: three consumers share one queue; SQS gives each
// message to one of them.
func competingConsumers(ctx context.Context, env *Env) (Result, error) {
	const n, consumers = 300, 3
	url, _, err := env.Queue(ctx, "jobs", QueueSpec{MaxReceiveCount: 3})
	if err != nil {
		return Result{}, err
	}
	group, err := patterns.NewCompetingConsumers(env.SQS, url, consumers, func(o *patterns.ConsumerOptions) {
		o.WaitTime = 2 * time.Second
		o.Logger = quiet
	})
	if err != nil {
		return Result{}, err
	}
	var handled atomic.Int64
	stop := consume(ctx, group, func(ctx context.Context, m *patterns.Message) error {
		time.Sleep(2 * time.Millisecond) // a little work, so the load spreads
		handled.Add(1)
		return nil
	})
	p, err := patterns.NewProducer(env.SQS, url)
	if err != nil {
		return Result{}, err
	}
	msgs := make([]*patterns.Message, n)
	for i := range msgs {
		msgs[i] = &patterns.Message{Body: []byte(fmt.Sprintf(`{"job":%d}`, i+1))}
	}
	if err := p.Send(ctx, msgs...); err != nil {
		return Result{}, err
	}
	env.Trail.Add("producer", "jobs queue", fmt.Sprintf("%d jobs in %d batches", n, n/10))
	werr := waitUntil(ctx, func() bool { return handled.Load() >= n })
	if err := stop(); err != nil {
		return Result{}, err
	}
	if werr != nil {
		return Result{Messages: int(handled.Load())}, fmt.Errorf("handled %d of %d: %w", handled.Load(), n, werr)
	}
	share := ""
	for i, c := range group.Consumers() {
		st := c.Stats()
		env.Trail.Add("jobs queue", fmt.Sprintf("consumer %d", i+1), fmt.Sprintf("%d jobs", st.Handled))
		share += fmt.Sprintf(" %d", st.Handled)
	}
	if st := group.Stats(); st.Deleted != n {
		return Result{Messages: n}, fmt.Errorf("deleted %d of %d", st.Deleted, n)
	}
	return Result{Messages: n, Summary: fmt.Sprintf("%d jobs shared by %d consumers (%s), each deleted once", n, consumers, share[1:])}, nil
}
