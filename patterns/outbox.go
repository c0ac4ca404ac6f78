package patterns

import (
	"context"
	"errors"
	"sync"
	"time"
)

// outbox sends single messages to any number of queues and batches the
// ones that wait while an earlier send is in flight: a lone message goes at
// once (no linger, no added latency), and under load one SendMessageBatch
// carries up to ten. Requests from many concurrent calls, and replies from
// many handlers, share requests this way.
type outbox struct {
	client  SQSSendAPI
	in      chan *outgoing
	stopped chan struct{}

	mu        sync.Mutex
	producers map[string]*Producer
}

type outgoing struct {
	ctx  context.Context
	p    *Producer
	m    *Message
	done chan error
}

const (
	// outboxMaxRound is how many waiting messages one round takes: up to
	// ten batches, sent concurrently by the Producers.
	outboxMaxRound = 100
	// A round in flight makes the next one wait, and fill up, unless it
	// takes longer than outboxStall; then up to outboxMaxRounds go at once,
	// so that one slow send (retries, a throttled queue) holds up no one
	// for long. On LocalStack one round at a time cost 0.9 requests per
	// call and four at a time 1.5, at lower throughput.
	outboxStall     = 100 * time.Millisecond
	outboxMaxRounds = 4
)

func newOutbox(client SQSSendAPI) *outbox {
	return &outbox{client: client, in: make(chan *outgoing), stopped: make(chan struct{}), producers: map[string]*Producer{}}
}

func (o *outbox) producer(dest string) (*Producer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p, ok := o.producers[dest]; ok {
		return p, nil
	}
	p, err := NewProducer(o.client, dest)
	if err != nil {
		return nil, err
	}
	if len(o.producers) >= 1024 {
		clear(o.producers) // a responder meets many reply queues over time
	}
	o.producers[dest] = p
	return p, nil
}

// send sends m to dest and returns when SQS took it, or refused it, or ctx
// ended (then m may still be sent). A message SQS would refuse fails here,
// alone, before it joins a batch.
func (o *outbox) send(ctx context.Context, dest string, m *Message) error {
	p, err := o.producer(dest)
	if err != nil {
		return err
	}
	if err := m.validate(p.b.maxMessage); err != nil {
		return err
	}
	if err := p.validate(m); err != nil {
		return err
	}
	x := &outgoing{ctx: ctx, p: p, m: m, done: make(chan error, 1)}
	select {
	case o.in <- x:
	case <-o.stopped:
		return ErrRequesterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-x.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run sends until ctx ends, then waits for the sends in flight.
func (o *outbox) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(o.stopped)
	finished := make(chan struct{}, outboxMaxRounds) // never blocks a round
	inflight := 0
	stall := time.NewTimer(outboxStall)
	defer stall.Stop()
	for {
		if inflight > 0 {
			full := inflight >= outboxMaxRounds
			stall.Reset(outboxStall)
			select {
			case <-finished:
				inflight--
			case <-stall.C:
				if full {
					continue
				}
			case <-ctx.Done():
				return
			}
		}
		var round []*outgoing
		select {
		case x := <-o.in:
			round = append(round, x)
		case <-finished:
			inflight--
			continue
		case <-ctx.Done():
			return
		}
	more:
		for len(round) < outboxMaxRound {
			select {
			case x := <-o.in:
				round = append(round, x)
			default:
				break more
			}
		}
		inflight++
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.flush(ctx, round)
			finished <- struct{}{}
		}()
	}
}

// flush sends one round, a Producer.Send per destination, and answers
// each message with its own outcome.
func (o *outbox) flush(ctx context.Context, round []*outgoing) {
	groups := map[*Producer][]*outgoing{}
	for _, x := range round {
		if err := x.ctx.Err(); err != nil {
			x.done <- err // its caller gave up: not worth a request
			continue
		}
		groups[x.p] = append(groups[x.p], x)
	}
	var wg sync.WaitGroup
	for p, xs := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := make([]*Message, len(xs))
			for i, x := range xs {
				msgs[i] = x.m
			}
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := p.Send(sctx, msgs...)
			cancel()
			errs := make([]error, len(xs))
			var se *SendError
			switch {
			case errors.As(err, &se):
				for _, f := range se.Failed {
					errs[f.Index] = f.Err
				}
			case err != nil:
				for i := range errs {
					errs[i] = err
				}
			}
			for i, x := range xs {
				x.done <- errs[i]
			}
		}()
	}
	wg.Wait()
}
