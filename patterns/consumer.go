package patterns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Handler handles one message. Returning nil means done: the message is
// deleted. Returning an error leaves the message on the queue: SQS delivers
// it again after its visibility timeout, and its redrive policy moves it to
// the dead-letter queue after maxReceiveCount receives.
type Handler func(ctx context.Context, m *Message) error

// ConsumerConfig configures a Consumer. Zero values take the defaults.
type ConsumerConfig struct {
	QueueURL string
	// ClaimCheck, when set, resolves claim-check pointers (the Extended
	// Client format) before the handler sees a message, and removes the
	// object after the message is deleted where it may (see ClaimCheck).
	// A pointer whose object cannot be read fails the message.
	ClaimCheck *ClaimCheck
	// Tracer, when set, runs each handler in a span that continues the
	// trace the message carries (patterns/oteltrace).
	Tracer Tracer
	// Workers is how many handlers run at once. Default 10.
	Workers int
	// MaxInFlight bounds the messages received and not yet finished
	// (running plus waiting for a worker). Default Workers + MaxMessages.
	MaxInFlight int
	// MaxMessages is how many messages one ReceiveMessage asks for (1-10).
	// Default 10.
	MaxMessages int
	// WaitTime is the long-poll wait, 1s-20s; SQS counts whole seconds, so
	// a fraction is rounded up, and less than a second is refused (SQS
	// would be asked for no wait at all). Default 20s: an idle consumer
	// costs three requests a minute. A receive that comes back empty sooner
	// than half its wait (an emulator or a fake that does not long-poll) is
	// followed by a pause, growing to a second, so an idle consumer never
	// spins. Shutdown waits for the poll under way (at most ShutdownTimeout)
	// so that no message is taken by an abandoned poll.
	WaitTime time.Duration
	// VisibilityTimeout, when set, is sent with each receive. Zero uses the
	// queue's own, read once at start.
	VisibilityTimeout time.Duration
	// HeartbeatInterval is how often the visibility of messages still being
	// handled is checked and extended. Default a third of the visibility timeout.
	HeartbeatInterval time.Duration
	// AckInterval is how long a finished message may wait for others to
	// fill its delete batch. Default 50ms.
	AckInterval time.Duration
	// ShutdownTimeout is how long in-flight handlers (and the poll under
	// way) may run after the context of Run is done before their own
	// context is cancelled. A handler that does not return within a second
	// of that is abandoned: Run does not wait for it, and its message is
	// delivered again after its visibility timeout. Default 30s.
	ShutdownTimeout time.Duration
	// CallTimeout bounds each SQS request: deletes, visibility changes
	// (heartbeat extensions included) and the GetQueueAttributes at start
	// may take this long, a receive WaitTime plus this. The SDK's default
	// HTTP client has no timeout, so without one a stalled endpoint would
	// hold a request, and shutdown, for ever. It also bounds the final
	// flush of Run: Run returns at most ShutdownTimeout + 1s + CallTimeout
	// after its context is done. Default 15s: generous, so that a slow
	// but working endpoint (throttling and the SDK's retries, an emulator
	// on a loaded machine) does not turn deletes into redeliveries.
	CallTimeout time.Duration
	// Backoff, when set, decides when a message whose handler failed is
	// delivered again: its visibility timeout is set to Backoff(receiveCount)
	// instead of waiting out the queue's whole timeout. The redrive policy
	// still moves it to the dead-letter queue after maxReceiveCount receives.
	// See ExponentialBackoff. On FIFO queues the rest of the group's run
	// waits behind it either way.
	Backoff func(receiveCount int) time.Duration
	// Raw turns off SNS envelope unwrapping (for queues whose bodies may
	// legitimately look like SNS notifications).
	Raw    bool
	Logger *slog.Logger
}

