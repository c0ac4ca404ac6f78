// Package localrunner plays the part of Lambda's SQS event source mapping
// on a laptop: it polls a queue, builds each batch into the events.SQSEvent
// JSON Lambda would send, invokes a Lambda handler function with it through
// aws-lambda-go's own JSON handling, and applies the result as Lambda does:
// a handler error, panic or timeout fails the whole batch (nothing is
// deleted); otherwise, with ReportBatchItemFailures, the records the
// response names are left on the queue and the others deleted. Failed
// records come back when their visibility timeout ends; the runner never
// changes visibility, as Lambda does not.
//
// With it the functions in lambdas/ run against an emulator with no AWS and
// no Docker (neither emulator runs Go functions without Docker):
//
//	r, _ := localrunner.New(sqsClient, localrunner.Config{QueueURL: url, ReportBatchItemFailures: true})
//	err := r.Run(ctx, adapter.SQSHandler(handle))
package localrunner

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// Limits of the event source mapping and of Lambda.
const (
	// MaxPayloadBytes is the largest synchronous invocation payload (6 MB):
	// a batch stops growing before its event would pass it.
	MaxPayloadBytes = 6 * 1024 * 1024
	// MaxBatchSize is the largest batch from a standard queue; FIFO: 10.
	MaxBatchSize = 10000
	// MaxBatchingWindow is the largest MaximumBatchingWindowInSeconds.
	MaxBatchingWindow = 5 * time.Minute
)

// Config mirrors the event source mapping's settings (and the function's
// timeout). Zero values take Lambda's defaults.
type Config struct {
	QueueURL string
	// BatchSize is the most records per invocation. Default 10; at most 10
	// on a FIFO queue and 10,000 on a standard one, where more than 10
	// needs a MaximumBatchingWindow of at least 1s (as Lambda requires).
	BatchSize int
	// MaximumBatchingWindow (MaximumBatchingWindowInSeconds) is how long
	// records are gathered before invoking with fewer than BatchSize. It
	// opens when the first record of a batch arrives. 0 (the default)
	// invokes with what one poll returns. Standard queues only, as in
	// Lambda. The runner cannot ask SQS to wait less than a second, so a
	// window may run up to a second long.
	MaximumBatchingWindow time.Duration
	// ReportBatchItemFailures is the FunctionResponseTypes setting. Off
	// (Lambda's default) the response is ignored: a batch whose invocation
	// returns no error is deleted whole, records reported failed included.
	ReportBatchItemFailures bool
	// FunctionTimeout is the function's timeout: the invocation's context
	// deadline, and an invocation that runs past it fails the whole batch.
	// Default 3s (Lambda's). As Lambda requires, it may not exceed the
	// queue's visibility timeout.
	FunctionTimeout time.Duration
	// MaxConcurrency is how many batches are polled for and invoked at
	// once (Lambda runs each in its own execution environment; here they
	// share the process, so the handler must be safe for concurrent use).
	// Default 1.
	MaxConcurrency int
	// WaitTime is the long-poll wait of each receive. Default 20s, as
	// Lambda's pollers. Shutdown waits for a poll under way, at most this
	// long, so that no message is taken by an abandoned poll.
	WaitTime time.Duration
	// FunctionName names the function in the Lambda context and the logs.
	// Default "local".
	FunctionName string
	Logger       *slog.Logger
	// Observe, when set, is called after each invocation with what
	// happened (from the goroutine that invoked; not concurrently when
	// MaxConcurrency is 1).
	Observe func(Invocation)
}

