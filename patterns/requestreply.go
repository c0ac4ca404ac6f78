package patterns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Request-response over SQS. The two questions of the pattern are answered
// by two headers on every request:
//
//   - Return Address: where the reply goes. Each Requester owns one reply
//     queue and names it in each request; the Responder sends the reply
//     there, but only when the address is on its allowlist, so that a
//     request cannot make the responder write to a queue of the sender's
//     choosing (the confused deputy).
//   - Correlation Identifier: which request a reply answers. The Requester
//     gives each request a random 128-bit id and keeps a waiter per id; the
//     Responder copies the id onto the reply; the reply consumer hands the
//     reply to its waiter. Many concurrent requests share one reply queue
//     this way (the idea of AWS's temporary-queues client for Java): no
//     queue per request, so a call costs a few requests and no CreateQueue.
//
// SQS delivers at least once, so a reply may come twice, and it may come
// after its requester gave up: the first reply wins, the rest are deleted
// and counted as late, and none is ever handed to another request.

// ErrorHeader is the header of an error reply; its value is the error
// text. The Requester returns a reply that carries it as a *RemoteError.
// A RequestHandler that wants to send a structured error sets it on its
// reply itself (the body then travels in RemoteError.Reply).
const ErrorHeader = "error"

// ErrRequesterClosed: the Requester was closed before or during the request.
var ErrRequesterClosed = errors.New("courier: requester closed")

// RemoteError is the error a responder answered with: its handler failed
// (or panicked), or it could not send the reply its handler made.
type RemoteError struct {
	Queue         string   // the request queue
	CorrelationID string   // of the request
	Message       string   // the error text (the ErrorHeader)
	Reply         *Message // the error reply as received
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("courier: responder on %s answered with an error: %s", e.Queue, e.Message)
}

// RequesterConfig configures a Requester. Zero values take the defaults.
type RequesterConfig struct {
	// ReplyQueueURL is a reply queue that infra provisioned. The Requester
	// then neither creates, tags nor deletes a queue. One Requester at a
	// time may use it: two would take each other's replies, which then
	// count as late (and their requests time out).
	ReplyQueueURL string
	// ReplyQueuePrefix starts the name of the reply queue the Requester
	// creates; a random suffix follows. Default DefaultReplyQueuePrefix.
	// Sweep and the Responder's default allowlist go by it.
	ReplyQueuePrefix string
	// ReplyQueueAttributes are added to the created queue's attributes:
	// a Policy that lets responders in other accounts send to it, a
	// KmsMasterKeyId, ... (SQS-managed encryption is on by default).
	ReplyQueueAttributes map[string]string
	// Tags are added to the created queue's tags (cost allocation).
	Tags map[string]string
	// Owner is the value of the TagOwner tag. Default host/pid/random.
	Owner string
	// HeartbeatInterval is how often the TagHeartbeat tag of a created
	// queue is refreshed (one TagQueue request). Default 5 minutes; give
	// Sweep an idle time well above it.
	HeartbeatInterval time.Duration
	// Timeout bounds a request whose context has no deadline. Default 30s.
	Timeout time.Duration
	// Tracer, when set, traces each request's send (a "send <queue>"
	// span that the Responder's process span continues when its
	// ConsumerConfig.Tracer is set too).
	Tracer Tracer
	Logger *slog.Logger
}

