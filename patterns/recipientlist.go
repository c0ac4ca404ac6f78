package patterns

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Recipient List: a router computes, for each message, the list of
// destinations it must reach (queues and topics) and sends a copy to each.
// The rules are Go code the user writes (a Route function and/or a list of
// rules), so the routing can depend on anything in the message; the
// publisher of the message knows nothing about who consumes it.
//
// The router batches: all the copies bound for one destination go out
// through that destination's Producer (a queue) or Publisher (a topic),
// in SendMessageBatch or PublishBatch requests of up to ten. One
// unreachable destination does not stop the others: Send reports it, with
// the messages it did not get, in a *RecipientError, and every other
// destination still receives.

// Destination is where a recipient list sends: an SQS queue URL
// (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) or an SNS topic ARN
// (arn:aws:sns:REGION:ACCOUNT:NAME).
type Destination string

// IsTopic reports whether d names an SNS topic (an ARN) rather than a queue.
func (d Destination) IsTopic() bool { return strings.HasPrefix(string(d), "arn:") }

// Validate checks that d is a well-formed queue URL or topic ARN. The
// error wraps ErrInvalidDestination and the parser's own sentinel
// (ErrInvalidQueueURL for a queue).
func (d Destination) Validate() error {
	var err error
	if d.IsTopic() {
		_, err = ParseTopicARN(string(d))
	} else {
		_, err = ParseQueueURL(string(d))
	}
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidDestination, d, err)
	}
	return nil
}

// RecipientRule adds its destinations to every message it matches.
type RecipientRule struct {
	Name  string // for errors and logs
	Match func(*Message) bool
	To    []Destination
}

// RecipientListOptions configures a RecipientList. A message's recipients
// are the union of what Route returns and the To of every rule that
// matches it, each destination once, in that order; when that is empty,
// Default. A message that ends with no recipient at all is refused with
// ErrNoRecipients: a router that drops messages silently loses them.
type RecipientListOptions struct {
	Route   func(*Message) []Destination
	Rules   []RecipientRule
	Default []Destination
	// Concurrency is how many destinations one Send sends to at once.
	// Default 8; each destination's Producer or Publisher batches and
	// has its own concurrency.
	Concurrency int
	// Producer and Publisher, when set, configure the Producer of every
	// queue and the Publisher of every topic.
	Producer  func(*ProducerOptions)
	Publisher func(*PublisherOptions)
}

// Validate reports a configuration that cannot work.
func (c RecipientListOptions) Validate() error {
	for i, r := range c.Rules {
		if r.Match == nil {
			return fmt.Errorf("%w: rule %d (%q) has no Match", ErrInvalidConfig, i, r.Name)
		}
		if len(r.To) == 0 {
			return fmt.Errorf("%w: rule %d (%q) has no destination", ErrInvalidConfig, i, r.Name)
		}
		for _, d := range r.To {
			if err := d.Validate(); err != nil {
				return fmt.Errorf("%w: rule %d (%q): %w", ErrInvalidConfig, i, r.Name, err)
			}
		}
	}
	for _, d := range c.Default {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("%w: Default: %w", ErrInvalidConfig, err)
		}
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("%w: Concurrency %d < 0", ErrInvalidConfig, c.Concurrency)
	}
	return nil
}

// Delivery is one copy of a message that a destination accepted.
type Delivery struct {
	Index          int // the message's position in the slice given to Send
	Destination    Destination
	ID             string // the MessageId SQS or SNS gave the copy
	SequenceNumber string // FIFO destinations
}

// DestinationError is one destination that did not get every message
// routed to it.
type DestinationError struct {
	Destination Destination
	// Failed are the messages not sent there: Index is the position in
	// the slice given to Send, Message the message given (not the copy).
	Failed []FailedEntry
}

// RecipientError reports the destinations that did not get every message
// routed to them. Every other destination received its messages (see the
// Deliveries Send returned).
type RecipientError struct {
	Failed []DestinationError
}

