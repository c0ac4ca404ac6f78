package patterns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// RequesterOptions configures a Requester (NewRequester). Zero values take
// the defaults.
type RequesterOptions struct {
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
	// ConsumerOptions.Tracer is set too).
	Tracer Tracer
	// Metrics, when set, counts and times each Request (timeouts apart),
	// each request sent, the late replies, and what the reply queue's
	// consumer receives and deletes (patterns/otelmetric).
	Metrics Metrics
	Logger  *slog.Logger
}

func (c *RequesterOptions) setDefaults() {
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
func (c RequesterOptions) Validate() error {
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
	cfg    RequesterOptions
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

// NewRequester returns a Requester; optFns set its RequesterOptions, which
// are checked here.
func NewRequester(client SQSAPI, optFns ...func(*RequesterOptions)) (*Requester, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	var cfg RequesterOptions
	for _, fn := range optFns {
		fn(&cfg)
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
// ctx ends (or, without a deadline, for RequesterOptions.Timeout). It sets
// the request's CorrelationID and ReturnAddress on a copy of m; m itself
// is not changed. On a FIFO request queue m needs a GroupID, and gets the
// correlation id as its DeduplicationID unless it has one.
//
// Errors: ErrTimeout (with context.DeadlineExceeded) when the deadline
// passed first; a *RemoteError when the responder answered with an error;
// ErrRequesterClosed; the send's error (a *SendError, ErrNotFound, ...)
// when the request was not sent.
func (r *Requester) Request(ctx context.Context, queueURL string, m *Message) (_ *Message, err error) {
	if mx := r.cfg.Metrics; mx != nil {
		start, callCtx := time.Now(), ctx
		defer func() { mx.Requested(callCtx, queueURL, time.Since(start), err) }()
	}
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
	if err := tracedSend(r.cfg.Tracer, meteredSend(r.cfg.Metrics, r.out.send))(ctx, dest.URL, &req); err != nil {
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
func (r *Requester) dispatch(ctx context.Context, m *Message) error {
	r.mu.Lock()
	w, ok := r.waiters[m.CorrelationID]
	delete(r.waiters, m.CorrelationID)
	r.mu.Unlock()
	if !ok {
		r.stats.late.Add(1)
		if r.cfg.Metrics != nil {
			r.cfg.Metrics.LateReply(ctx, m.QueueURL)
		}
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
		c, err := newConsumer(abortablePolls{SQSReceiveAPI: r.client, ctx: cctx}, consumerConfig{
			QueueURL: url, ConsumerOptions: ConsumerOptions{Workers: 4, WaitTime: replyQueueWait, Logger: r.log, Metrics: r.cfg.Metrics},
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