func (c *RequesterConfig) setDefaults() {
	if c.ReplyQueuePrefix == "" {
		c.ReplyQueuePrefix = DefaultReplyQueuePrefix
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 5 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Owner == "" {
		c.Owner = defaultOwner()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration that cannot work.
func (c RequesterConfig) Validate() error {
	c.setDefaults()
	if c.ReplyQueueURL != "" {
		if _, err := ParseQueueURL(c.ReplyQueueURL); err != nil {
			return err
		}
	}
	switch {
	case len(c.ReplyQueuePrefix)+replyNameRandomHex > 80 || !validQueueName(c.ReplyQueuePrefix+"x"):
		return fmt.Errorf("%w: ReplyQueuePrefix %q: at most %d letters, digits, - or _", ErrInvalidConfig, c.ReplyQueuePrefix, 80-replyNameRandomHex)
	case strings.HasSuffix(c.ReplyQueuePrefix, ".fifo"):
		return fmt.Errorf("%w: ReplyQueuePrefix %q: reply queues are standard queues", ErrInvalidConfig, c.ReplyQueuePrefix)
	case c.HeartbeatInterval < time.Second:
		return fmt.Errorf("%w: HeartbeatInterval %v < 1s", ErrInvalidConfig, c.HeartbeatInterval)
	case c.Timeout < 0:
		return fmt.Errorf("%w: Timeout %v < 0", ErrInvalidConfig, c.Timeout)
	case len(c.Tags) > 47:
		return fmt.Errorf("%w: %d Tags; SQS recommends at most 50 and courier sets 3", ErrInvalidConfig, len(c.Tags))
	}
	for k := range c.Tags {
		if strings.HasPrefix(k, "courier:") {
			return fmt.Errorf("%w: tag %q: the courier: tags are the Requester's own", ErrInvalidConfig, k)
		}
	}
	return nil
}

// RequesterStats counts what a Requester did.
type RequesterStats struct {
	Requests int64 // requests sent
	Replies  int64 // replies handed to their request (error replies included)
	Timeouts int64 // requests whose context ended before their reply came
	// LateReplies are replies nobody waited for: they came after their
	// request's context ended, or were duplicates (SQS delivers at least
	// once), or named an unknown correlation id. They are deleted.
	LateReplies   int64
	QueuesCreated int64 // reply queues created; above 1, a lost queue was replaced
	Heartbeats    int64 // heartbeat tags written after creation
}

// Requester sends requests and waits for their replies, over one reply
// queue that it owns and that any number of concurrent Request calls share.
//
// Lifecycle: NewRequester checks the configuration and does no I/O. The
// first Request (or Start) creates the reply queue (or checks the given
// one) and starts the reply consumer, the heartbeat and the sender in the
// background; Close stops them, fails the requests still waiting, and
// deletes the queue it created. No goroutine outlives Close.
//
// In AWS Lambda, create the Requester once per execution environment (a
// package-level variable set in main or on first use, not per invocation)
// and never Close it: its reply queue serves every invocation that the
// environment runs, and costs nothing while the environment is frozen
// between them. Lambda retires environments without notice, so their
// queues are left behind; run Sweep on a schedule to delete them. A frozen
// environment cannot refresh its heartbeat, and its queue may be swept
// while it sleeps: the Requester finds its heartbeat overdue at the next
// request, checks the queue, and creates a new one if it is gone, before
// naming it in the request.
type Requester struct {
	client SQSAPI
	cfg    RequesterConfig
	log    *slog.Logger
	q      *replyQueue
	out    *outbox

	life    chan struct{} // Start and Close, one at a time; a channel so that waiting for it honours the caller's context
	running atomic.Bool
	stop    context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	waiters map[string]*waiter
	restart context.CancelFunc // ends the reply consumer, so it restarts on the current queue

	stats struct{ requests, replies, timeouts, late atomic.Int64 }
}

// waiter is one request waiting for its reply.
type waiter struct {
	ch    chan *Message // gets the reply, or is closed after err is set
	err   error
	queue string // the reply queue the request named
}

// NewRequester returns a Requester; the configuration is checked here.
func NewRequester(client SQSAPI, cfg RequesterConfig) (*Requester, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	r := &Requester{client: client, cfg: cfg, log: cfg.Logger, waiters: make(map[string]*waiter), life: make(chan struct{}, 1)}
	tags := map[string]string{TagReplyQueue: "true", TagOwner: cfg.Owner}
	for k, v := range cfg.Tags {
		tags[k] = v
	}
	r.q = &replyQueue{
		client: client, given: cfg.ReplyQueueURL != "", url: cfg.ReplyQueueURL,
		prefix: cfg.ReplyQueuePrefix, attrs: cfg.ReplyQueueAttributes, tags: tags,
		interval: cfg.HeartbeatInterval, log: cfg.Logger, onReplace: r.replaced,
	}
	r.out = newOutbox(client)
	return r, nil
}

// Start creates the reply queue (or checks the given one) and starts the
// background work. Request calls it when needed; call it yourself to fail
// early. It does nothing on a started Requester; after Close it returns
// ErrRequesterClosed.
func (r *Requester) Start(ctx context.Context) error {
	if r.running.Load() {
		return nil
	}
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.unlock()
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return ErrRequesterClosed
	}
	if r.running.Load() {
		return nil
	}
	if err := r.q.open(ctx); err != nil {
		return err
	}
	// The background work lives until Close, not until ctx ends: ctx may
	// be the first request's.
	runCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.out.run(runCtx) }()
	go func() { defer r.wg.Done(); r.receiveReplies(runCtx) }()
	if !r.q.given {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.heartbeats(runCtx) }()
	}
	r.running.Store(true)
	return nil
}

// lock takes r.life unless ctx ends first: a request waiting while another
// one creates the reply queue (a slow CreateQueue) still honours its own
// deadline.
func (r *Requester) lock(ctx context.Context) error {
	select {
	case r.life <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Requester) unlock() { <-r.life }

// Close stops the Requester: requests still waiting fail with
// ErrRequesterClosed, the background work ends, and a reply queue the
// Requester created is deleted (a given one is left). Replies that arrive
// later are lost with the queue: nobody waits for them. Close is safe to
// call more than once.
func (r *Requester) Close(ctx context.Context) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	waiters := r.waiters
	r.waiters = make(map[string]*waiter)
	r.mu.Unlock()
	for _, w := range waiters {
		w.fail(ErrRequesterClosed)
	}
	if !r.running.Load() {
		return nil
	}
	r.stop()
	r.wg.Wait()
	r.running.Store(false)
	return r.q.delete(ctx)
}

// ReplyQueueURL returns the reply queue named in requests now ("" before
// Start).
func (r *Requester) ReplyQueueURL() string { return r.q.current() }

// Stats returns a snapshot of the counters.
func (r *Requester) Stats() RequesterStats {
	r.q.mu.Lock()
	created, beats := r.q.created, r.q.beats
	r.q.mu.Unlock()
	return RequesterStats{
		Requests: r.stats.requests.Load(), Replies: r.stats.replies.Load(), Timeouts: r.stats.timeouts.Load(),
		LateReplies: r.stats.late.Load(), QueuesCreated: created, Heartbeats: beats,
	}
}

// Request sends m to the queue at queueURL and waits for its reply, until
// ctx ends (or, without a deadline, for RequesterConfig.Timeout). It sets
// the request's CorrelationID and ReturnAddress on a copy of m; m itself
// is not changed. On a FIFO request queue m needs a GroupID, and gets the
// correlation id as its DeduplicationID unless it has one.
//
// Errors: ErrTimeout (with context.DeadlineExceeded) when the deadline
// passed first; a *RemoteError when the responder answered with an error;
// ErrRequesterClosed; the send's error (a *SendError, ErrNotFound, ...)
// when the request was not sent.
func (r *Requester) Request(ctx context.Context, queueURL string, m *Message) (*Message, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	dest, err := ParseQueueURL(queueURL)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok && r.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
	}
	cid := newCorrelationID()
	if err := r.Start(ctx); err != nil {
		return nil, requestError(queueURL, cid, err)
	}
	// A heartbeat long overdue means this process was frozen (Lambda) or
	// cut off: the queue may have been swept. Check it (one TagQueue, shared
	// by concurrent requests) before naming it as the return address.
	if _, err := r.q.heartbeat(ctx, r.cfg.HeartbeatInterval+r.cfg.HeartbeatInterval/2); err != nil {
		return nil, requestError(queueURL, cid, err)
	}

	// The waiter is in place before the request leaves: the reply may come
	// before the send returns.
	w := &waiter{ch: make(chan *Message, 1)}
	if err := r.register(cid, w); err != nil {
		return nil, requestError(queueURL, cid, err)
	}
	req := *m
	req.CorrelationID, req.ReturnAddress = cid, w.queue
	req.ID, req.SequenceNumber, req.ReceiptHandle = "", "", ""
	if dest.FIFO() && req.DeduplicationID == "" {
		req.DeduplicationID = cid
	}
	if err := tracedSend(r.cfg.Tracer, r.out.send)(ctx, dest.URL, &req); err != nil {
		r.unregister(cid)
		return nil, requestError(queueURL, cid, err)
	}
	r.stats.requests.Add(1)
	select {
	case reply, ok := <-w.ch:
		return r.result(queueURL, cid, w, reply, ok)
	case <-ctx.Done():
	}
	if !r.unregister(cid) {
		// The reply (or Close) came as the context ended and is on its way:
		// it came in time.
		reply, ok := <-w.ch
		return r.result(queueURL, cid, w, reply, ok)
	}
	r.stats.timeouts.Add(1)
	return nil, requestError(queueURL, cid, ctx.Err())
}