// Destinations returns the destinations that failed.
func (e *RecipientError) Destinations() []Destination {
	out := make([]Destination, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Destination
	}
	return out
}

func (e *RecipientError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "courier: recipient list: %d destination(s) failed", len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-3)
			break
		}
		fmt.Fprintf(&b, "; %s: %d message(s) not sent", f.Destination, len(f.Failed))
		if len(f.Failed) > 0 {
			fmt.Fprintf(&b, " (%v)", f.Failed[0].Err)
		}
	}
	return b.String()
}

// Unwrap returns every failed entry's error, so that errors.Is(err,
// ErrNotFound) tells whether a destination does not exist.
func (e *RecipientError) Unwrap() []error {
	var errs []error
	for _, f := range e.Failed {
		for _, x := range f.Failed {
			errs = append(errs, x.Err)
		}
	}
	return errs
}

// RecipientList routes each message to the destinations its rules compute.
// It keeps one Producer per queue and one Publisher per topic it has sent
// to. It is safe for concurrent use.
type RecipientList struct {
	sqs SQSSendAPI
	sns SNSPublishAPI
	cfg RecipientListOptions

	mu      sync.Mutex
	senders map[Destination]destinationSender
}

// destinationSender is a Producer or a Publisher.
type destinationSender interface {
	check(m *Message) error // what Send would refuse m for, before any request
	send(ctx context.Context, msgs []*Message) error
}

// maxCachedSenders bounds the cache of Producers and Publishers: routes
// computed from message content may name any number of destinations.
const maxCachedSenders = 1024

