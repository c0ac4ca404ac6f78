package patterns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scatter-Gather: one request goes to every responder that may be
// interested, and their responses are gathered into one aggregate.
//
//   - Scatter (Scatterer): the request goes to a list of destinations,
//     queues (a recipient list: who should answer is known) and/or SNS
//     topics (fan-out, optionally filtered by the subscriptions' filter
//     policies). Like a request of request-response, it carries a
//     correlation id and the return address of the response queue.
//   - Responders are request-response Responders, unchanged: they reply
//     to the return address with the correlation id. On a scatter request
//     they also name themselves (ResponderHeader), so that the aggregate
//     says who answered and who did not.
//   - Gather (Aggregator): consumes the response queue, groups responses
//     by correlation id in an AggregateStore and completes an aggregate
//     by its rule (Completion): all expected responders answered, a
//     quorum (first N), a deadline (partial results, naming who did not
//     answer), or a predicate of the user's. Responses that come after
//     completion, and second answers of a responder, are ignored and
//     counted.
//   - Processor: the user's function that receives each completed
//     aggregate (at least once; see below).
//
// The scatterer opens the aggregate in the store (with its rule) before
// any request goes out, so the aggregator, which may be another process or
// a Lambda function, knows what to wait for. A deadline is a message the
// scatterer sends to the response queue itself, delayed until the
// deadline: whichever aggregator receives it completes the aggregate with
// what came, so no aggregator has to keep timers, and a deadline survives
// a crash of the scatterer.
//
// Completion is exactly once, processing at least once. The store
// completes an aggregate for one message only (a conditional write in
// DynamoDB), so of many concurrent aggregators one calls the processor.
// When the processor fails, the response that completed the aggregate is
// not deleted; SQS delivers it again and the processor runs again, until
// it succeeds and the aggregate is marked processed. A crash (or a lost
// MarkProcessed, or a visibility timeout that ran out) after the
// processor's side effect and before that mark runs it again, with the
// same aggregate: no store can tell whether a side effect outside it
// happened. Deduplicate by Aggregate.CorrelationID, the key of the
// aggregate (IdempotentProcessor does it with an IdempotencyStore), or
// make the side effect idempotent by it (a conditional write keyed by it).

// ScatterHeader marks a scatter request; a Responder answers it with its
// name in ResponderHeader.
const ScatterHeader = "scatter"

// ResponderHeader names the responder in a reply to a scatter request:
// ResponderConfig.Name, or by default the responder's request queue URL.
// ResponderQueueHeader is that queue's URL, in every such reply.
const (
	ResponderHeader      = "responder"
	ResponderQueueHeader = "responder-queue"
)

// deadlineHeader marks the deadline message of an aggregate.
const deadlineHeader = "sg-deadline"

// maxDelay is the longest delay SQS gives a message; a later deadline is
// reached in steps.
const maxDelay = 15 * time.Minute

// Errors of scatter-gather.
var (
	// ErrAggregateExists: Open found an aggregate with the same correlation id.
	ErrAggregateExists = errors.New("courier: aggregate already open")
	// ErrNoCompletion: an aggregate with no way to complete (no expected
	// responders, quorum, deadline or predicate).
	ErrNoCompletion = errors.New("courier: aggregate has no completion rule")
)

// Completion is the rule that completes an aggregate: the first of these
// that holds. The aggregator's Predicate is a further rule.
type Completion struct {
	// Expected names the responders expected to answer, each by its
	// ResponderConfig.Name or by its request queue (URL or ARN: they name
	// the same responder); when all of them have answered, the aggregate
	// is complete (CompletedAll).
	Expected []string
	// Quorum completes the aggregate when this many responses came
	// (CompletedQuorum; first N). With concurrent aggregators a few more
	// may be in it.
	Quorum int
	// Deadline, counted from the scatter, completes the aggregate with
	// the responses that came by then (CompletedDeadline); Missing names
	// the expected responders that did not answer. SQS delays count
	// whole seconds: the deadline is met within a second or so after.
	Deadline time.Duration
}

// CompletionReason tells which rule completed an aggregate.
type CompletionReason string

const (
	CompletedAll       CompletionReason = "all"
	CompletedQuorum    CompletionReason = "quorum"
	CompletedDeadline  CompletionReason = "deadline"
	CompletedPredicate CompletionReason = "predicate"
)