func (c *ConsumerConfig) setDefaults() {
	if c.Workers == 0 {
		c.Workers = 10
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = MaxBatchEntries
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = c.Workers + c.MaxMessages
	}
	if c.WaitTime == 0 {
		c.WaitTime = 20 * time.Second
	}
	if c.AckInterval == 0 {
		c.AckInterval = 50 * time.Millisecond
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration that cannot work.
func (c ConsumerConfig) Validate() error {
	c.setDefaults()
	if _, err := ParseQueueURL(c.QueueURL); err != nil {
		return err
	}
	switch {
	case c.Workers < 1:
		return fmt.Errorf("%w: Workers %d < 1", ErrInvalidConfig, c.Workers)
	case c.MaxMessages < 1 || c.MaxMessages > MaxBatchEntries:
		return fmt.Errorf("%w: MaxMessages %d outside 1..10", ErrInvalidConfig, c.MaxMessages)
	case c.MaxInFlight < c.Workers:
		return fmt.Errorf("%w: MaxInFlight %d < Workers %d", ErrInvalidConfig, c.MaxInFlight, c.Workers)
	case c.WaitTime < time.Second || c.WaitTime > 20*time.Second:
		return fmt.Errorf("%w: WaitTime %v outside 1s..20s (0: the default, 20s)", ErrInvalidConfig, c.WaitTime)
	case c.VisibilityTimeout < 0 || c.VisibilityTimeout > 12*time.Hour:
		return fmt.Errorf("%w: VisibilityTimeout %v outside 0..12h", ErrInvalidConfig, c.VisibilityTimeout)
	case c.VisibilityTimeout > 0 && c.VisibilityTimeout < time.Second:
		return fmt.Errorf("%w: VisibilityTimeout %v: SQS counts whole seconds", ErrInvalidConfig, c.VisibilityTimeout)
	case c.HeartbeatInterval < 0:
		return fmt.Errorf("%w: HeartbeatInterval %v < 0", ErrInvalidConfig, c.HeartbeatInterval)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("%w: ShutdownTimeout %v < 0", ErrInvalidConfig, c.ShutdownTimeout)
	case c.CallTimeout < 0:
		return fmt.Errorf("%w: CallTimeout %v < 0", ErrInvalidConfig, c.CallTimeout)
	}
	return nil
}

// waitSeconds is WaitTime as SQS takes it: whole seconds, rounded up.
func (c ConsumerConfig) waitSeconds() int32 {
	return int32((c.WaitTime + time.Second - 1) / time.Second)
}

// ErrShutdownIncomplete: Run ended without finishing what it had taken
// on: handlers that outlived ShutdownTimeout were abandoned, or deletes and
// visibility changes were not sent within CallTimeout. Those messages are
// not lost: SQS delivers them again after their visibility timeout.
var ErrShutdownIncomplete = errors.New("courier: consumer shutdown incomplete")

// ErrLeaseLost is the cause of a handler's context when its message's
// visibility timeout ended before the handler finished, because the
// heartbeat could not extend it (SQS refused or did not answer). SQS may
// already have delivered the message to another consumer: a handler with
// side effects should check its context (context.Cause) before it
// commits them. On a FIFO queue the rest of the run is not handled: the
// group's messages come back, in order, to whoever receives them next.
// Found by internal/sim (a FIFO handler finishing after its message had
// come back to another consumer handled the group out of order).
var ErrLeaseLost = errors.New("courier: the message's visibility timeout ended before its handler finished")

// ConsumerStats counts what a Consumer did.
type ConsumerStats struct {
	Receives     int64 // ReceiveMessage calls
	Received     int64 // messages received
	Handled      int64 // handler returned nil
	Failed       int64 // handler returned an error or panicked, or the message was malformed
	Deleted      int64 // deletes SQS confirmed
	DeleteErrors int64 // deletes SQS refused (the message will come again)
	Released     int64 // unstarted messages made visible again at shutdown
	Extended     int64 // visibility extensions by the heartbeat
	LeaseLost    int64 // messages whose visibility ended before their handler finished (ErrLeaseLost)
}

// Consumer receives messages from one SQS queue and runs a Handler on each,
// with the semantics described on ConsumerConfig. On a FIFO queue the
// messages of one group are handled one at a time, in order, and a failure
// stops the rest of that group's messages in the batch; other groups go on
// in parallel.
type Consumer struct {
	client SQSReceiveAPI
	cfg    ConsumerConfig
	queue  QueueRef
	stats  struct {
		receives, received, handled, failed, deleted, deleteErrors, released, extended, leaseLost atomic.Int64
	}
}

// NewConsumer returns a Consumer; the configuration is checked here.
func NewConsumer(client SQSReceiveAPI, cfg ConsumerConfig) (*Consumer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	q, _ := ParseQueueURL(cfg.QueueURL)
	return &Consumer{client: client, cfg: cfg, queue: q}, nil
}

// Stats returns a snapshot of the counters.
func (c *Consumer) Stats() ConsumerStats {
	s := &c.stats
	return ConsumerStats{
		Receives: s.receives.Load(), Received: s.received.Load(), Handled: s.handled.Load(), Failed: s.failed.Load(),
		Deleted: s.deleted.Load(), DeleteErrors: s.deleteErrors.Load(), Released: s.released.Load(), Extended: s.extended.Load(),
		LeaseLost: s.leaseLost.Load(),
	}
}

// inflight is one received message on its way through the consumer.
type inflight struct {
	msg      *Message
	parseErr error
	deadline time.Time // when its visibility ends, as far as we know
	// extending: the heartbeat has an extension of it under way. The
	// decision taken meanwhile (delete, release, backoff) waits in then
	// until the extension is answered, so that it lands last.
	extending bool
	then      func()
	// cancel ends the handler's context (ErrLeaseLost) while it runs;
	// lost: the visibility timeout ended without an extension.
	cancel context.CancelCauseFunc
	lost   bool
}

// run is a sequence of messages handled in order by one worker: one
// message on a standard queue, the messages of one group from one receive
// on a FIFO queue.
type run struct {
	group string
	msgs  []*inflight
}

// Run receives and handles messages until ctx is done, then shuts down
// gracefully: it stops receiving, lets in-flight handlers finish (for up to
// ShutdownTimeout), makes received but unstarted messages visible again,
// flushes pending deletes (for up to CallTimeout), and returns nil. It
// returns an error early only when the queue cannot be consumed (it does
// not exist, access is denied). When shutdown could not finish (handlers
// that ignore their cancelled context, an endpoint that does not answer)
// Run still returns in bounded time, with an error wrapping
// ErrShutdownIncomplete that counts what was left; an abandoned handler's
// goroutine is the one thing that may outlive Run.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	vis, err := c.visibilityTimeout(ctx)
	if err != nil {
		return err
	}
	// Handlers, the poll under way and acknowledgements outlive ctx
	// (graceful shutdown), but never Run: their contexts end before Run
	// returns. Shutdown begins when ctx is done or the queue cannot be
	// consumed; ShutdownTimeout later, handlers and the poll are cancelled.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var shutdownTimer *time.Timer
	startShutdown := sync.OnceFunc(func() { shutdownTimer = time.AfterFunc(c.cfg.ShutdownTimeout, cancelHandlers) })
	stopAfter := context.AfterFunc(ctx, startShutdown)

	a := newAcker(c, vis)
	tr := newTracker(vis)
	slots := newSlots(c.cfg.MaxInFlight)
	work := make(chan run, c.cfg.MaxInFlight)
	groups := newGroupGate()

	var workers sync.WaitGroup
	for range c.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			c.worker(ctx, handlerCtx, h, work, a, tr, slots, groups)
		}()
	}
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		c.heartbeat(hbCtx, tr, a, vis)
	}()

	fatal := c.receiveLoop(ctx, handlerCtx, work, slots, tr, a, groups)
	stopAfter()
	startShutdown()
	defer shutdownTimer.Stop()

	close(work)
	abandoned := c.waitWorkers(&workers, handlerCtx, work, a, tr, slots, groups)
	stopHeartbeat()
	<-hbDone
	deletes, changes := a.close()
	if abandoned == 0 && deletes == 0 && changes == 0 {
		return fatal
	}
	c.cfg.Logger.Error("courier: consumer shutdown incomplete; these messages will be delivered again",
		"queue", c.queue.URL, "abandoned", abandoned, "deletes_not_sent", deletes, "visibility_changes_not_sent", changes)
	incomplete := fmt.Errorf("%w: %s: %d messages abandoned in handlers still running %v after shutdown began, "+
		"%d deletes and %d visibility changes not sent within CallTimeout %v; SQS delivers them again after their visibility timeout",
		ErrShutdownIncomplete, c.queue.URL, abandoned, c.cfg.ShutdownTimeout, deletes, changes, c.cfg.CallTimeout)
	return errors.Join(fatal, incomplete)
}