func (c *Config) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 10
	}
	if c.FunctionTimeout == 0 {
		c.FunctionTimeout = 3 * time.Second
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = 1
	}
	if c.WaitTime == 0 {
		c.WaitTime = 20 * time.Second
	}
	if c.FunctionName == "" {
		c.FunctionName = "local"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration that Lambda would refuse (except the
// check against the queue's visibility timeout, which Run makes).
func (c Config) Validate() error {
	c.setDefaults()
	q, err := patterns.ParseQueueURL(c.QueueURL)
	if err != nil {
		return err
	}
	switch {
	case c.BatchSize < 1 || c.BatchSize > MaxBatchSize:
		return fmt.Errorf("%w: BatchSize %d outside 1..%d", patterns.ErrInvalidConfig, c.BatchSize, MaxBatchSize)
	case q.FIFO() && c.BatchSize > 10:
		return fmt.Errorf("%w: BatchSize %d: at most 10 on a FIFO queue", patterns.ErrInvalidConfig, c.BatchSize)
	case c.MaximumBatchingWindow < 0 || c.MaximumBatchingWindow > MaxBatchingWindow:
		return fmt.Errorf("%w: MaximumBatchingWindow %v outside 0..5m", patterns.ErrInvalidConfig, c.MaximumBatchingWindow)
	case q.FIFO() && c.MaximumBatchingWindow > 0:
		return fmt.Errorf("%w: MaximumBatchingWindow: not supported on FIFO queues", patterns.ErrInvalidConfig)
	case c.BatchSize > 10 && c.MaximumBatchingWindow < time.Second:
		return fmt.Errorf("%w: BatchSize %d > 10 needs a MaximumBatchingWindow of at least 1s", patterns.ErrInvalidConfig, c.BatchSize)
	case c.FunctionTimeout < 0:
		return fmt.Errorf("%w: FunctionTimeout %v < 0", patterns.ErrInvalidConfig, c.FunctionTimeout)
	case c.MaxConcurrency < 1:
		return fmt.Errorf("%w: MaxConcurrency %d < 1", patterns.ErrInvalidConfig, c.MaxConcurrency)
	case c.WaitTime < time.Second || c.WaitTime > 20*time.Second:
		return fmt.Errorf("%w: WaitTime %v outside 1s..20s", patterns.ErrInvalidConfig, c.WaitTime)
	}
	return nil
}

// Invocation is what happened in one invocation.
type Invocation struct {
	RequestID  string
	MessageIDs []string // the batch, in event order
	// Failed are the records not deleted: those the response reported, or
	// the whole batch when the invocation failed.
	Failed []string
	// Err is why the whole batch failed: the handler's error or panic, a
	// timeout, or a response Lambda would not accept. Nil otherwise.
	Err      error
	Duration time.Duration
}

// Stats counts what a Runner did.
type Stats struct {
	Polls         int64 // ReceiveMessage calls
	Received      int64 // messages received
	Invocations   int64
	BatchFailures int64 // invocations that failed the whole batch
	Reported      int64 // records reported failed in a partial batch response (and honoured)
	Deleted       int64 // deletes SQS confirmed
	DeleteErrors  int64 // deletes SQS refused (the message will come again)
}

// Runner is one event source mapping.
type Runner struct {
	client patterns.SQSReceiveAPI
	cfg    Config
	queue  patterns.QueueRef
	stats  struct {
		polls, received, invocations, batchFailures, reported, deleted, deleteErrors atomic.Int64
	}
}

// New returns a Runner for cfg.QueueURL; the configuration is checked here.
func New(client patterns.SQSReceiveAPI, cfg Config) (*Runner, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", patterns.ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	q, _ := patterns.ParseQueueURL(cfg.QueueURL)
	return &Runner{client: client, cfg: cfg, queue: q}, nil
}

// Stats returns a snapshot of the counters.
func (r *Runner) Stats() Stats {
	s := &r.stats
	return Stats{
		Polls: s.polls.Load(), Received: s.received.Load(), Invocations: s.invocations.Load(), BatchFailures: s.batchFailures.Load(),
		Reported: s.reported.Load(), Deleted: s.deleted.Load(), DeleteErrors: s.deleteErrors.Load(),
	}
}

// Run polls the queue and invokes handler until ctx is done, then stops:
// no new poll starts, a poll under way is let finish (at most WaitTime)
// and its batch invoked and settled, so nothing is left invisible. handler
// is anything lambda.Start accepts: usually the function
// adapter.SQSHandler returns, or a lambda.Handler. Run returns an error
// only when the queue cannot be consumed (it does not exist, access is
// denied, its visibility timeout is below FunctionTimeout).
func (r *Runner) Run(ctx context.Context, handler any) error {
	if handler == nil {
		return fmt.Errorf("%w: nil handler", patterns.ErrInvalidConfig)
	}
	queueARN, err := r.checkQueue(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var fatal error
	var once sync.Once
	for range r.cfg.MaxConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A handler per poller: aws-lambda-go reuses its response
			// buffers, so one handler must not be invoked concurrently.
			p := &poller{r: r, h: lambda.NewHandler(handler), queueARN: queueARN}
			if err := p.run(ctx); err != nil {
				once.Do(func() { fatal = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	return fatal
}

// checkQueue reads the queue's ARN (the events' eventSourceARN) and checks
// its visibility timeout as CreateEventSourceMapping does.
func (r *Runner) checkQueue(ctx context.Context) (string, error) {
	out, err := r.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(r.cfg.QueueURL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameQueueArn, types.QueueAttributeNameVisibilityTimeout,
		},
	})
	if err != nil {
		return "", &patterns.OpError{Op: "GetQueueAttributes", Resource: r.cfg.QueueURL, Err: err}
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("%w: %s: the queue has no QueueArn attribute", patterns.ErrInvalidConfig, r.cfg.QueueURL)
	}
	if v, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)]); err == nil {
		if vis := time.Duration(v) * time.Second; vis < r.cfg.FunctionTimeout {
			return "", fmt.Errorf("%w: queue visibility timeout %v is less than the function timeout %v (Lambda refuses the mapping)",
				patterns.ErrInvalidConfig, vis, r.cfg.FunctionTimeout)
		}
	}
	return arn, nil
}

// poller is one poll-and-invoke loop.
type poller struct {
	r        *Runner
	h        lambda.Handler
	queueARN string
	carry    []types.Message // received, not yet in a batch (payload limit)
}

func (p *poller) run(ctx context.Context) error {
	r := p.r
	for {
		if ctx.Err() != nil && len(p.carry) == 0 {
			return nil
		}
		batch, err := p.gather(ctx)
		if len(batch) > 0 {
			p.invoke(ctx, batch)
		}
		if err == nil {
			continue
		}
		switch patterns.Classify(err) {
		case patterns.KindNotFound, patterns.KindAuth, patterns.KindInvalid:
			// Lambda disables a mapping it cannot poll.
			return &patterns.OpError{Op: "ReceiveMessage", Resource: r.cfg.QueueURL, Err: err}
		}
		r.cfg.Logger.Warn("courier: local runner: receive failed; retrying", "queue", r.cfg.QueueURL, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// gather returns the next batch: up to BatchSize records, the first poll
// waiting up to WaitTime for one, later ones until the batching window
// closes, never more than MaxPayloadBytes of event.
func (p *poller) gather(ctx context.Context) ([]types.Message, error) {
	r := p.r
	var batch []types.Message
	size := len(`{"Records":[]}`)
	var windowEnd time.Time
	full := false
	take := func(msgs []types.Message) {
		for i, m := range msgs {
			n := recordSize(m, p.queueARN) + 1
			if len(batch) == r.cfg.BatchSize || (len(batch) > 0 && size+n > MaxPayloadBytes) {
				p.carry = append(p.carry, msgs[i:]...)
				full = true
				return
			}
			if len(batch) == 0 {
				windowEnd = time.Now().Add(r.cfg.MaximumBatchingWindow)
			}
			batch = append(batch, m)
			size += n
		}
	}
	carried := p.carry
	p.carry = nil
	take(carried)
	for !full && len(batch) < r.cfg.BatchSize {
		wait := r.cfg.WaitTime
		if len(batch) > 0 {
			left := time.Until(windowEnd)
			if r.cfg.MaximumBatchingWindow == 0 || left <= 0 || ctx.Err() != nil {
				break
			}
			wait = min(wait, left)
		} else if ctx.Err() != nil {
			break
		}
		// Not cancelled with ctx: SQS would finish an abandoned long poll
		// and hide what it took until its visibility timeout ends.
		out, err := r.client.ReceiveMessage(context.WithoutCancel(ctx), &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(r.cfg.QueueURL),
			MaxNumberOfMessages:         int32(min(patterns.MaxBatchEntries, r.cfg.BatchSize-len(batch))),
			WaitTimeSeconds:             int32(max((wait+time.Second-1)/time.Second, 1)),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		r.stats.polls.Add(1)
		if err != nil {
			return batch, err
		}
		r.stats.received.Add(int64(len(out.Messages)))
		take(out.Messages)
	}
	return batch, nil
}

func recordSize(m types.Message, queueARN string) int {
	b, _ := json.Marshal(record(m, queueARN))
	return len(b)
}

// invoke runs the handler on a batch and settles it as Lambda does.
func (p *poller) invoke(ctx context.Context, batch []types.Message) {
	r := p.r
	ev := Event(batch, p.queueARN)
	inv := Invocation{RequestID: newRequestID()}
	for _, rec := range ev.Records {
		inv.MessageIDs = append(inv.MessageIDs, rec.MessageId)
	}
	start := time.Now()
	var out []byte
	payload, err := json.Marshal(ev)
	if err == nil {
		out, err = p.call(ctx, payload, inv.RequestID)
	}
	inv.Duration = time.Since(start)
	if err == nil && inv.Duration > r.cfg.FunctionTimeout {
		err = fmt.Errorf("%w: the invocation ran %v, past the function timeout %v (Lambda would have ended it)",
			patterns.ErrTimeout, inv.Duration.Round(time.Millisecond), r.cfg.FunctionTimeout)
	}
	var failed map[string]bool
	if err == nil {
		failed, err = p.failures(out, inv.MessageIDs)
	}
	r.stats.invocations.Add(1)
	if err != nil {
		inv.Err = err
		r.stats.batchFailures.Add(1)
		r.cfg.Logger.Warn("courier: local runner: invocation failed; the whole batch comes back after its visibility timeout",
			"function", r.cfg.FunctionName, "request_id", inv.RequestID, "records", len(batch), "err", err)
		inv.Failed = inv.MessageIDs
	} else {
		r.stats.reported.Add(int64(len(failed)))
		var keep []types.DeleteMessageBatchRequestEntry
		for i, m := range batch {
			id := aws.ToString(m.MessageId)
			if failed[id] {
				inv.Failed = append(inv.Failed, id)
				continue
			}
			keep = append(keep, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		p.delete(ctx, keep)
	}
	if r.cfg.Observe != nil {
		r.cfg.Observe(inv)
	}
}

// call invokes the handler with the JSON payload under a context like the
// one the Lambda runtime gives: a deadline and a LambdaContext. A panic
// fails the invocation, as it ends the runtime in Lambda.
func (p *poller) call(ctx context.Context, payload []byte, requestID string) (out []byte, err error) {
	r := p.r
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.FunctionTimeout)
	defer cancel()
	queue, _ := patterns.ParseARN(p.queueARN, "sqs") // from GetQueueAttributes
	region, account := queue.Region, queue.Account
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{
		AwsRequestID:       requestID,
		InvokedFunctionArn: fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, r.cfg.FunctionName),
	})
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, fmt.Errorf("courier: local runner: the function panicked: %v", v)
		}
	}()
	b, err := p.h.Invoke(ictx, payload)
	// The handler reuses b's buffer on its next invocation.
	return bytes.Clone(b), err
}

// failures reads a response as the event source mapping does. Without
// ReportBatchItemFailures the response is ignored (and a warning logged
// when it reports failures: Lambda deletes those records too).
func (p *poller) failures(out []byte, ids []string) (map[string]bool, error) {
	r := p.r
	if r.cfg.ReportBatchItemFailures {
		return ParseResponse(out, ids)
	}
	if f, err := ParseResponse(out, ids); err == nil && len(f) > 0 {
		r.cfg.Logger.Warn("courier: local runner: the response reports failed records but ReportBatchItemFailures is off: Lambda deletes them all",
			"function", r.cfg.FunctionName, "reported", len(f))
	}
	return nil, nil
}

// ParseResponse reads a function's response to a batch of the message ids
// ids as the event source mapping does with ReportBatchItemFailures, and
// returns the ids to leave on the queue. No response, null, an object
// without batchItemFailures, and an empty or null list are complete
// success. A response that is not a JSON object, an item without an
// itemIdentifier, an empty or null one, or one naming no record of the
// batch make the whole batch fail (an error wrapping
// ErrInvalidResponse).
func ParseResponse(out []byte, ids []string) (map[string]bool, error) {
	resp := bytes.TrimSpace(out)
	if len(resp) == 0 || string(resp) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(resp, &obj); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrInvalidResponse, err)
	}
	list, ok := obj["batchItemFailures"]
	if !ok || string(list) == "null" {
		return nil, nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, fmt.Errorf("%w: batchItemFailures is not a list of objects: %v", ErrInvalidResponse, err)
	}
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
	}
	failed := make(map[string]bool, len(items))
	for _, item := range items {
		raw, ok := item["itemIdentifier"]
		if !ok {
			return nil, fmt.Errorf("%w: a batch item failure has no itemIdentifier", ErrInvalidResponse)
		}
		var id *string
		if err := json.Unmarshal(raw, &id); err != nil || id == nil || *id == "" {
			return nil, fmt.Errorf("%w: itemIdentifier %s is not a message id", ErrInvalidResponse, raw)
		}
		if !known[*id] {
			return nil, fmt.Errorf("%w: itemIdentifier %q is no message of the batch", ErrInvalidResponse, *id)
		}
		failed[*id] = true
	}
	return failed, nil
}

