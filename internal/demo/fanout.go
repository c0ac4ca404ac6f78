package demo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// fanOut: one topic, three subscribers each reading its own queue (one
// with raw delivery, two with the SNS envelope); every subscriber gets every
// event.
func fanOut(ctx context.Context, env *Env) (Result, error) {
	const n = 10
	topic, err := env.Topic(ctx, "orders-events", false)
	if err != nil {
		return Result{}, err
	}
	subscribers := []struct {
		name string
		raw  bool
	}{{"billing", true}, {"shipping", false}, {"analytics", false}}
	var urls []string
	for _, s := range subscribers {
		url, _, err := env.Queue(ctx, s.name, QueueSpec{MaxReceiveCount: 3})
		if err != nil {
			return Result{}, err
		}
		if _, err := patterns.Chain(ctx, env.SetupSNS(), env.SetupSQS(), topic, url, func(o *patterns.ChainOptions) { o.Raw = s.raw }); err != nil {
			return Result{}, err
		}
		env.Trail.Add("orders topic", s.name+" queue", fmt.Sprintf("subscribed (raw delivery %v)", s.raw))
		urls = append(urls, url)
	}
	pub, err := patterns.NewPublisher(env.SNS, topic)
	if err != nil {
		return Result{}, err
	}
	var msgs []*patterns.Message
	for i := range n {
		m := &patterns.Message{Body: []byte(fmt.Sprintf(`{"order":%d}`, i+1))}
		m.SetAttr("event", "order-placed")
		msgs = append(msgs, m)
	}
	if err := pub.Publish(ctx, msgs...); err != nil {
		return Result{}, err
	}
	env.Trail.Add("publisher", "orders topic", fmt.Sprintf("PublishBatch of %d events", n))
	var wg sync.WaitGroup
	errs := make([]error, len(subscribers))
	for i, s := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := patterns.NewConsumer(env.SQS, urls[i], func(o *patterns.ConsumerOptions) {
				o.WaitTime = time.Second
				o.Logger = quiet
			})
			if err != nil {
				errs[i] = err
				return
			}
			var mu sync.Mutex
			seen := map[string]bool{}
			stop := consume(ctx, c, func(ctx context.Context, m *patterns.Message) error {
				if m.Attr("event") != "order-placed" {
					return fmt.Errorf("attribute lost on the way to %s", s.name)
				}
				mu.Lock()
				seen[string(m.Body)] = true
				mu.Unlock()
				return nil
			})
			werr := waitUntil(ctx, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n })
			_ = stop()
			if werr != nil {
				errs[i] = fmt.Errorf("%s got %d of %d: %w", s.name, len(seen), n, werr)
				return
			}
			env.Trail.Add(s.name+" queue", s.name, fmt.Sprintf("%d events", n))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Result{}, err
		}
	}
	return Result{Messages: n * len(subscribers), Summary: fmt.Sprintf("%d events published once, delivered to each of %d subscriber queues (raw and enveloped)", n, len(subscribers))}, nil
}