// handlerGrace is how long Run waits for handlers after cancelling them
// before it abandons them: a handler that honours its context returns
// well within it.
const handlerGrace = time.Second

// waitWorkers waits for the workers to finish, or, once handlerCtx is
// cancelled, handlerGrace more; then it abandons those still running,
// releases the runs no worker will start, and returns how many messages
// the abandoned handlers still hold.
func (c *Consumer) waitWorkers(workers *sync.WaitGroup, handlerCtx context.Context, work <-chan run, a *acker, tr *tracker, slots *slots, groups *groupGate) int {
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
		return 0
	case <-handlerCtx.Done():
	}
	grace := time.NewTimer(handlerGrace)
	defer grace.Stop()
	select {
	case <-done:
		return 0
	case <-grace.C:
	}
	for r := range work {
		c.release(r.msgs, a, tr, slots)
	}
	for _, r := range groups.drain() {
		c.release(r.msgs, a, tr, slots)
	}
	return tr.len()
}

// visibilityTimeout returns the configured timeout or reads the queue's.
// Reading it also proves the queue exists before anything else happens.
func (c *Consumer) visibilityTimeout(ctx context.Context) (time.Duration, error) {
	// A transient failure here (throttling, a 500, a call past its
	// deadline) is retried until ctx ends: a consumer starting during an
	// SQS hiccup must not stop for good. Found by internal/sim.
	var out *sqs.GetQueueAttributesOutput
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 5*time.Second) {
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		var err error
		out, err = c.client.GetQueueAttributes(callCtx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(c.queue.URL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
		})
		cancel()
		if err == nil {
			break
		}
		if k := Classify(err); (k != KindRetryable && k != KindThrottled) || ctx.Err() != nil {
			return 0, opError("GetQueueAttributes", c.queue.URL, err)
		}
		c.cfg.Logger.Warn("courier: reading the queue's visibility timeout failed; retrying", "queue", c.queue.URL, "err", err)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, opError("GetQueueAttributes", c.queue.URL, err)
		}
	}
	if c.cfg.VisibilityTimeout > 0 {
		return c.cfg.VisibilityTimeout, nil
	}
	secs, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	if err != nil {
		return 0, opError("GetQueueAttributes", c.queue.URL, fmt.Errorf("unreadable VisibilityTimeout: %w", err))
	}
	return time.Duration(secs) * time.Second, nil
}