// NewRecipientList returns a RecipientList. A client may be nil when no
// destination of its kind is used: a queue destination with no SQS
// client, or a topic with no SNS client, is refused as invalid.
func NewRecipientList(sqsClient SQSSendAPI, snsClient SNSPublishAPI, optFns ...func(*RecipientListOptions)) (*RecipientList, error) {
	if sqsClient == nil && snsClient == nil {
		return nil, fmt.Errorf("%w: recipient list needs an SQS or an SNS client", ErrInvalidConfig)
	}
	var cfg RecipientListOptions
	for _, fn := range optFns {
		fn(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 8
	}
	r := &RecipientList{sqs: sqsClient, sns: snsClient, cfg: cfg, senders: map[Destination]destinationSender{}}
	for _, rule := range cfg.Rules {
		for _, d := range rule.To {
			if err := r.clientFor(d); err != nil {
				return nil, fmt.Errorf("%w: rule %q: %w", ErrInvalidConfig, rule.Name, err)
			}
		}
	}
	for _, d := range cfg.Default {
		if err := r.clientFor(d); err != nil {
			return nil, fmt.Errorf("%w: Default: %w", ErrInvalidConfig, err)
		}
	}
	return r, nil
}

func (r *RecipientList) clientFor(d Destination) error {
	switch {
	case d.IsTopic() && r.sns == nil:
		return fmt.Errorf("%w %q: a topic, and the recipient list has no SNS client", ErrInvalidDestination, d)
	case !d.IsTopic() && r.sqs == nil:
		return fmt.Errorf("%w %q: a queue, and the recipient list has no SQS client", ErrInvalidDestination, d)
	}
	return nil
}

// Recipients returns the destinations m would be sent to, checked: an
// error wraps ErrInvalidDestination (a destination that is not a queue
// URL or topic ARN) or ErrNoRecipients.
func (r *RecipientList) Recipients(m *Message) ([]Destination, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	var out []Destination
	add := func(ds []Destination) {
		for _, d := range ds {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	if r.cfg.Route != nil {
		add(r.cfg.Route(m))
	}
	for _, rule := range r.cfg.Rules {
		if rule.Match(m) {
			add(rule.To)
		}
	}
	if len(out) == 0 {
		add(r.cfg.Default)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no rule routes the message and there is no Default", ErrNoRecipients)
	}
	for _, d := range out {
		if err := r.checkDestination(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *RecipientList) checkDestination(d Destination) error {
	if err := d.Validate(); err != nil {
		return err
	}
	return r.clientFor(d)
}

// Send sends each message to its recipients (Recipients) and returns the
// copies that were accepted. Each destination gets its own copy of the
// message; the messages given are not changed (their ID stays unset: a
// message sent to three queues has three ids, in the Deliveries).
//
// Before any request, every message is routed and checked against every
// destination it goes to (destination syntax, size, FIFO group id, ...):
// if any fails, nothing is sent and the error is a *SendError naming the
// messages. Otherwise every destination is sent to, and when some did not
// accept every message the error is a *RecipientError naming them and
// their messages; all the others received theirs.
func (r *RecipientList) Send(ctx context.Context, msgs ...*Message) ([]Delivery, error) {
	routes := make([][]Destination, len(msgs))
	var failed []FailedEntry
	for i, m := range msgs {
		ds, err := r.Recipients(m)
		if err != nil {
			failed = append(failed, FailedEntry{Index: i, Message: m, Err: err})
		}
		routes[i] = ds
	}
	if len(failed) > 0 {
		return nil, &SendError{Op: "RecipientList", Resource: "routes", Failed: failed}
	}
	return r.send(ctx, msgs, routes)
}

// SendTo sends every message to each of the destinations to, bypassing
// the rules, with the guarantees of Send. A destination that is not valid
// fails the call (ErrInvalidDestination) before any request.
func (r *RecipientList) SendTo(ctx context.Context, to []Destination, msgs ...*Message) ([]Delivery, error) {
	var uniq []Destination
	for _, d := range to {
		if err := r.checkDestination(d); err != nil {
			return nil, err
		}
		if !slices.Contains(uniq, d) {
			uniq = append(uniq, d)
		}
	}
	if len(uniq) == 0 {
		return nil, fmt.Errorf("%w: SendTo was given no destination", ErrNoRecipients)
	}
	to = uniq
	routes := make([][]Destination, len(msgs))
	for i := range msgs {
		routes[i] = to
	}
	return r.send(ctx, msgs, routes)
}

// outgoingCopy is one message's copy bound for one destination.
type outgoingCopy struct {
	index int
	orig  *Message
	m     *Message
}

func (r *RecipientList) send(ctx context.Context, msgs []*Message, routes [][]Destination) ([]Delivery, error) {
	p, err := r.plan(msgs, routes)
	if err != nil {
		return nil, err
	}
	return r.deliver(ctx, p)
}

// routePlan is the copies of one Send, by destination, checked.
type routePlan struct {
	order  []Destination
	byDest map[Destination][]outgoingCopy
}

// plan makes and checks every copy; a *SendError when any fails.
func (r *RecipientList) plan(msgs []*Message, routes [][]Destination) (*routePlan, error) {
	p := &routePlan{byDest: map[Destination][]outgoingCopy{}}
	var failed []FailedEntry
	for i, m := range msgs {
		if m == nil {
			failed = append(failed, FailedEntry{Index: i, Err: fmt.Errorf("%w: nil message", ErrInvalidMessage)})
			continue
		}
		for _, d := range routes[i] {
			s, err := r.sender(d)
			if err == nil {
				c := *m
				c.ID, c.SequenceNumber, c.ReceiptHandle, c.QueueURL, c.TopicARN = "", "", "", "", ""
				if err = s.check(&c); err == nil {
					if _, seen := p.byDest[d]; !seen {
						p.order = append(p.order, d)
					}
					p.byDest[d] = append(p.byDest[d], outgoingCopy{index: i, orig: m, m: &c})
					continue
				}
			}
			failed = append(failed, FailedEntry{Index: i, Message: m, Err: fmt.Errorf("to %s: %w", d, err)})
		}
	}
	if len(failed) > 0 {
		return nil, &SendError{Op: "RecipientList", Resource: "routes", Failed: failed}
	}
	return p, nil
}

// deliver sends a plan, destinations in parallel.
func (r *RecipientList) deliver(ctx context.Context, p *routePlan) ([]Delivery, error) {
	var (
		mu         sync.Mutex
		wg         sync.WaitGroup
		deliveries []Delivery
		destErrs   []DestinationError
	)
	sem := make(chan struct{}, r.cfg.Concurrency)
	for _, d := range p.order {
		copies := p.byDest[d]
		s, _ := r.sender(d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
			}
			ok, de := sendCopies(ctx, s, d, copies)
			mu.Lock()
			deliveries = append(deliveries, ok...)
			if de != nil {
				destErrs = append(destErrs, *de)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(deliveries, func(a, b Delivery) int {
		if a.Index != b.Index {
			return a.Index - b.Index
		}
		return strings.Compare(string(a.Destination), string(b.Destination))
	})
	if len(destErrs) == 0 {
		return deliveries, nil
	}
	slices.SortFunc(destErrs, func(a, b DestinationError) int {
		return strings.Compare(string(a.Destination), string(b.Destination))
	})
	return deliveries, &RecipientError{Failed: destErrs}
}

// sendCopies sends one destination's copies and sorts the outcome.
func sendCopies(ctx context.Context, s destinationSender, d Destination, copies []outgoingCopy) ([]Delivery, *DestinationError) {
	batch := make([]*Message, len(copies))
	for i, c := range copies {
		batch[i] = c.m
	}
	err := ctx.Err()
	if err == nil {
		err = s.send(ctx, batch)
	}
	notSent := map[int]error{}
	var se *SendError
	if errors.As(err, &se) {
		for _, f := range se.Failed {
			notSent[f.Index] = f.Err
		}
	} else if err != nil {
		for i := range copies {
			notSent[i] = err
		}
	}
	var ok []Delivery
	var de *DestinationError
	for i, c := range copies {
		if e, bad := notSent[i]; bad {
			if de == nil {
				de = &DestinationError{Destination: d}
			}
			de.Failed = append(de.Failed, FailedEntry{Index: c.index, Message: c.orig, Err: e})
			continue
		}
		ok = append(ok, Delivery{Index: c.index, Destination: d, ID: c.m.ID, SequenceNumber: c.m.SequenceNumber})
	}
	return ok, de
}

// sender returns the cached Producer or Publisher of d.
func (r *RecipientList) sender(d Destination) (destinationSender, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.senders[d]; ok {
		return s, nil
	}
	if err := r.checkDestination(d); err != nil {
		return nil, err
	}
	var s destinationSender
	if d.IsTopic() {
		var opts []func(*PublisherOptions)
		if r.cfg.Publisher != nil {
			opts = append(opts, r.cfg.Publisher)
		}
		p, err := NewPublisher(r.sns, string(d), opts...)
		if err != nil {
			return nil, err
		}
		s = publisherSender{p}
	} else {
		var opts []func(*ProducerOptions)
		if r.cfg.Producer != nil {
			opts = append(opts, r.cfg.Producer)
		}
		p, err := NewProducer(r.sqs, string(d), opts...)
		if err != nil {
			return nil, err
		}
		s = producerSender{p}
	}
	if len(r.senders) >= maxCachedSenders {
		clear(r.senders)
	}
	r.senders[d] = s
	return s, nil
}

type producerSender struct{ p *Producer }

func (s producerSender) check(m *Message) error {
	if err := m.validate(s.p.b.maxMessage); err != nil {
		return err
	}
	return s.p.validate(m)
}

func (s producerSender) send(ctx context.Context, msgs []*Message) error {
	return s.p.Send(ctx, msgs...)
}

type publisherSender struct{ p *Publisher }

func (s publisherSender) check(m *Message) error {
	if err := m.validate(s.p.b.maxMessage); err != nil {
		return err
	}
	return s.p.validate(m)
}

func (s publisherSender) send(ctx context.Context, msgs []*Message) error {
	return s.p.Publish(ctx, msgs...)
}