// ErrInvalidResponse: a partial batch response Lambda would not accept;
// the whole batch fails.
var ErrInvalidResponse = errors.New("courier: invalid partial batch response")

// delete deletes the records that succeeded, ten per request. A refused
// delete is logged: the message comes again (at-least-once).
func (p *poller) delete(ctx context.Context, entries []types.DeleteMessageBatchRequestEntry) {
	r := p.r
	ctx = context.WithoutCancel(ctx) // deletes must land during shutdown too
	for len(entries) > 0 {
		n := min(patterns.MaxBatchEntries, len(entries))
		chunk := entries[:n]
		entries = entries[n:]
		out, err := r.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(r.cfg.QueueURL), Entries: chunk})
		if err != nil {
			r.stats.deleteErrors.Add(int64(len(chunk)))
			r.cfg.Logger.Warn("courier: local runner: delete failed; the messages will come again", "queue", r.cfg.QueueURL, "count", len(chunk), "err", err)
			continue
		}
		r.stats.deleted.Add(int64(len(out.Successful)))
		r.stats.deleteErrors.Add(int64(len(out.Failed)))
		for _, f := range out.Failed {
			r.cfg.Logger.Warn("courier: local runner: delete refused; the message will come again", "queue", r.cfg.QueueURL,
				"code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
		}
	}
}