// emptyPollPause is the first pause after a receive that came back empty
// without waiting; it doubles with each such receive in a row, up to a second.
const emptyPollPause = 50 * time.Millisecond

func (c *Consumer) receiveLoop(ctx, handlerCtx context.Context, work chan<- run, slots *slots, tr *tracker, a *acker, groups *groupGate) error {
	var errBackoff, shortPolls int
	for {
		// Ask for a full batch when the in-flight bound allows one: fewer,
		// fuller receives cost fewer requests per message.
		n := slots.acquire(ctx, c.cfg.MaxMessages)
		if n == 0 {
			return nil // ctx done
		}
		in := &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(c.queue.URL),
			MaxNumberOfMessages:         int32(n),
			WaitTimeSeconds:             c.cfg.waitSeconds(),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		}
		if c.cfg.VisibilityTimeout > 0 {
			in.VisibilityTimeout = int32(c.cfg.VisibilityTimeout / time.Second)
		}
		// The poll is not cancelled with ctx: SQS would go on with an
		// abandoned long poll and hide the message it takes until its
		// visibility timeout. Waiting for it (at most WaitTime, or
		// ShutdownTimeout when the endpoint stalls) and releasing what it
		// brings loses nothing.
		pollCtx, cancel := context.WithTimeout(handlerCtx, c.cfg.WaitTime+c.cfg.CallTimeout)
		sent := time.Now()
		out, err := c.client.ReceiveMessage(pollCtx, in)
		cancel()
		c.stats.receives.Add(1)
		if err != nil {
			slots.release(n)
			switch Classify(err) {
			case KindNotFound, KindAuth, KindInvalid:
				return opError("ReceiveMessage", c.queue.URL, err)
			}
			c.cfg.Logger.Warn("courier: receive failed; retrying", "queue", c.queue.URL, "err", err)
			if sleepCtx(ctx, backoff(200*time.Millisecond, errBackoff)) != nil {
				return nil
			}
			errBackoff++
			continue
		}
		errBackoff = 0
		slots.release(n - len(out.Messages))
		c.stats.received.Add(int64(len(out.Messages)))
		runs := c.toRuns(out.Messages, tr, time.Now())
		if ctx.Err() != nil {
			for _, r := range runs {
				c.release(r.msgs, a, tr, slots)
			}
			return nil
		}
		for _, r := range runs {
			if groups.admit(r) {
				work <- r
			}
		}
		// An empty answer sooner than half the wait is no long poll (an
		// emulator or a fake): pause, or an idle consumer would spin.
		if len(out.Messages) > 0 || time.Since(sent) >= time.Duration(in.WaitTimeSeconds)*time.Second/2 {
			shortPolls = 0
			continue
		}
		if sleepCtx(ctx, min(emptyPollPause<<min(shortPolls, 5), time.Second)) != nil {
			return nil
		}
		shortPolls++
	}
}