// Response is one gathered response.
type Response struct {
	// Responder is who answered: the reply's ResponderHeader, or, from a
	// responder that does not name itself, "" (it then counts once per
	// message).
	Responder string `json:"responder,omitempty"`
	// Queue is the request queue of the responder that answered
	// (ResponderQueueHeader): the destination the request was sent to, so
	// that a responder with a Name of its own still answers for its queue
	// in Expected.
	Queue      string            `json:"queue,omitempty"`
	MessageID  string            `json:"message_id"`
	Body       []byte            `json:"body"`
	Attributes map[string]string `json:"attributes,omitempty"` // String and Number attributes
	// Error is the text of an error reply (ErrorHeader): the responder's
	// handler failed. It counts as an answer.
	Error      string    `json:"error,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// key identifies a response within its aggregate: a responder (its
// queue, else its name) counts once, and a response from an unnamed
// responder once per message.
func (r Response) key() string {
	switch {
	case r.Queue != "":
		return responderKey(r.Queue)
	case r.Responder != "":
		return responderKey(r.Responder)
	}
	return "message:" + r.MessageID
}

// is reports whether the response came from responder: its name or its
// queue (URL or ARN).
func (r Response) is(responder string) bool {
	k := responderKey(responder)
	return (r.Responder != "" && responderKey(r.Responder) == k) || (r.Queue != "" && responderKey(r.Queue) == k)
}

// Aggregate is the state of one scatter-gather: its rule, the responses
// counted so far, and, once complete, why and who is missing.
type Aggregate struct {
	CorrelationID string     `json:"correlation_id"`
	Expected      []string   `json:"expected,omitempty"`
	Quorum        int        `json:"quorum,omitempty"`
	Deadline      time.Time  `json:"deadline,omitzero"`
	OpenedAt      time.Time  `json:"opened_at"`
	Responses     []Response `json:"responses"` // in the order they were received
	// Set when complete.
	CompletedAt time.Time        `json:"completed_at,omitzero"`
	Reason      CompletionReason `json:"reason,omitempty"`
	Missing     []string         `json:"missing,omitempty"` // expected responders that did not answer
	// CompletedBy is the id of the message whose handling completed the
	// aggregate (a response, or the deadline message); the redelivery of
	// that message runs the processor again while Processed is false
	// (the processor runs at least once: deduplicate by CorrelationID).
	CompletedBy string `json:"-"`
	Processed   bool   `json:"-"`
}

// Complete reports whether the aggregate has been completed.
func (a *Aggregate) Complete() bool { return !a.CompletedAt.IsZero() }

// Answered reports whether responder (a name in Expected: a responder's
// Name, or its request queue's URL or ARN) has answered.
func (a *Aggregate) Answered(responder string) bool {
	for _, r := range a.Responses {
		if r.is(responder) {
			return true
		}
	}
	return false
}

// missing returns the expected responders that have not answered.
func (a *Aggregate) missing() []string {
	var out []string
	for _, e := range a.Expected {
		if !a.Answered(e) {
			out = append(out, e)
		}
	}
	return out
}

// evaluate applies the rule at now; predicate may be nil.
func (a *Aggregate) evaluate(now time.Time, predicate func(*Aggregate) bool) (CompletionReason, bool) {
	switch {
	case a.Complete():
		return a.Reason, true
	case len(a.Expected) > 0 && len(a.missing()) == 0:
		return CompletedAll, true
	case a.Quorum > 0 && len(a.Responses) >= a.Quorum:
		return CompletedQuorum, true
	case predicate != nil && predicate(a):
		return CompletedPredicate, true
	case !a.Deadline.IsZero() && !now.Before(a.Deadline):
		return CompletedDeadline, true
	}
	return "", false
}

// responderKey normalizes a responder name so that the queue URL a
// scatterer sent to, the URL a responder consumes (an emulator's, or the
// one Lambda derives from the queue ARN) and the queue ARN compare equal:
// a queue becomes ACCOUNT/NAME; anything else stays as it is.
func responderKey(id string) string {
	if strings.HasPrefix(id, "arn:") {
		if p := strings.Split(id, ":"); len(p) == 6 && p[2] == "sqs" {
			return p[4] + "/" + p[5]
		}
		return id
	}
	if q, err := ParseQueueURL(id); err == nil {
		return q.Account + "/" + q.Name
	}
	return id
}

// AddOutcome is what became of a response given to AggregateStore.Add.
type AddOutcome int

const (
	// Added: the response was counted.
	Added AddOutcome = iota
	// AlreadyAdded: this very message was counted before (SQS delivered
	// it again, or its handling failed after the add); the aggregate is
	// evaluated again.
	AlreadyAdded
	// Duplicate: the responder had answered already, in another message.
	Duplicate
	// Late: the aggregate was complete, or its deadline had passed (by
	// the response's ReceivedAt). Aggregate is set: an aggregate past its
	// deadline and not yet complete is completed by the caller.
	Late
	// Unknown: no such aggregate (never opened, or expired).
	Unknown
)

func (o AddOutcome) String() string {
	return [...]string{"added", "already added", "duplicate", "late", "unknown"}[o]
}

// AddResult is the outcome of an Add and, for Added, AlreadyAdded and
// Late, the aggregate as it is after it.
type AddResult struct {
	Outcome   AddOutcome
	Aggregate *Aggregate
}

// AggregateStore keeps the aggregates of scatter-gather. Implementations:
// MemoryAggregateStore (one process) and DynamoDBAggregateStore (any
// number of aggregator processes or Lambda invocations). Each method is
// atomic with respect to the others on the same aggregate.
type AggregateStore interface {
	// Open records a new aggregate: its correlation id, rule and
	// OpenedAt. It fails with ErrAggregateExists when one is there.
	Open(ctx context.Context, a *Aggregate) error
	// Add records r in the aggregate cid. When no aggregate cid is open,
	// implicit, if not nil, is opened with r as its first response (its
	// rule and OpenedAt taken from implicit); otherwise the outcome is
	// Unknown. Responses to a complete aggregate are Late, second answers
	// of a responder Duplicate (neither changes the aggregate).
	Add(ctx context.Context, cid string, r Response, implicit *Aggregate) (AddResult, error)
	// Complete marks the aggregate complete (reason, at) on behalf of the
	// message by, and returns it (with Missing), exactly once: to the
	// first caller, and again to a caller with the same by until
	// MarkProcessed (the redelivery of a message whose processor failed).
	// Every other caller gets nil.
	Complete(ctx context.Context, cid string, reason CompletionReason, by string, at time.Time) (*Aggregate, error)
	// MarkProcessed records that the processor succeeded.
	MarkProcessed(ctx context.Context, cid string) error
	// Get returns the aggregate, or nil when there is none.
	Get(ctx context.Context, cid string) (*Aggregate, error)
}

// Processor receives each completed aggregate, at least once: an error
// leaves the response that completed it on the queue, SQS delivers it
// again and the processor is called again with the same aggregate; and
// a crash after the processor returned, before the aggregate was marked
// processed, calls it again too. a.CorrelationID is the key to
// deduplicate by; IdempotentProcessor wraps a Processor to do so.
type Processor func(ctx context.Context, a *Aggregate) error

// aggregateCtxKey carries the aggregate through IdempotentProcessor's
// Handler.
type aggregateCtxKey struct{}

// IdempotentProcessor wraps p so that its side effects happen once per
// aggregate: keyed by the aggregate's correlation id in store, as
// Idempotent keys a handler's messages, so that a second call for an
// aggregate p completed (after a crash before MarkProcessed) is skipped,
// and a call while another runs it fails with ErrIdempotencyInProgress
// (retried on redelivery). o.Key must be nil: the key is the correlation
// id. o.RecordTTL defaults to DefaultAggregateTTL, as long as a redelivery
// can find the aggregate; o.InProgressTTL as Idempotent's.
func IdempotentProcessor(p Processor, store IdempotencyStore, o IdempotencyOptions) (Processor, error) {
	switch {
	case p == nil:
		return nil, fmt.Errorf("%w: IdempotentProcessor: nil processor", ErrInvalidConfig)
	case o.Key != nil:
		return nil, fmt.Errorf("%w: IdempotentProcessor: Key is the aggregate's correlation id; leave it nil", ErrInvalidConfig)
	}
	if o.RecordTTL == 0 {
		o.RecordTTL = DefaultAggregateTTL
	}
	o.Key = func(m *Message) (string, error) { return "aggregate:" + m.CorrelationID, nil }
	h, err := Idempotent(func(ctx context.Context, _ *Message) error {
		return p(ctx, ctx.Value(aggregateCtxKey{}).(*Aggregate))
	}, store, o)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, a *Aggregate) error {
		if a == nil || a.CorrelationID == "" {
			return fmt.Errorf("%w: an aggregate with no correlation id", ErrMalformedMessage)
		}
		return h(context.WithValue(ctx, aggregateCtxKey{}, a), &Message{ID: a.CorrelationID, CorrelationID: a.CorrelationID})
	}, nil
}

// AggregatorConfig configures an Aggregator: the Consumer of the response
// queue, the store and the processor. QueueURL may be empty for an
// Aggregator that only serves as a Handler (a Lambda function on the
// response queue); Run needs it.
type AggregatorConfig struct {
	ConsumerConfig
	Store     AggregateStore
	Processor Processor
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

// Validate reports a configuration that cannot work.
func (c AggregatorConfig) Validate() error {
	if c.QueueURL != "" {
		if err := c.ConsumerConfig.Validate(); err != nil {
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
	cfg      AggregatorConfig
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

// NewAggregator returns an Aggregator; the configuration is checked here.
func NewAggregator(client SQSAPI, cfg AggregatorConfig) (*Aggregator, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Aggregator{client: client, cfg: cfg, log: cfg.Logger, now: time.Now}
	if a.log == nil {
		a.log = slog.Default()
	}
	if cfg.QueueURL != "" {
		c, err := NewConsumer(client, cfg.ConsumerConfig)
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
			return a.complete(ctx, cid, CompletedDeadline, m.ID)
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
	return a.complete(ctx, cid, reason, m.ID)
}

// complete claims the completion of cid for message by and, when this
// call won it, runs the processor.
func (a *Aggregator) complete(ctx context.Context, cid string, reason CompletionReason, by string) error {
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
	return a.complete(ctx, cid, CompletedDeadline, m.ID)
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

// ScattererConfig configures a Scatterer.
type ScattererConfig struct {
	// ResponseQueueURL is the return address of every request: the queue
	// the aggregator consumes. A standard queue (deadlines are delayed
	// messages).
	ResponseQueueURL string
	Store            AggregateStore
	// Recipients computes a request's destinations when ScatterOptions.To
	// is empty. Optional.
	Recipients *RecipientList
}

// ScatterOptions shapes one scatter.
type ScatterOptions struct {
	// To are the destinations of the request: responder queues and/or
	// topics their queues subscribe to. Empty: ScattererConfig.Recipients.
	To []Destination
	// Completion is the aggregate's rule. When Expected is empty and
	// every destination is a queue, the queues are expected.
	Completion
}

// Scatterer sends scatter requests: it opens each aggregate in the store
// and sends the request to its destinations.
type Scatterer struct {
	sqs   SQSSendAPI
	cfg   ScattererConfig
	plain *RecipientList // for explicit destinations
	now   func() time.Time
}

// NewScatterer returns a Scatterer. snsClient may be nil when no request
// goes to a topic.
func NewScatterer(sqsClient SQSSendAPI, snsClient SNSPublishAPI, cfg ScattererConfig) (*Scatterer, error) {
	if sqsClient == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	q, err := ParseQueueURL(cfg.ResponseQueueURL)
	if err != nil {
		return nil, fmt.Errorf("%w: ResponseQueueURL: %w", ErrInvalidConfig, err)
	}
	if q.FIFO() {
		return nil, fmt.Errorf("%w: ResponseQueueURL %s: a standard queue is needed (deadlines are delayed messages)", ErrInvalidConfig, q.URL)
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: scatterer needs a Store", ErrInvalidConfig)
	}
	plain, err := NewRecipientList(sqsClient, snsClient, RecipientListConfig{})
	if err != nil {
		return nil, err
	}
	return &Scatterer{sqs: sqsClient, cfg: cfg, plain: plain, now: time.Now}, nil
}

// Scatter sends req to its destinations as a scatter request and returns
// its correlation id. The aggregate is opened first, with its rule; then
// the request (a copy of req carrying the correlation id, the return
// address and ScatterHeader) goes to every destination; then, with a
// Deadline, the deadline message goes to the response queue.
//
// A request that cannot go anywhere (bad destination, bad message) fails
// before the aggregate is opened. When some destinations failed, the
// error is a *RecipientError (the correlation id is returned with it) and
// the aggregate stays open: the others got
// the request, and the failed ones will be missing (give such scatters a
// Deadline or a Quorum).
func (s *Scatterer) Scatter(ctx context.Context, req *Message, o ScatterOptions) (string, error) {
	cid := newCorrelationID()
	n, err := s.scatter(ctx, cid, req, o, true)
	if n == 0 {
		return "", err
	}
	return cid, err
}

// scatter returns how many destinations got the request. deadlineMsg:
// send the deadline message (else the caller keeps the deadline).
func (s *Scatterer) scatter(ctx context.Context, cid string, req *Message, o ScatterOptions, deadlineMsg bool) (int, error) {
	if req == nil {
		return 0, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	if o.Quorum < 0 || o.Deadline < 0 {
		return 0, fmt.Errorf("%w: Quorum %d, Deadline %v: want >= 0", ErrInvalidConfig, o.Quorum, o.Deadline)
	}
	rl := s.plain
	to := o.To
	if len(to) == 0 {
		if s.cfg.Recipients == nil {
			return 0, fmt.Errorf("%w: no destinations (ScatterOptions.To) and no Recipients", ErrNoRecipients)
		}
		rl = s.cfg.Recipients
		var err error
		if to, err = rl.Recipients(req); err != nil {
			return 0, err
		}
	}
	var uniq []Destination
	for _, d := range to {
		if err := rl.checkDestination(d); err != nil {
			return 0, err
		}
		if !slices.Contains(uniq, d) {
			uniq = append(uniq, d)
		}
	}
	expected := o.Expected
	if len(expected) == 0 && !slices.ContainsFunc(uniq, Destination.IsTopic) {
		for _, d := range uniq {
			expected = append(expected, string(d))
		}
	}
	if len(expected) == 0 && o.Quorum == 0 && o.Deadline == 0 {
		// An aggregator Predicate may still complete it; without one it
		// would stay open until it expires.
		return 0, fmt.Errorf("%w: requests to topics need Expected, a Quorum or a Deadline", ErrNoCompletion)
	}

	m := *req
	m.CorrelationID, m.ReturnAddress = cid, s.cfg.ResponseQueueURL
	m.Headers = maps.Clone(req.Headers)
	m.SetHeader(ScatterHeader, "1")
	if m.DeduplicationID == "" && slices.ContainsFunc(uniq, isFIFODestination) {
		m.DeduplicationID = cid
	}
	routes := [][]Destination{uniq}
	plan, err := rl.plan([]*Message{&m}, routes)
	if err != nil {
		return 0, err
	}

	now := s.now().UTC()
	agg := &Aggregate{CorrelationID: cid, Expected: expected, Quorum: o.Quorum, OpenedAt: now}
	if o.Deadline > 0 {
		agg.Deadline = now.Add(o.Deadline)
	}
	if err := s.cfg.Store.Open(ctx, agg); err != nil {
		return 0, fmt.Errorf("courier: scatter %s: open the aggregate: %w", cid, err)
	}
	deliveries, err := rl.deliver(ctx, plan)
	if len(deliveries) == 0 {
		return 0, fmt.Errorf("courier: scatter %s: no destination got the request: %w", cid, err) // the aggregate expires
	}
	if o.Deadline > 0 && deadlineMsg {
		if derr := sendDeadline(ctx, s.sqs, s.cfg.ResponseQueueURL, cid, o.Deadline); derr != nil {
			return len(deliveries), errors.Join(err, fmt.Errorf("courier: scatter %s: deadline message not sent: %w", cid, derr))
		}
	}
	return len(deliveries), err
}

func isFIFODestination(d Destination) bool { return strings.HasSuffix(string(d), ".fifo") }

// ScatterGatherConfig configures a ScatterGather: scatterer and
// aggregator in one process.
type ScatterGatherConfig struct {
	// ResponseQueueURL is the queue the responses come to, consumed by
	// this ScatterGather alone: Gather hears of the aggregates this
	// process completes. For aggregators in other processes or Lambda
	// functions, use a Scatterer and Aggregators on a shared store.
	ResponseQueueURL string
	// Store defaults to a new MemoryAggregateStore.
	Store      AggregateStore
	Recipients *RecipientList
	Predicate  func(*Aggregate) bool
	// Processor, when set, is called with each completed aggregate before
	// Gather returns it.
	Processor Processor
	// Consumer shapes the consumer of the response queue (its QueueURL is
	// ResponseQueueURL).
	Consumer ConsumerConfig
}

// ScatterGather is scatter-gather in one process: Gather scatters a
// request and waits for its aggregate, which the aggregator (Run)
// completes. Any number of Gather calls share the response queue. A
// Deadline is kept by a timer in this process (exact, no request); the
// deadline message is for Scatter, whose aggregate another process
// completes.
type ScatterGather struct {
	*Scatterer
	agg *Aggregator

	mu      sync.Mutex
	waiters map[string]chan *Aggregate
}

// NewScatterGather returns a ScatterGather; the configuration is checked
// here.
func NewScatterGather(sqsClient SQSAPI, snsClient SNSPublishAPI, cfg ScatterGatherConfig) (*ScatterGather, error) {
	if cfg.Store == nil {
		cfg.Store, _ = NewMemoryAggregateStore()
	}
	s, err := NewScatterer(sqsClient, snsClient, ScattererConfig{ResponseQueueURL: cfg.ResponseQueueURL, Store: cfg.Store, Recipients: cfg.Recipients})
	if err != nil {
		return nil, err
	}
	sg := &ScatterGather{Scatterer: s, waiters: map[string]chan *Aggregate{}}
	cc := cfg.Consumer
	cc.QueueURL = cfg.ResponseQueueURL
	sg.agg, err = NewAggregator(sqsClient, AggregatorConfig{
		ConsumerConfig: cc, Store: cfg.Store, Predicate: cfg.Predicate,
		Processor: func(ctx context.Context, a *Aggregate) error {
			if cfg.Processor != nil {
				return cfg.Processor(ctx, a)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	// Gather returns once the aggregator has counted the completion, so
	// Stats after Gather includes it.
	sg.agg.done = func(a *Aggregate) {
		sg.mu.Lock()
		w := sg.waiters[a.CorrelationID]
		delete(sg.waiters, a.CorrelationID)
		sg.mu.Unlock()
		if w != nil {
			w <- a // one slot, one sender
		}
	}
	return sg, nil
}

// deadline completes cid by its deadline, in this process: a timer
// rather than the deadline message a Scatterer sends, exact to the
// millisecond and with no request. A processor error is retried a second
// later while Gather waits, as a redelivery would retry it.
func (sg *ScatterGather) deadline(cid string) {
	sg.mu.Lock()
	_, waiting := sg.waiters[cid]
	sg.mu.Unlock()
	if !waiting {
		return
	}
	if err := sg.agg.complete(context.Background(), cid, CompletedDeadline, "deadline:"+cid); err != nil {
		sg.agg.log.Warn("courier: scatter-gather deadline", "correlation_id", cid, "err", err)
		time.AfterFunc(time.Second, func() { sg.deadline(cid) })
	}
}

// Run runs the aggregator until ctx ends.
func (sg *ScatterGather) Run(ctx context.Context) error { return sg.agg.Run(ctx) }

// Stats returns the aggregator's counters.
func (sg *ScatterGather) Stats() AggregatorStats { return sg.agg.Stats() }

// Gather scatters req (as Scatter does) and waits for its aggregate to
// complete, by its rule, while Run runs. It returns ErrTimeout when ctx
// ends first; give it more time than the Deadline. When some destinations
// could not be sent to, Gather gathers what the others answer and returns
// the aggregate together with the *RecipientError.
func (sg *ScatterGather) Gather(ctx context.Context, req *Message, o ScatterOptions) (*Aggregate, error) {
	cid := newCorrelationID()
	w := make(chan *Aggregate, 1)
	sg.mu.Lock()
	sg.waiters[cid] = w
	sg.mu.Unlock()
	defer func() {
		sg.mu.Lock()
		delete(sg.waiters, cid)
		sg.mu.Unlock()
	}()
	delivered, sendErr := sg.scatter(ctx, cid, req, o, false)
	var re *RecipientError
	if sendErr != nil && (delivered == 0 || !errors.As(sendErr, &re)) {
		return nil, sendErr
	}
	if o.Deadline > 0 {
		t := time.AfterFunc(o.Deadline, func() { sg.deadline(cid) })
		defer t.Stop()
	}
	// With a *RecipientError, some destinations got it: gather what they answer.
	select {
	case a := <-w:
		return a, sendErr
	case <-ctx.Done():
		select {
		case a := <-w:
			return a, sendErr
		default:
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: aggregate %s not complete: %w", ErrTimeout, cid, ctx.Err())
		}
		return nil, ctx.Err()
	}
}