func requestError(queueURL, cid string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: no reply from %s in time (correlation id %s): %w", ErrTimeout, queueURL, cid, err)
	}
	return fmt.Errorf("courier: request to %s (correlation id %s): %w", queueURL, cid, err)
}

func (r *Requester) result(queueURL, cid string, w *waiter, reply *Message, ok bool) (*Message, error) {
	if !ok {
		return nil, w.err
	}
	r.stats.replies.Add(1)
	if msg, failed := reply.Headers[ErrorHeader]; failed {
		return nil, &RemoteError{Queue: queueURL, CorrelationID: cid, Message: msg, Reply: reply}
	}
	return reply, nil
}

// register adds the waiter of cid and sets the reply queue it waits on.
// Both under r.mu: a replacement of the queue then either precedes it
// (the waiter names the new queue) or fails it (it named the old one);
// no request goes out naming a queue that is known to be gone.
func (r *Requester) register(cid string, w *waiter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrRequesterClosed
	}
	w.queue = r.q.current()
	r.waiters[cid] = w
	return nil
}

// unregister removes the waiter of cid and reports whether it was there.
// Whoever removes a waiter is the one who answers it.
func (r *Requester) unregister(cid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.waiters[cid]
	delete(r.waiters, cid)
	return ok
}

func (w *waiter) fail(err error) {
	w.err = err
	close(w.ch)
}

// dispatch is the reply consumer's handler: it hands a reply to its waiter.
// Every reply is deleted, delivered or not: a late or duplicate reply must
// never reach another request, and nobody else will want it.
func (r *Requester) dispatch(_ context.Context, m *Message) error {
	r.mu.Lock()
	w, ok := r.waiters[m.CorrelationID]
	delete(r.waiters, m.CorrelationID)
	r.mu.Unlock()
	if !ok {
		r.stats.late.Add(1)
		r.log.Debug("courier: late or duplicate reply deleted", "queue", m.QueueURL, "correlation_id", m.CorrelationID, "message_id", m.ID)
		return nil
	}
	w.ch <- m // never blocks: one slot, and only the remover sends
	return nil
}

// replaced is called when the reply queue old was found gone and replaced:
// the requests that named it will get no reply, so they fail now rather
// than at their deadline, and the reply consumer moves to the new queue.
func (r *Requester) replaced(old, _ string) {
	r.mu.Lock()
	var lost []*waiter
	for cid, w := range r.waiters {
		if w.queue == old {
			lost = append(lost, w)
			delete(r.waiters, cid)
		}
	}
	restart := r.restart
	r.mu.Unlock()
	for _, w := range lost {
		w.fail(fmt.Errorf("%w: reply queue %s was deleted while the request waited", ErrNotFound, old))
	}
	if restart != nil {
		restart()
	}
}

// receiveReplies runs the reply queue's Consumer until ctx ends, and again
// on the new queue when the queue is replaced.
func (r *Requester) receiveReplies(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil; {
		url := r.q.current()
		cctx, cancel := context.WithCancel(ctx)
		r.mu.Lock()
		r.restart = cancel
		r.mu.Unlock()
		if r.q.current() != url {
			cancel() // replaced meanwhile
			continue
		}
		c, err := NewConsumer(abortablePolls{SQSReceiveAPI: r.client, ctx: cctx}, ConsumerConfig{
			QueueURL: url, Workers: 4, WaitTime: replyQueueWait, Logger: r.log,
		})
		if err == nil {
			err = c.Run(cctx, r.dispatch)
		}
		restarted := cctx.Err() != nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case restarted:
			attempt = 0
			continue
		case errors.Is(err, ErrNotFound):
			if _, rerr := r.q.replace(ctx, url); rerr == nil {
				attempt = 0
				continue
			} else {
				err = rerr
			}
		}
		r.log.Warn("courier: reply queue cannot be consumed; retrying", "queue", url, "err", err)
		_ = sleepCtx(ctx, backoff(time.Second, attempt))
		attempt++
	}
}

// heartbeats refreshes the heartbeat tag of a created queue.
func (r *Requester) heartbeats(ctx context.Context) {
	t := time.NewTicker(r.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := r.q.heartbeat(ctx, r.cfg.HeartbeatInterval/2); err != nil && ctx.Err() == nil {
			r.log.Warn("courier: reply queue lost and not replaced", "queue", r.q.current(), "err", err)
		}
	}
}

// abortablePolls ends the reply consumer's long poll when ctx ends. The
// Consumer lets a poll under way finish at shutdown, so that no message is
// taken by an abandoned poll; on a reply queue that care is moot (when its
// consumer stops, nobody waits for a reply any more), and waiting up to
// 20 s would only make Close slow.
type abortablePolls struct {
	SQSReceiveAPI
	ctx context.Context
}