// toRuns converts received messages and groups them into runs.
func (c *Consumer) toRuns(msgs []types.Message, tr *tracker, received time.Time) []run {
	fifo := c.queue.FIFO()
	// One allocation each for the batch's inflights and their pointers.
	fs := make([]inflight, len(msgs))
	ptrs := make([]*inflight, len(msgs))
	runs := make([]run, 0, len(msgs))
	var index map[string]int
	if fifo {
		index = make(map[string]int, len(msgs))
	}
	for i, sm := range msgs {
		f := &fs[i]
		ptrs[i] = f
		f.msg, f.parseErr = c.toMessage(sm)
		tr.add(f, received)
		if !fifo {
			runs = append(runs, run{msgs: ptrs[i : i+1 : i+1]})
			continue
		}
		g := f.msg.GroupID
		if i, ok := index[g]; ok {
			runs[i].msgs = append(runs[i].msgs, f)
			continue
		}
		index[g] = len(runs)
		runs = append(runs, run{group: g, msgs: []*inflight{f}})
	}
	return runs
}

// toMessage converts an SQS message; a message whose envelope or courier
// attributes cannot be read comes back with an error and is failed, so it
// ends in the dead-letter queue rather than being dropped or misread.
func (c *Consumer) toMessage(sm types.Message) (*Message, error) {
	return DecodeSQSMessage(SQSRecord{
		MessageID:         aws.ToString(sm.MessageId),
		ReceiptHandle:     aws.ToString(sm.ReceiptHandle),
		Body:              aws.ToString(sm.Body),
		Attributes:        sm.Attributes,
		MessageAttributes: fromSQSAttributes(sm.MessageAttributes),
		QueueURL:          c.queue.URL,
	}, c.cfg.Raw)
}

func (c *Consumer) worker(runCtx, handlerCtx context.Context, h Handler, work <-chan run, a *acker, tr *tracker, slots *slots, groups *groupGate) {
	for r := range work {
		for {
			c.handleRun(runCtx, handlerCtx, h, r, a, tr, slots)
			next, ok := groups.done(r)
			if !ok {
				break
			}
			r = next
		}
	}
}

// handleRun handles a run's messages in order. After a failure on a FIFO
// queue the rest of the run is left alone: SQS returns them, in order, after
// the visibility timeout, behind the failed one.
func (c *Consumer) handleRun(runCtx, handlerCtx context.Context, h Handler, r run, a *acker, tr *tracker, slots *slots) {
	for i, f := range r.msgs {
		if runCtx.Err() != nil {
			c.release(r.msgs[i:], a, tr, slots)
			return
		}
		mctx, cancel := context.WithCancelCause(handlerCtx)
		if !tr.start(f, cancel) {
			// Its visibility ended while it waited for a worker: it may be
			// another consumer's now. Leave it (and on FIFO the rest of the
			// run, which came back with it) to SQS.
			cancel(ErrLeaseLost)
			c.stats.leaseLost.Add(1)
			if r.group != "" {
				c.leave(r.msgs[i:], tr, slots)
				return
			}
			c.leave(r.msgs[i:i+1], tr, slots)
			continue
		}
		err := f.parseErr
		if err == nil && c.cfg.ClaimCheck != nil {
			err = c.cfg.ClaimCheck.Resolve(mctx, f.msg)
		}
		if err == nil {
			err = c.traced(mctx, h, f.msg)
		}
		// lost: on FIFO, its visibility ended while the handler ran. A
		// handled message is still deleted (its receipt handle may have
		// gone stale); nothing else is decided for it: the group may be
		// another consumer's now.
		lost := tr.stop(f) && r.group != ""
		cancel(nil)
		if lost {
			c.stats.leaseLost.Add(1)
		}
		if err == nil {
			c.stats.handled.Add(1)
			var after func(context.Context)
			if cc, m := c.cfg.ClaimCheck, f.msg; !lost && cc != nil && m.Offloaded != nil {
				after = func(ctx context.Context) { cc.afterDelete(ctx, m) }
			}
			tr.finish(f, func() { a.delete(f.msg.ReceiptHandle, after) })
			slots.release(1)
		} else {
			c.stats.failed.Add(1)
			var decide func()
			if c.cfg.Backoff != nil && !lost {
				secs := visibilitySeconds(c.cfg.Backoff(f.msg.ReceiveCount))
				decide = func() { a.setVisibility(f.msg.ReceiptHandle, secs) }
			}
			tr.finish(f, decide)
			slots.release(1)
			if !lost {
				c.cfg.Logger.Warn("courier: handler failed; the message will be delivered again",
					"queue", c.queue.URL, "message_id", f.msg.ID, "receive_count", f.msg.ReceiveCount, "err", err)
			}
		}
		// FIFO: after a failure, or when the group may be someone else's
		// now, what this run still holds comes back, in order, behind it.
		if r.group != "" && (err != nil || lost) {
			c.leave(r.msgs[i+1:], tr, slots)
			return
		}
	}
}

