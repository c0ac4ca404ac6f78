package patterns

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// AggregatorOptions configures an Aggregator (NewAggregator): the
// Consumer of the response queue and the completion rules.
type AggregatorOptions struct {
	ConsumerOptions
	// Predicate completes an aggregate (CompletedPredicate) when it
	// returns true; it sees every aggregate after each response counted.
	Predicate func(*Aggregate) bool
	// Default is the rule of aggregates no scatterer opened: their first
	// response opens them (for responders whose requests were sent by
	// other means). Nil: a response to an unknown aggregate is ignored
	// and counted (AggregatorStats.Unknown). Default.Deadline is not
	// supported: nobody would send the deadline message.
	Default *Completion
}

// aggregatorConfig is what an Aggregator runs with.
type aggregatorConfig struct {
	QueueURL  string
	Store     AggregateStore
	Processor Processor
	AggregatorOptions
}

func (c aggregatorConfig) validate() error {
	if c.QueueURL != "" {
		if err := (consumerConfig{QueueURL: c.QueueURL, ConsumerOptions: c.ConsumerOptions}).validate(); err != nil {
			return err
		}
	}
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: aggregator needs a Store", ErrInvalidConfig)
	case c.Processor == nil:
		return fmt.Errorf("%w: aggregator needs a Processor", ErrInvalidConfig)
	case c.Default != nil && c.Default.Deadline != 0:
		return fmt.Errorf("%w: Default.Deadline: deadlines are sent by the scatterer (ScatterOptions.Deadline)", ErrInvalidConfig)
	case c.Default != nil && c.Default.Quorum < 0:
		return fmt.Errorf("%w: Default.Quorum %d < 0", ErrInvalidConfig, c.Default.Quorum)
	case c.Default != nil && len(c.Default.Expected) == 0 && c.Default.Quorum == 0 && c.Predicate == nil:
		return fmt.Errorf("%w: Default has no rule (Expected, Quorum) and there is no Predicate", ErrNoCompletion)
	}
	return nil
}

// AggregatorStats counts what an Aggregator did.
type AggregatorStats struct {
	Responses  int64 // responses counted in an aggregate
	Duplicates int64 // second answers of a responder, ignored
	Late       int64 // responses to a complete aggregate or past its deadline, ignored
	Unknown    int64 // responses to no known aggregate, or with no correlation id, ignored
	Completed  int64 // aggregates completed (processor called) by this aggregator
	Deadlines  int64 // of those, completed by their deadline
	// ProcessorErrors are processor failures; each is retried on the
	// redelivery of the message that completed the aggregate.
	ProcessorErrors int64
	Consumer        ConsumerStats
}

// Aggregator is the gather half of scatter-gather: it consumes the
// response queue (Run), or runs as the handler of a Lambda function on it
// (Handler).
type Aggregator struct {
	client   SQSAPI
	cfg      aggregatorConfig
	consumer *Consumer
	log      *slog.Logger
	now      func() time.Time
	stats    struct {
		responses, duplicates, late, unknown, completed, deadlines, processorErrors atomic.Int64
	}
	// done, when set, hears of each aggregate this aggregator completed,
	// after the processor and the stats (ScatterGather's waiters).
	done func(*Aggregate)
}

// NewAggregator returns an Aggregator of the response queue at queueURL
// that keeps aggregates in store and hands each completed one to
// processor. queueURL may be "" for an Aggregator that only serves as a
// Handler (a Lambda function on the response queue); Run needs it. optFns
// set its AggregatorOptions; everything is checked here.
func NewAggregator(client SQSAPI, queueURL string, store AggregateStore, processor Processor, optFns ...func(*AggregatorOptions)) (*Aggregator, error) {
	cfg := aggregatorConfig{QueueURL: queueURL, Store: store, Processor: processor}
	for _, fn := range optFns {
		fn(&cfg.AggregatorOptions)
	}
	return newAggregator(client, cfg)
}

func newAggregator(client SQSAPI, cfg aggregatorConfig) (*Aggregator, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Aggregator{client: client, cfg: cfg, log: cfg.Logger, now: time.Now}
	if a.log == nil {
		a.log = slog.Default()
	}
	if cfg.QueueURL != "" {
		c, err := newConsumer(client, consumerConfig{QueueURL: cfg.QueueURL, ConsumerOptions: cfg.ConsumerOptions})
		if err != nil {
			return nil, err
		}
		a.consumer = c
	}
	return a, nil
}

// Stats returns a snapshot of the counters.
func (a *Aggregator) Stats() AggregatorStats {
	s := &a.stats
	st := AggregatorStats{
		Responses: s.responses.Load(), Duplicates: s.duplicates.Load(), Late: s.late.Load(), Unknown: s.unknown.Load(),
		Completed: s.completed.Load(), Deadlines: s.deadlines.Load(), ProcessorErrors: s.processorErrors.Load(),
	}
	if a.consumer != nil {
		st.Consumer = a.consumer.Stats()
	}
	return st
}

// Run consumes the response queue until ctx ends, then shuts down as
// Consumer.Run does.
func (a *Aggregator) Run(ctx context.Context) error {
	if a.consumer == nil {
		return fmt.Errorf("%w: the aggregator has no QueueURL to consume", ErrInvalidConfig)
	}
	return a.consumer.Run(ctx, a.Handler())
}

// Handler returns the aggregator's message handler, for a Lambda function
// whose event source is the response queue (the Lambda adapter runs it),
// or any loop of your own. Run uses it.
func (a *Aggregator) Handler() Handler { return a.handle }