func (a abortablePolls) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(a.ctx, cancel)()
	out, err := a.SQSReceiveAPI.ReceiveMessage(ctx, in, optFns...)
	if err != nil && a.ctx.Err() != nil {
		return &sqs.ReceiveMessageOutput{}, nil // aborted on purpose: nothing received
	}
	return out, err
}

// newCorrelationID returns 128 random bits, hex encoded.
func newCorrelationID() string { return randomHex(16) }

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

// ResponderConfig configures a Responder: the Consumer of its request
// queue, and the allowlist of return addresses.
//
// A return address must be a plain queue URL (no user info, query,
// fragment, escapes or dot segments) and pass three checks, all of them:
//
//   - Where: its scheme and host are those of the request queue's URL,
//     of an SQS endpoint of the responder's Region (https only: the
//     regional, FIPS, dual-stack and legacy REGION.queue hosts of the
//     region's partition, as the SDK's endpoint resolver names them), or
//     of Endpoint (an emulator such as LocalStack or moto, a VPC
//     endpoint). On an AWS host the path is /ACCOUNT/NAME; elsewhere
//     LocalStack's /queue/REGION/ACCOUNT/NAME is accepted too, for the
//     responder's region. A request cannot make the responder send to
//     another region, partition or host.
//   - Account: one of AllowAccounts; unset, the account an AllowReplyTo
//     prefix names, or what AllowReplyFunc accepts; with none of these,
//     the request queue's own account.
//   - Name: matches one of AllowNames (path.Match patterns, e.g.
//     "courier-reply-*"); unset, the name an AllowReplyTo prefix starts,
//     or what AllowReplyFunc accepts; with none of these,
//     DefaultReplyQueuePrefix+"*".
//
// Every rule that is set must hold (one match within a rule is enough):
// AllowReplyTo, URL prefixes such as
// "https://sqs.eu-west-1.amazonaws.com/123456789012/courier-reply-", each
// naming an account (the prefix pins the host, the account and the start
// of the name); AllowAccounts; AllowNames; AllowReplyFunc.
//
// So with no rule set, a Responder answers courier-reply-* queues in its
// request queue's account, on its own region's SQS endpoint. AllowNames
// alone keeps the own-account default; AllowAccounts alone keeps the name
// default.
//
// The Responder learns its region and endpoint from the client when it
// is an *sqs.Client (Options().Region and Options().BaseEndpoint, which
// config.LoadDefaultConfig fills from AWS_REGION and AWS_ENDPOINT_URL);
// set Region and Endpoint for any other SQSAPI. With neither known, only
// the request queue's host is allowed.
type ResponderConfig struct {
	ConsumerConfig
	// Name is how the responder names itself in replies to scatter
	// requests (ResponderHeader), so that a scatter-gather aggregate says
	// who answered and who did not. Default: the request queue URL, which
	// is what a scatterer sending to that queue expects.
	Name           string
	AllowReplyTo   []string
	AllowAccounts  []string
	AllowNames     []string
	AllowReplyFunc func(QueueRef) bool
	// Region is the AWS region whose SQS endpoints return addresses may
	// name, e.g. "eu-west-1" (its partition follows: cn-north-1's hosts
	// end amazonaws.com.cn). Default: the client's Options().Region.
	Region string
	// Endpoint is an SQS endpoint URL (scheme and host, e.g.
	// "http://127.0.0.1:4566" for LocalStack) whose host return addresses
	// may name. Default: the client's Options().BaseEndpoint.
	Endpoint string
}

// Validate reports a configuration that cannot work.
func (c ResponderConfig) Validate() error {
	if err := c.ConsumerConfig.Validate(); err != nil {
		return err
	}
	for _, p := range c.AllowReplyTo {
		if _, err := parseReplyPrefix(p); err != nil {
			return err
		}
	}
	if c.Region != "" && !validRegion(c.Region) {
		return fmt.Errorf("%w: Region %q is not a region name", ErrInvalidConfig, c.Region)
	}
	if c.Endpoint != "" {
		if _, err := endpointOrigin(c.Endpoint); err != nil {
			return err
		}
	}
	for _, a := range c.AllowAccounts {
		if !isDigits(a) {
			return fmt.Errorf("%w: AllowAccounts %q is not an account id", ErrInvalidConfig, a)
		}
	}
	for _, p := range c.AllowNames {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("%w: AllowNames pattern %q: %v", ErrInvalidConfig, p, err)
		}
	}
	return nil
}

// RequestHandler answers one request: it returns the reply (body,
// attributes, headers; the Responder sets the correlation id), or an error
// that the requester receives as a *RemoteError.
type RequestHandler func(ctx context.Context, req *Message) (*Message, error)

// ResponderStats counts what a Responder did.
type ResponderStats struct {
	Requests     int64 // requests handed to the handler
	Replies      int64 // replies sent, error replies included
	ErrorReplies int64 // handler errors (and panics, and unsendable replies) sent as error replies
	// Rejected are requests refused: their return address was missing,
	// malformed or not allowed (each is logged and left on the queue,
	// for its redrive policy to move to the dead-letter queue; counted at
	// each receive), or it was allowed but the request had no correlation
	// id (answered with an error reply there, and deleted).
	Rejected int64
	// Undeliverable are replies whose reply queue no longer exists (its
	// requester closed or died); the request is deleted.
	Undeliverable int64
	Consumer      ConsumerStats
}