// Event builds the events.SQSEvent Lambda sends for msgs received from the
// queue queueARN: every record carries its message id, receipt handle,
// body, system attributes, message attributes (with the empty list fields
// Lambda includes), MD5s, "aws:sqs", the queue ARN and its region.
func Event(msgs []types.Message, queueARN string) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		ev.Records[i] = record(m, queueARN)
	}
	return ev
}

func record(m types.Message, queueARN string) events.SQSMessage {
	attrs := make(map[string]events.SQSMessageAttribute, len(m.MessageAttributes))
	for k, a := range m.MessageAttributes {
		attrs[k] = events.SQSMessageAttribute{
			DataType: aws.ToString(a.DataType), StringValue: a.StringValue, BinaryValue: a.BinaryValue,
			StringListValues: nonNil(a.StringListValues), BinaryListValues: nonNil(a.BinaryListValues),
		}
	}
	md5OfBody := aws.ToString(m.MD5OfBody)
	if md5OfBody == "" {
		sum := md5.Sum([]byte(aws.ToString(m.Body)))
		md5OfBody = hex.EncodeToString(sum[:])
	}
	sys := m.Attributes
	if sys == nil {
		sys = map[string]string{}
	}
	return events.SQSMessage{
		MessageId:              aws.ToString(m.MessageId),
		ReceiptHandle:          aws.ToString(m.ReceiptHandle),
		Body:                   aws.ToString(m.Body),
		Md5OfBody:              md5OfBody,
		Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes:             sys,
		MessageAttributes:      attrs,
		EventSource:            "aws:sqs",
		EventSourceARN:         queueARN,
		AWSRegion:              queueRegion(queueARN),
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// queueRegion is the region of a queue ARN, or "".
func queueRegion(arn string) string {
	a, _ := patterns.ParseARN(arn, "sqs")
	return a.Region
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
