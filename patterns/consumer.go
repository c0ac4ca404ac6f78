package patterns

import (
	"context"
	"errors"
	"fmt"
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
// with the semantics described on ConsumerOptions. On a FIFO queue the
// messages of one group are handled one at a time, in order, and a failure
// stops the rest of that group's messages in the batch; other groups go on
// in parallel.
type Consumer struct {
	client SQSReceiveAPI
	cfg    consumerConfig
	queue  QueueRef
	stats  struct {
		receives, received, handled, failed, deleted, deleteErrors, released, extended, leaseLost atomic.Int64
	}
}

// NewConsumer returns a Consumer of the queue at queueURL; optFns set its
// ConsumerOptions, which are checked here.
func NewConsumer(client SQSReceiveAPI, queueURL string, optFns ...func(*ConsumerOptions)) (*Consumer, error) {
	return newConsumer(client, consumerConfig{QueueURL: queueURL, ConsumerOptions: consumerOptions(optFns)})
}

func newConsumer(client SQSReceiveAPI, cfg consumerConfig) (*Consumer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	if err := cfg.validate(); err != nil {
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
	// counted: in the in-flight count of ConsumerOptions.Metrics.
	counted bool
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
	tr.metrics, tr.queue = c.cfg.Metrics, c.queue.URL
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
	tr.uncount() // the abandoned handlers' messages are no longer Run's
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
		if c.cfg.Metrics != nil {
			received := 0
			if err == nil {
				received = len(out.Messages)
			}
			c.cfg.Metrics.Received(handlerCtx, c.queue.URL, received, time.Since(sent), err)
		}
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
		start := metricsStart(c.cfg.Metrics)
		err := f.parseErr
		if err == nil && c.cfg.ClaimCheck != nil {
			err = c.cfg.ClaimCheck.Resolve(mctx, f.msg)
		}
		if err == nil {
			err = c.traced(mctx, h, f.msg)
		}
		if c.cfg.Metrics != nil {
			c.cfg.Metrics.Processed(mctx, c.queue.URL, time.Since(start), err)
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
				secs := VisibilitySeconds(c.cfg.Backoff(f.msg.ReceiveCount))
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
		return callSafely(ctx, h, m)
	}
	ctx, end := c.cfg.Tracer.StartProcess(ctx, m)
	err := callSafely(ctx, h, m)
	end(err)
	return err
}

// release makes unstarted messages visible again at once.
func (c *Consumer) release(fs []*inflight, a *acker, tr *tracker, slots *slots) {
	for _, f := range fs {
		tr.finish(f, func() { a.release(f.msg.ReceiptHandle) })
	}
	c.stats.released.Add(int64(len(fs)))
	slots.release(len(fs))
}