// Responder consumes requests, runs a RequestHandler on each and sends the
// reply to the request's return address with the request's correlation id.
//
// A request whose return address is missing or not allowed is not
// answered: it is logged (with ErrUnknownReturnAddress), counted in
// Stats().Rejected and not deleted, so that it fails like any message
// whose handler failed and the request queue's redrive policy moves it to
// the dead-letter queue, where an operator sees it (give request queues
// one). A request whose address is allowed but that has no correlation id
// is answered with an error reply saying so.
//
// A request of the AWS Java temporary-queues client's AmazonSQSRequester
// (a ResponseQueueUrl attribute, no courier return address) is answered as
// its AmazonSQSResponder does: the reply goes to that queue, or to the
// host queue of a virtual one, within the same allowlist (its queues are
// named __RequesterClientQueues__... by default: allow them with
// AllowNames). See docs/wire.md.
//
// A handler error (or panic) becomes an error reply. A reply that cannot be
// sent for a transient reason leaves the request on the queue: SQS delivers
// it again, the handler runs again (handlers should be idempotent) and the
// requester takes whichever reply comes first.
type Responder struct {
	client   SQSAPI
	cfg      ResponderConfig
	consumer *Consumer
	log      *slog.Logger
	allow    []func(QueueRef) error
	stats    struct{ requests, replies, errorReplies, rejected, undeliverable atomic.Int64 }
}

// NewResponder returns a Responder for cfg.QueueURL; the configuration is
// checked here.
func NewResponder(client SQSAPI, cfg ResponderConfig) (*Responder, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := NewConsumer(client, cfg.ConsumerConfig)
	if err != nil {
		return nil, err
	}
	s := &Responder{client: client, cfg: cfg, consumer: c, log: c.cfg.Logger}
	if s.allow, err = s.rules(client); err != nil {
		return nil, err
	}
	return s, nil
}

// rules builds the allowlist (see ResponderConfig): where, account and
// name always, and each rule that is set.
func (s *Responder) rules(client SQSAPI) ([]func(QueueRef) error, error) {
	c := s.cfg
	if o, ok := client.(interface{ Options() sqs.Options }); ok {
		opts := o.Options()
		if c.Region == "" && validRegion(opts.Region) {
			c.Region = opts.Region
		}
		if c.Endpoint == "" && opts.BaseEndpoint != nil {
			c.Endpoint = *opts.BaseEndpoint
		}
	}
	where, err := newReplyHosts(s.consumer.queue, c.Region, c.Endpoint)
	if err != nil {
		return nil, err
	}
	rules := []func(QueueRef) error{where.check}

	var prefixes []replyPrefix
	for _, p := range c.AllowReplyTo {
		rp, err := parseReplyPrefix(p)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, rp)
	}
	if len(prefixes) > 0 {
		rules = append(rules, func(q QueueRef) error {
			for _, p := range prefixes {
				if p.match(q) {
					return nil
				}
			}
			return fmt.Errorf("not under any of AllowReplyTo %q", c.AllowReplyTo)
		})
	}
	delegated := len(prefixes) > 0 || c.AllowReplyFunc != nil
	accounts := c.AllowAccounts
	if len(accounts) == 0 && !delegated {
		accounts = []string{s.consumer.queue.Account}
	}
	if len(accounts) > 0 {
		rules = append(rules, func(q QueueRef) error {
			if slices.Contains(accounts, q.Account) {
				return nil
			}
			return fmt.Errorf("account %s is not one of %q", q.Account, accounts)
		})
	}
	names := c.AllowNames
	if len(names) == 0 && !delegated {
		names = []string{DefaultReplyQueuePrefix + "*"}
	}
	if len(names) > 0 {
		rules = append(rules, func(q QueueRef) error {
			for _, p := range names {
				if ok, _ := path.Match(p, q.Name); ok {
					return nil
				}
			}
			return fmt.Errorf("name %s matches none of %q", q.Name, names)
		})
	}
	if c.AllowReplyFunc != nil {
		rules = append(rules, func(q QueueRef) error {
			if c.AllowReplyFunc(q) {
				return nil
			}
			return errors.New("refused by AllowReplyFunc")
		})
	}
	return rules, nil
}

// replyHosts are the places a reply may go: scheme://host origins, and
// whether a path may carry LocalStack's queue/REGION prefix there.
type replyHosts struct {
	aws    map[string]bool // origins of the region's SQS endpoints: /ACCOUNT/NAME only
	local  map[string]bool // the request queue's and Endpoint's origins
	region string          // "" when unknown
	queue  string          // the request queue's path prefix (before ACCOUNT)
	desc   string
}

func newReplyHosts(queue QueueRef, region, endpoint string) (*replyHosts, error) {
	h := &replyHosts{aws: map[string]bool{}, local: map[string]bool{}, region: region}
	qo, qp, err := splitQueueURL(queue)
	if err != nil {
		return nil, err
	}
	h.local[qo], h.queue = true, qp
	where := []string{"the request queue's " + qo}
	if endpoint != "" {
		eo, err := endpointOrigin(endpoint)
		if err != nil {
			return nil, err
		}
		h.local[eo] = true
		where = append(where, "Endpoint "+eo)
	}
	if region != "" {
		if !validRegion(region) {
			return nil, fmt.Errorf("%w: Region %q is not a region name", ErrInvalidConfig, region)
		}
		r := sqs.NewDefaultEndpointResolverV2()
		for _, v := range []sqs.EndpointParameters{{}, {UseFIPS: aws.Bool(true)}, {UseDualStack: aws.Bool(true)}, {UseFIPS: aws.Bool(true), UseDualStack: aws.Bool(true)}} {
			v.Region = aws.String(region)
			e, err := r.ResolveEndpoint(context.Background(), v)
			if err != nil || e.URI.Scheme != "https" || e.URI.Host == "" {
				continue
			}
			h.aws["https://"+strings.ToLower(e.URI.Host)] = true
			// The legacy form of the same endpoint: REGION.queue.SUFFIX
			// (queue.amazonaws.com for us-east-1), which older SDKs return.
			if rest, ok := strings.CutPrefix(strings.ToLower(e.URI.Host), "sqs."+region+"."); ok {
				h.aws["https://"+region+".queue."+rest] = true
				if region == "us-east-1" {
					h.aws["https://queue."+rest] = true
				}
			}
		}
		if len(h.aws) == 0 {
			return nil, fmt.Errorf("%w: Region %q: no SQS endpoint", ErrInvalidConfig, region)
		}
		where = append(where, "an SQS endpoint of "+region)
	}
	h.desc = strings.Join(where, ", ")
	return h, nil
}