func (a *Aggregator) handle(ctx context.Context, m *Message) error {
	cid := m.CorrelationID
	if cid == "" {
		a.stats.unknown.Add(1)
		a.log.WarnContext(ctx, "courier: response without a correlation id; ignored", "queue", m.QueueURL, "message_id", m.ID)
		return nil
	}
	if m.Header(deadlineHeader) != "" {
		return a.deadline(ctx, m)
	}
	r := Response{
		Responder: m.Header(ResponderHeader), Queue: m.Header(ResponderQueueHeader), MessageID: m.ID, Body: m.Body,
		Error: m.Header(ErrorHeader), ReceivedAt: a.now().UTC(),
	}
	if len(m.Attributes) > 0 {
		r.Attributes = map[string]string{}
		for k, v := range m.Attributes {
			if v.Binary == nil {
				r.Attributes[k] = v.Value
			}
		}
	}
	var implicit *Aggregate
	if d := a.cfg.Default; d != nil {
		implicit = &Aggregate{CorrelationID: cid, Expected: d.Expected, Quorum: d.Quorum, OpenedAt: r.ReceivedAt}
	}
	res, err := a.cfg.Store.Add(ctx, cid, r, implicit)
	if err != nil {
		return fmt.Errorf("courier: aggregator: add response %s to %s: %w", m.ID, cid, err)
	}
	switch res.Outcome {
	case Added:
		a.stats.responses.Add(1)
	case AlreadyAdded:
	case Duplicate:
		a.stats.duplicates.Add(1)
		a.log.InfoContext(ctx, "courier: duplicate response ignored", "correlation_id", cid, "responder", r.Responder, "message_id", m.ID)
		return nil
	case Late:
		a.stats.late.Add(1)
		a.log.InfoContext(ctx, "courier: late response ignored", "correlation_id", cid, "responder", r.Responder, "message_id", m.ID)
		if agg := res.Aggregate; agg != nil && (!agg.Complete() || (agg.CompletedBy == m.ID && !agg.Processed)) {
			// Past the deadline: complete it now rather than wait for the
			// deadline message (or retry the processor this message ran).
			return a.complete(ctx, m.QueueURL, cid, CompletedDeadline, m.ID)
		}
		return nil
	case Unknown:
		a.stats.unknown.Add(1)
		a.log.InfoContext(ctx, "courier: response to no open aggregate ignored", "correlation_id", cid, "responder", r.Responder, "message_id", m.ID)
		return nil
	}
	reason, done := res.Aggregate.evaluate(a.now(), a.cfg.Predicate)
	if !done {
		return nil
	}
	return a.complete(ctx, m.QueueURL, cid, reason, m.ID)
}

// complete claims the completion of cid for message by (received on
// queue; "": the configured QueueURL) and, when this call won it, runs the
// processor.
func (a *Aggregator) complete(ctx context.Context, queue, cid string, reason CompletionReason, by string) error {
	agg, err := a.cfg.Store.Complete(ctx, cid, reason, by, a.now().UTC())
	if err != nil {
		return fmt.Errorf("courier: aggregator: complete %s: %w", cid, err)
	}
	if agg == nil {
		return nil // another message, or another aggregator, completed it
	}
	if err := a.cfg.Processor(ctx, agg); err != nil {
		a.stats.processorErrors.Add(1)
		return fmt.Errorf("courier: aggregator: processor of %s: %w", cid, err)
	}
	a.stats.completed.Add(1)
	if agg.Reason == CompletedDeadline {
		a.stats.deadlines.Add(1)
	}
	if m := a.cfg.Metrics; m != nil {
		m.Completed(ctx, cmp.Or(queue, a.cfg.QueueURL), agg.Reason, agg.CompletedAt.Sub(agg.OpenedAt))
	}
	if a.done != nil {
		a.done(agg)
	}
	if err := a.cfg.Store.MarkProcessed(ctx, cid); err != nil {
		// Processed already: only a redelivery of this message could run
		// the processor again.
		a.log.WarnContext(ctx, "courier: aggregate processed but not marked", "correlation_id", cid, "err", err)
	}
	return nil
}

// deadline handles the deadline message of an aggregate.
func (a *Aggregator) deadline(ctx context.Context, m *Message) error {
	cid := m.CorrelationID
	agg, err := a.cfg.Store.Get(ctx, cid)
	if err != nil {
		return fmt.Errorf("courier: aggregator: deadline of %s: %w", cid, err)
	}
	switch {
	case agg == nil:
		return nil // expired
	case agg.Complete() && (agg.CompletedBy != m.ID || agg.Processed):
		return nil // completed before its deadline
	case !agg.Complete() && a.now().Before(agg.Deadline):
		// Not yet (a deadline beyond the 15 minutes SQS can delay, or a
		// clock ahead of ours): wait again for the rest.
		q := cmp.Or(m.QueueURL, a.cfg.QueueURL)
		return sendDeadline(ctx, a.client, q, cid, agg.Deadline.Sub(a.now()))
	}
	return a.complete(ctx, m.QueueURL, cid, CompletedDeadline, m.ID)
}

// sendDeadline sends the deadline message of cid to the response queue,
// delayed by d (whole seconds, rounded up, at most 15 minutes).
func sendDeadline(ctx context.Context, client SQSSendAPI, queueURL, cid string, d time.Duration) error {
	d = (d + time.Second - 1).Truncate(time.Second)
	d = min(max(d, time.Second), maxDelay)
	m := &Message{Body: []byte("deadline of " + cid), CorrelationID: cid, Delay: d}
	m.SetHeader(deadlineHeader, "1")
	p, err := NewProducer(client, queueURL)
	if err != nil {
		return err
	}
	if p.queue.FIFO() {
		return fmt.Errorf("%w: deadlines need a standard response queue (FIFO queues take no per-message delay)", ErrInvalidConfig)
	}
	return p.Send(ctx, m)
}
