package patterns

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ScattererOptions configures a Scatterer (NewScatterer).
type ScattererOptions struct {
	// Recipients computes a request's destinations when ScatterOptions.To
	// is empty. Optional.
	Recipients *RecipientList
}

// ScatterOptions shapes one scatter.
type ScatterOptions struct {
	// To are the destinations of the request: responder queues and/or
	// topics their queues subscribe to. Empty: ScattererOptions.Recipients.
	To []Destination
	// Completion is the aggregate's rule. When Expected is empty and
	// every destination is a queue, the queues are expected.
	Completion
}

// Scatterer sends scatter requests: it opens each aggregate in the store
// and sends the request to its destinations.
type Scatterer struct {
	sqs   SQSSendAPI
	cfg   scattererConfig
	plain *RecipientList // for explicit destinations
	now   func() time.Time
}

// scattererConfig is what a Scatterer runs with.
type scattererConfig struct {
	// ResponseQueueURL is the return address of every request: the queue
	// the aggregator consumes. A standard queue (deadlines are delayed
	// messages).
	ResponseQueueURL string
	Store            AggregateStore
	ScattererOptions
}

// NewScatterer returns a Scatterer whose requests name responseQueueURL
// (the queue the aggregator consumes; a standard queue, as deadlines are
// delayed messages) as their return address and whose aggregates open in
// store. snsClient may be nil when no request goes to a topic.
func NewScatterer(sqsClient SQSSendAPI, snsClient SNSPublishAPI, responseQueueURL string, store AggregateStore, optFns ...func(*ScattererOptions)) (*Scatterer, error) {
	cfg := scattererConfig{ResponseQueueURL: responseQueueURL, Store: store}
	for _, fn := range optFns {
		fn(&cfg.ScattererOptions)
	}
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
	plain, err := NewRecipientList(sqsClient, snsClient)
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