// check tells whether q is in a place a reply may go.
func (h *replyHosts) check(q QueueRef) error {
	origin, prefix, err := splitQueueURL(q)
	if err != nil {
		return err
	}
	switch {
	case h.aws[origin] && prefix == "":
		return nil
	case h.aws[origin]:
		return fmt.Errorf("an SQS queue URL's path is /ACCOUNT/NAME, not /%s/...", prefix)
	case !h.local[origin]:
		return fmt.Errorf("%s is not %s", origin, h.desc)
	case prefix == "" || prefix == h.queue:
		return nil
	case h.region != "" && prefix == "queue/"+h.region:
		return nil
	}
	return fmt.Errorf("path prefix /%s/ is neither the request queue's nor /queue/REGION/ of the responder's region", prefix)
}

// splitQueueURL splits a parsed queue URL into its lowercased
// scheme://host and the path segments before /ACCOUNT/NAME.
func splitQueueURL(q QueueRef) (origin, prefix string, err error) {
	u, err := url.Parse(q.URL)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q", ErrInvalidQueueURL, q.URL)
	}
	p := strings.Trim(u.Path, "/")
	p = strings.TrimSuffix(strings.TrimSuffix(p, q.Account+"/"+q.Name), "/")
	return strings.ToLower(u.Scheme + "://" + u.Host), p, nil
}