// leave takes fs out of flight with no decision: SQS gives them back after
// their visibility timeout, to whoever receives next.
func (c *Consumer) leave(fs []*inflight, tr *tracker, slots *slots) {
	for _, f := range fs {
		tr.finish(f, nil)
	}
	slots.release(len(fs))
}

// traced runs h through call, in the Tracer's span when there is one.
func (c *Consumer) traced(ctx context.Context, h Handler, m *Message) error {
	if c.cfg.Tracer == nil {
		return c.call(ctx, h, m)
	}
	ctx, end := c.cfg.Tracer.StartProcess(ctx, m)
	err := c.call(ctx, h, m)
	end(err)
	return err
}

// call runs h, turning a panic into an error.
func (c *Consumer) call(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("courier: handler panicked: %v", p)
		}
	}()
	return h(ctx, m)
}

// release makes unstarted messages visible again at once.
func (c *Consumer) release(fs []*inflight, a *acker, tr *tracker, slots *slots) {
	for _, f := range fs {
		tr.finish(f, func() { a.release(f.msg.ReceiptHandle) })
	}
	c.stats.released.Add(int64(len(fs)))
	slots.release(len(fs))
}

// heartbeat extends the visibility of messages still in flight before it
// runs out, so a slow handler's message is not delivered to someone else.
func (c *Consumer) heartbeat(ctx context.Context, tr *tracker, a *acker, vis time.Duration) {
	every := c.cfg.HeartbeatInterval
	if every == 0 {
		every = vis / 3
	}
	if every < 100*time.Millisecond {
		every = 100 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Extend what would expire before the next tick or two. A
		// decision on one of them taken while its extension is under way
		// is sent after the extension is answered (tracker.finish).
		sent := time.Now()
		tr.expire(sent)
		due := tr.due(sent.Add(2 * every))
		if len(due) == 0 {
			continue
		}
		handles := make([]string, len(due))
		for i, f := range due {
			handles[i] = f.msg.ReceiptHandle
		}
		ok := a.extendNow(ctx, handles, vis)
		tr.extended(due, ok, sent.Add(vis))
		tr.expire(time.Now())
	}
}

// tracker knows the messages in flight and when their visibility ends.
type tracker struct {
	mu  sync.Mutex
	set map[*inflight]struct{}
	vis time.Duration
}

func newTracker(vis time.Duration) *tracker {
	return &tracker{set: make(map[*inflight]struct{}), vis: vis}
}

// add puts f in flight; its visibility began when the receive took it,
// just before received (when the answer came: a long poll may have waited
// long before that, so the time it was sent would be far too early).
func (t *tracker) add(f *inflight, received time.Time) {
	f.deadline = received.Add(t.vis)
	t.mu.Lock()
	t.set[f] = struct{}{}
	t.mu.Unlock()
}

