package patterns

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
// ResponderOptions.Name, or by default the responder's request queue URL.
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
	// ResponderOptions.Name or by its request queue (URL or ARN: they name
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
		if a, err := ParseARN(id, "sqs"); err == nil {
			return a.Account + "/" + a.Name
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
// (retried on redelivery). IdempotencyOptions.Key must be nil: the key is
// the correlation id. RecordTTL defaults to DefaultAggregateTTL, as long as
// a redelivery can find the aggregate; InProgressTTL as Idempotent's.
func IdempotentProcessor(p Processor, store IdempotencyStore, optFns ...func(*IdempotencyOptions)) (Processor, error) {
	var o IdempotencyOptions
	for _, fn := range optFns {
		fn(&o)
	}
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
	}, store, func(io *IdempotencyOptions) { *io = o })
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

// ScatterGatherOptions configures a ScatterGather (NewScatterGather): scatterer and
// aggregator in one process.
type ScatterGatherOptions struct {
	// Store defaults to a new MemoryAggregateStore.
	Store      AggregateStore
	Recipients *RecipientList
	Predicate  func(*Aggregate) bool
	// Processor, when set, is called with each completed aggregate before
	// Gather returns it.
	Processor Processor
	// Consumer shapes the consumer of the response queue.
	Consumer ConsumerOptions
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

// NewScatterGather returns a ScatterGather whose responses come to
// responseQueueURL, consumed by this ScatterGather alone: Gather hears of
// the aggregates this process completes (for aggregators in other
// processes or Lambda functions, use a Scatterer and Aggregators on a
// shared store). optFns set its ScatterGatherOptions, checked
// here.
func NewScatterGather(sqsClient SQSAPI, snsClient SNSPublishAPI, responseQueueURL string, optFns ...func(*ScatterGatherOptions)) (*ScatterGather, error) {
	var cfg ScatterGatherOptions
	for _, fn := range optFns {
		fn(&cfg)
	}
	if cfg.Store == nil {
		cfg.Store, _ = NewMemoryAggregateStore()
	}
	s, err := NewScatterer(sqsClient, snsClient, responseQueueURL, cfg.Store, func(o *ScattererOptions) { o.Recipients = cfg.Recipients })
	if err != nil {
		return nil, err
	}
	sg := &ScatterGather{Scatterer: s, waiters: map[string]chan *Aggregate{}}
	sg.agg, err = newAggregator(sqsClient, aggregatorConfig{
		QueueURL: responseQueueURL, Store: cfg.Store,
		Processor: func(ctx context.Context, a *Aggregate) error {
			if cfg.Processor != nil {
				return cfg.Processor(ctx, a)
			}
			return nil
		},
		AggregatorOptions: AggregatorOptions{ConsumerOptions: cfg.Consumer, Predicate: cfg.Predicate},
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
	if err := sg.agg.complete(context.Background(), "", cid, CompletedDeadline, "deadline:"+cid); err != nil {
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
	start := metricsStart(sg.agg.cfg.Metrics)
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
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		if m := sg.agg.cfg.Metrics; m != nil {
			reason := GatherCancelled
			if timedOut {
				reason = GatherTimeout
			}
			m.Completed(ctx, sg.agg.cfg.QueueURL, reason, time.Since(start))
		}
		if timedOut {
			return nil, fmt.Errorf("%w: aggregate %s not complete: %w", ErrTimeout, cid, ctx.Err())
		}
		return nil, ctx.Err()
	}
}