// endpointOrigin returns the lowercased scheme://host of an endpoint URL.
func endpointOrigin(e string) (string, error) {
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%w: Endpoint %q is not an http(s) endpoint URL", ErrInvalidConfig, e)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// validRegion tells whether r looks like a region name (letters, digits,
// hyphens), so that it cannot add a label to a host.
func validRegion(r string) bool {
	if r == "" || strings.HasPrefix(r, "-") || strings.HasSuffix(r, "-") {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// replyPrefix is a parsed AllowReplyTo entry: everything before the
// account, the account, and the start of the name.
type replyPrefix struct{ base, account, name string }

func parseReplyPrefix(p string) (replyPrefix, error) {
	bad := func(why string) (replyPrefix, error) {
		return replyPrefix{}, fmt.Errorf("%w: AllowReplyTo %q: %s", ErrInvalidConfig, p, why)
	}
	u, err := url.Parse(p)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return bad("not an http(s) URL prefix")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.RawPath != "" {
		return bad("not a plain queue URL prefix")
	}
	i := strings.LastIndex(p, "/")
	j := strings.LastIndex(p[:i], "/")
	if j < len(u.Scheme)+len("://")+len(u.Host) || !isDigits(p[j+1:i]) {
		return bad("must name the account: .../ACCOUNT/ and then, optionally, the start of the queue name")
	}
	return replyPrefix{base: p[:j+1], account: p[j+1 : i], name: p[i+1:]}, nil
}

// match compares by parts: a prefix names one account and the start of a
// name, never a path that goes on to another account.
func (p replyPrefix) match(q QueueRef) bool {
	return q.Account == p.account && strings.HasPrefix(q.Name, p.name) &&
		q.URL == p.base+q.Account+"/"+q.Name
}

// CheckReturnAddress tells whether the Responder would reply to addr: it
// returns the parsed queue, or an error wrapping ErrUnknownReturnAddress
// that says why not.
func (s *Responder) CheckReturnAddress(addr string) (QueueRef, error) {
	q, err := parseReturnAddress(addr)
	if err != nil {
		return QueueRef{}, err
	}
	for _, rule := range s.allow {
		if err := rule(q); err != nil {
			return QueueRef{}, fmt.Errorf("%w: %s: %v", ErrUnknownReturnAddress, addr, err)
		}
	}
	return q, nil
}

// parseReturnAddress accepts only a plain queue URL: scheme, host, and a
// path of clean segments ending /ACCOUNT/NAME, with a numeric account.
// Anything a URL can hide (user info, a query, escapes, dot segments)
// makes it malformed, so that what the allowlist checks is what SQS sees.
func parseReturnAddress(addr string) (QueueRef, error) {
	if addr == "" {
		return QueueRef{}, fmt.Errorf("%w: the request has no return address", ErrUnknownReturnAddress)
	}
	q, err := ParseQueueURL(addr)
	if err != nil {
		return QueueRef{}, fmt.Errorf("%w: malformed: %v", ErrUnknownReturnAddress, err)
	}
	u, _ := url.Parse(addr) // parsed by ParseQueueURL already
	switch {
	case u.User != nil, u.RawQuery != "", u.ForceQuery, u.Fragment != "", u.RawFragment != "", u.RawPath != "", u.Opaque != "":
		return QueueRef{}, fmt.Errorf("%w: malformed: %q is not a plain queue URL", ErrUnknownReturnAddress, addr)
	case !isDigits(q.Account):
		return QueueRef{}, fmt.Errorf("%w: malformed: %q: account %q is not numeric", ErrUnknownReturnAddress, addr, q.Account)
	}
	for _, seg := range strings.Split(strings.TrimPrefix(u.Path, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return QueueRef{}, fmt.Errorf("%w: malformed: %q has an empty or dot path segment", ErrUnknownReturnAddress, addr)
		}
	}
	return q, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Stats returns a snapshot of the counters.
func (s *Responder) Stats() ResponderStats {
	return ResponderStats{
		Requests: s.stats.requests.Load(), Replies: s.stats.replies.Load(), ErrorReplies: s.stats.errorReplies.Load(),
		Rejected: s.stats.rejected.Load(), Undeliverable: s.stats.undeliverable.Load(), Consumer: s.consumer.Stats(),
	}
}

// Run consumes requests and answers them with h until ctx ends, then shuts
// down as Consumer.Run does; replies of handlers still running are sent
// before it returns. Replies that are ready at the same time share
// SendMessageBatch requests.
func (s *Responder) Run(ctx context.Context, h RequestHandler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	o := newOutbox(s.client)
	// The sender outlives ctx until the consumer has shut down, so that the
	// handlers that finish during shutdown can still reply.
	octx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); o.run(octx) }()
	err := s.consumer.Run(ctx, s.handler(h, tracedSend(s.consumer.cfg.Tracer, o.send)))
	stop()
	<-done
	return err
}

// Handler returns h as a plain Handler that sends each reply at once, with
// no background work: for a Lambda function whose event source is the
// request queue (the Lambda adapter runs the Handler), or any loop of your
// own. Run uses the same logic.
func (s *Responder) Handler(h RequestHandler) Handler {
	return s.handler(h, tracedSend(s.consumer.cfg.Tracer, func(ctx context.Context, dest string, m *Message) error {
		p, err := NewProducer(s.client, dest)
		if err != nil {
			return err
		}
		return p.Send(ctx, m)
	}))
}

type sendFunc func(ctx context.Context, dest string, m *Message) error

// tracedSend wraps send in the tracer's send span, one per message: the
// outbox batches messages of many callers, each in a trace of its own.
func tracedSend(t Tracer, send sendFunc) sendFunc {
	if t == nil {
		return send
	}
	return func(ctx context.Context, dest string, m *Message) (err error) {
		ctx, end := t.StartSend(ctx, dest, []*Message{m})
		defer func() { end(err) }()
		return send(ctx, dest, m)
	}
}

func (s *Responder) handler(h RequestHandler, send sendFunc) Handler {
	return func(ctx context.Context, req *Message) error {
		addr, virtual, java := returnAddress(req)
		dest, err := s.CheckReturnAddress(addr)
		if err == nil && java && virtual != "" && !validQueueName(virtual) {
			err = fmt.Errorf("%w: malformed: virtual queue name %q in %s", ErrUnknownReturnAddress, virtual, responseQueueURLAttribute)
		}
		if err != nil {
			// Not answered, and not deleted either: it fails, comes back
			// and ends in the dead-letter queue, where an operator sees it.
			s.stats.rejected.Add(1)
			s.log.Warn("courier: request rejected, not answered; left to the dead-letter queue", "queue", req.QueueURL, "message_id", req.ID,
				"return_address", addr, "correlation_id", req.CorrelationID, "receive_count", req.ReceiveCount, "err", err)
			return fmt.Errorf("courier: request %s rejected: %w", req.ID, err)
		}
		var reply *Message
		failed := true
		if req.CorrelationID == "" && !java {
			// The address is allowed: say why, there.
			s.stats.rejected.Add(1)
			reply = errorReply(fmt.Sprintf("%v: the request has no correlation id", ErrMalformedMessage))
		} else {
			s.stats.requests.Add(1)
			reply, failed = s.call(ctx, h, req)
		}
		address := func(r *Message) *Message {
			out := s.replyTo(req, r, dest)
			if virtual != "" {
				// What the temporary-queues client's virtual queues add
				// when they send to HOST#NAME: the host queue gets it.
				out.Attributes = maps.Clone(out.Attributes)
				if out.Attributes == nil {
					out.Attributes = map[string]Attribute{}
				}
				out.Attributes[virtualQueueNameAttribute] = StringAttr(virtual)
			}
			return out
		}
		reply = address(reply)
		if err := reply.validate(MaxSQSMessageBytes); err != nil {
			reply, failed = address(errorReply("the handler's reply cannot be sent: "+err.Error())), true
		}
		err = send(ctx, dest.URL, reply)
		if unsendable(err) && !failed {
			// Refused for what the reply is: it would be refused again on
			// every redelivery. Tell the requester instead.
			reply, failed = address(errorReply("the handler's reply cannot be sent: "+err.Error())), true
			err = send(ctx, dest.URL, reply)
		}
		switch {
		case err == nil:
			s.stats.replies.Add(1)
			if failed {
				s.stats.errorReplies.Add(1)
			}
			return nil
		case errors.Is(err, ErrNotFound):
			s.stats.undeliverable.Add(1)
			s.log.Warn("courier: reply queue gone; request deleted", "queue", req.QueueURL, "message_id", req.ID,
				"return_address", dest.URL, "correlation_id", req.CorrelationID, "err", err)
			return nil
		default:
			return fmt.Errorf("courier: reply to %s: %w", dest.URL, err)
		}
	}
}

// The attributes of the AWS Java temporary-queues client
// (amazon-sqs-java-temporary-queues-client): its AmazonSQSRequester names
// the response queue in responseQueueURLAttribute, a queue URL or, for a
// virtual queue, HOST_QUEUE_URL#NAME; a message for a virtual queue goes
// to the host queue with virtualQueueNameAttribute set to NAME.
const (
	responseQueueURLAttribute = "ResponseQueueUrl"
	virtualQueueNameAttribute = "__AmazonSQSVirtualQueuesClient.QueueName"
)

// returnAddress returns where req's reply goes: courier's return address,
// else the temporary-queues client's response queue (java), split into
// the queue URL and, for a virtual queue, its name.
func returnAddress(req *Message) (addr, virtual string, java bool) {
	if req.ReturnAddress != "" {
		return req.ReturnAddress, "", false
	}
	a, ok := req.Attributes[responseQueueURLAttribute]
	if !ok || !strings.HasPrefix(a.DataType, TypeString) || a.Value == "" {
		return "", "", false
	}
	addr, virtual, _ = strings.Cut(a.Value, "#")
	return addr, virtual, true
}

// unsendable tells whether SQS (or the check before sending) refused a
// message for what it is, rather than for a passing reason.
func unsendable(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{ErrInvalidMessage, ErrMessageTooLarge, ErrTooManyAttributes, ErrInvalidGroupID} {
		if errors.Is(err, target) {
			return true
		}
	}
	var se *SendError
	if errors.As(err, &se) {
		for _, f := range se.Failed {
			if !f.SenderFault || ClassifyCode(f.Code) == KindNotFound {
				return false
			}
		}
		return len(se.Failed) > 0
	}
	return false
}

// call runs h and turns an error, a panic or a missing reply into an error
// reply: the requester is waiting, and a panic would fail the same way on
// every delivery.
func (s *Responder) call(ctx context.Context, h RequestHandler, req *Message) (reply *Message, failed bool) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("courier: request handler panicked; answering with an error", "queue", req.QueueURL,
				"message_id", req.ID, "correlation_id", req.CorrelationID, "panic", p)
			reply, failed = errorReply(fmt.Sprintf("handler panicked: %v", p)), true
		}
	}()
	rep, err := h(ctx, req)
	switch {
	case err != nil:
		return errorReply(err.Error()), true
	case rep == nil:
		return errorReply("the handler returned no reply"), true
	}
	_, isErr := rep.Headers[ErrorHeader]
	return rep, isErr
}