// finish takes f out of flight; decide, if not nil, hands the acker its
// last decision (delete, release, backoff). It runs now, or, when the
// heartbeat has an extension of f under way, once that is answered: sent
// before it, the decision could be overtaken by the extension and the
// message hidden for a whole visibility timeout.
func (t *tracker) finish(f *inflight, decide func()) {
	t.mu.Lock()
	delete(t.set, f)
	if f.extending {
		f.then = decide
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	if decide != nil {
		decide()
	}
}

// start records that f's handler runs with cancel; false when f's
// visibility has already ended (lost).
func (t *tracker) start(f *inflight, cancel context.CancelCauseFunc) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f.lost || time.Now().After(f.deadline) {
		f.lost = true
		return false
	}
	f.cancel = cancel
	return true
}

// stop records that f's handler returned; it reports whether f's
// visibility ended meanwhile.
func (t *tracker) stop(f *inflight) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.cancel = nil
	return f.lost
}

// expire marks the messages whose visibility ended (no extension landed in
// time) as lost and cancels their handlers with ErrLeaseLost.
func (t *tracker) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for f := range t.set {
		if !f.lost && !f.extending && now.After(f.deadline) {
			f.lost = true
			if f.cancel != nil {
				f.cancel(ErrLeaseLost)
			}
		}
	}
}

// due marks the messages whose visibility ends before before as being
// extended and returns them; extended must follow.
func (t *tracker) due(before time.Time) []*inflight {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*inflight
	for f := range t.set {
		if f.deadline.Before(before) {
			f.extending = true
			out = append(out, f)
		}
	}
	return out
}

// extended records the answer to the extension of fs (ok[i]: fs[i] is
// now visible again at deadline) and sends the decisions taken meanwhile.
func (t *tracker) extended(fs []*inflight, ok []bool, deadline time.Time) {
	var then []func()
	t.mu.Lock()
	for i, f := range fs {
		f.extending = false
		if _, in := t.set[f]; in && ok[i] {
			f.deadline = deadline
		}
		if f.then != nil {
			then = append(then, f.then)
			f.then = nil
		}
	}
	t.mu.Unlock()
	for _, decide := range then {
		decide()
	}
}

func (t *tracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.set)
}

// slots bounds the messages in flight.
type slots struct {
	mu      sync.Mutex
	free    int
	max     int
	notify  chan struct{}
	waiting bool // someone waits on notify: release replaces it
}

func newSlots(n int) *slots { return &slots{free: n, max: n, notify: make(chan struct{})} }

// acquire waits until want slots are free (or all are, when want exceeds
// the bound) and takes them; it returns 0 when ctx is done.
func (s *slots) acquire(ctx context.Context, want int) int {
	want = min(want, s.max)
	for {
		s.mu.Lock()
		if s.free >= want {
			s.free -= want
			s.mu.Unlock()
			return want
		}
		ch := s.notify
		s.waiting = true
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0
		case <-ch:
		}
	}
}

func (s *slots) release(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	if s.waiting {
		close(s.notify)
		s.notify = make(chan struct{})
		s.waiting = false
	}
	s.mu.Unlock()
}

// groupGate keeps one run per FIFO group in progress at a time. SQS already
// holds back a group while its messages are in flight; the gate also covers
// a redelivery that overlaps a slow handler.
type groupGate struct {
	mu      sync.Mutex
	active  map[string]bool
	pending map[string][]run
}

func newGroupGate() *groupGate {
	return &groupGate{active: map[string]bool{}, pending: map[string][]run{}}
}

// admit reports whether r may start now; if not, it is queued behind its group.
func (g *groupGate) admit(r run) bool {
	if r.group == "" {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active[r.group] {
		g.pending[r.group] = append(g.pending[r.group], r)
		return false
	}
	g.active[r.group] = true
	return true
}

// done marks r finished and returns the next run of its group, if any.
func (g *groupGate) done(r run) (run, bool) {
	if r.group == "" {
		return run{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if q := g.pending[r.group]; len(q) > 0 {
		g.pending[r.group] = q[1:]
		if len(q) == 1 {
			delete(g.pending, r.group)
		}
		return q[0], true
	}
	delete(g.active, r.group)
	return run{}, false
}

// drain takes every queued run out of the gate (shutdown, when the
// workers that would start them are abandoned).
func (g *groupGate) drain() []run {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []run
	for group, q := range g.pending {
		out = append(out, q...)
		delete(g.pending, group)
	}
	return out
}
