package patterns

import (
	"context"
	"fmt"
	"sync"
)

// Point-to-point with competing consumers: several consumers read one
// queue; SQS gives each message to one of them at a time (for its visibility
// timeout), which balances the load. Consumers are usually separate
// processes, each running its own Consumer on the same queue; CompetingConsumers
// runs n of them in one process, which is what a test or a single host with
// several independent pollers wants.

// CompetingConsumers is a group of Consumers on one queue.
type CompetingConsumers struct {
	consumers []*Consumer
}

// NewCompetingConsumers returns n consumers of the queue at queueURL, each
// with the same options.
func NewCompetingConsumers(client SQSReceiveAPI, queueURL string, n int, optFns ...func(*ConsumerOptions)) (*CompetingConsumers, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d competing consumers", ErrInvalidConfig, n)
	}
	g := &CompetingConsumers{}
	for range n {
		c, err := NewConsumer(client, queueURL, optFns...)
		if err != nil {
			return nil, err
		}
		g.consumers = append(g.consumers, c)
	}
	return g, nil
}

// Consumers returns the members, e.g. to read their Stats.
func (g *CompetingConsumers) Consumers() []*Consumer { return g.consumers }

// Run runs every consumer with h until ctx is done and returns the first
// error any of them returned.
func (g *CompetingConsumers) Run(ctx context.Context, h Handler) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range g.consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx, h); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}

// Stats returns the sum of the members' counters.
func (g *CompetingConsumers) Stats() ConsumerStats {
	var s ConsumerStats
	for _, c := range g.consumers {
		x := c.Stats()
		s.Receives += x.Receives
		s.Received += x.Received
		s.Handled += x.Handled
		s.Failed += x.Failed
		s.Deleted += x.Deleted
		s.DeleteErrors += x.DeleteErrors
		s.Released += x.Released
		s.Extended += x.Extended
	}
	return s
}