// replyTo addresses reply to dest as the answer to req and, when req is
// a scatter request, names the responder in it.
func (s *Responder) replyTo(req, reply *Message, dest QueueRef) *Message {
	out := replyTo(req, reply, dest)
	if req.Header(ScatterHeader) != "" {
		name := s.cfg.Name
		if name == "" {
			name = s.consumer.queue.URL
		}
		out.Headers = maps.Clone(out.Headers)
		out.SetHeader(ResponderHeader, name)
		out.SetHeader(ResponderQueueHeader, s.consumer.queue.URL)
	}
	return out
}

// replyTo addresses a copy of reply to dest as the answer to req.
func replyTo(req, reply *Message, dest QueueRef) *Message {
	out := *reply
	out.CorrelationID, out.ReturnAddress = req.CorrelationID, ""
	out.ID, out.SequenceNumber, out.ReceiptHandle, out.QueueURL, out.TopicARN = "", "", "", "", ""
	if out.TraceParent == "" {
		out.TraceParent = req.TraceParent
	}
	if dest.FIFO() {
		// A FIFO reply queue (one infra provisioned): each reply its own
		// group, and a redelivered request's second reply deduplicated.
		if out.GroupID == "" {
			out.GroupID = req.CorrelationID
		}
		if out.DeduplicationID == "" {
			out.DeduplicationID = req.CorrelationID
		}
		out.Delay = 0
	}
	return &out
}

// errorReply makes an error reply: the text in ErrorHeader and, since SQS
// wants a body, in the body too. The text is cut to 4 KiB and made of
// characters SQS accepts.
func errorReply(text string) *Message {
	text = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (unicode.IsPrint(r) && r != unicode.ReplacementChar) {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(text, "?"))
	if len(text) > 4096 {
		text = strings.ToValidUTF8(text[:4096], "")
	}
	if text == "" {
		text = "error"
	}
	m := &Message{Body: []byte(text)}
	m.SetHeader(ErrorHeader, text)
	return m
}

// Codec turns typed requests and replies into message bodies and back.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default Codec: encoding/json.
type JSONCodec struct{}

func (JSONCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// CallOption configures Call and HandleCall.
type CallOption func(*callOptions)

type callOptions struct {
	codec   Codec
	prepare []func(*Message)
}

func newCallOptions(opts []CallOption) callOptions {
	o := callOptions{codec: JSONCodec{}}
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// WithCodec sets the codec of the bodies (default JSONCodec). Requester and
// responder must agree on it.
func WithCodec(c Codec) CallOption { return func(o *callOptions) { o.codec = c } }

// WithMessage lets fn set what else the request message (Call) or the
// reply (HandleCall) carries: attributes, headers, a FIFO GroupID.
func WithMessage(fn func(m *Message)) CallOption {
	return func(o *callOptions) { o.prepare = append(o.prepare, fn) }
}

// Call sends req, encoded with the codec, as a request to queueURL and
// decodes the reply into a Resp. Errors are Request's, plus
// ErrInvalidMessage when req does not encode and ErrMalformedMessage when
// the reply does not decode.
func Call[Req, Resp any](ctx context.Context, r *Requester, queueURL string, req Req, opts ...CallOption) (Resp, error) {
	var resp Resp
	o := newCallOptions(opts)
	body, err := o.codec.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("%w: request does not encode: %v", ErrInvalidMessage, err)
	}
	m := &Message{Body: body}
	for _, fn := range o.prepare {
		fn(m)
	}
	reply, err := r.Request(ctx, queueURL, m)
	if err != nil {
		return resp, err
	}
	if err := o.codec.Unmarshal(reply.Body, &resp); err != nil {
		return resp, fmt.Errorf("%w: reply from %s does not decode: %v", ErrMalformedMessage, queueURL, err)
	}
	return resp, nil
}

// HandleCall adapts a typed function to a RequestHandler, the responder's
// side of Call: the request body is decoded into a Req (one that does not
// decode is answered with an error wrapping ErrMalformedMessage), and the
// Resp is encoded as the reply.
func HandleCall[Req, Resp any](fn func(ctx context.Context, req Req) (Resp, error), opts ...CallOption) RequestHandler {
	o := newCallOptions(opts)
	return func(ctx context.Context, m *Message) (*Message, error) {
		var req Req
		if err := o.codec.Unmarshal(m.Body, &req); err != nil {
			return nil, fmt.Errorf("%w: request does not decode: %v", ErrMalformedMessage, err)
		}
		resp, err := fn(ctx, req)
		if err != nil {
			return nil, err
		}
		body, err := o.codec.Marshal(resp)
		if err != nil {
			return nil, fmt.Errorf("reply does not encode: %v", err)
		}
		reply := &Message{Body: body}
		for _, fn := range o.prepare {
			fn(reply)
		}
		return reply, nil
	}
}
