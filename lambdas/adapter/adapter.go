// Package adapter runs a patterns.Handler, the same handler a long-running
// Consumer runs, inside AWS Lambda: SQS events with partial batch responses
// (ReportBatchItemFailures), and SNS events.
//
//	func main() {
//		lambda.Start(adapter.SQSHandler(handle))
//	}
//
// The event source mapping must have FunctionResponseTypes
// ["ReportBatchItemFailures"]. Without it Lambda ignores the response: a
// batch whose invocation returns no error is deleted whole, failed records
// included.
package adapter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/courier-aws/courier/patterns"
)

// Options configures the adapters. Zero values take the defaults.
type Options struct {
	// Concurrency bounds the records (standard queues) or message groups
	// (FIFO queues with SkipGroupOnError) handled at once. Default 10.
	Concurrency int
	// SkipGroupOnError changes what a failure does on a FIFO queue. By
	// default the adapter does what the Lambda documentation asks of a
	// function with partial batch responses on a FIFO queue: it handles
	// the records one at a time, in batch order, stops at the first
	// failure and reports that record and every record after it. With
	// SkipGroupOnError, message groups run concurrently (each in order)
	// and a failure reports only the rest of its own group; the other
	// groups go on. Order still holds, since SQS orders only within a
	// group, and fewer records come back; but it is not AWS's guidance.
	//
	// Either way, a record reported failed is received again and counts
	// toward the queue's maxReceiveCount (SQS counts receives, not
	// failures): records that keep arriving behind a poison message of
	// their group reach the dead-letter queue with it, unrun. Redrive
	// them once the poison is dealt with.
	SkipGroupOnError bool
	// Raw turns off SNS envelope unwrapping, as ConsumerOptions.Raw.
	Raw bool
	// DeadlineMargin: a record not started when less than this is left
	// before the invocation's deadline is reported failed without being
	// started, so that it is retried rather than cut off mid-way when
	// Lambda ends the invocation. Set it to about the longest a record
	// takes. Default: 2s, or a tenth of the time the invocation had when
	// it started if that is less (a 3s function keeps 300ms).
	DeadlineMargin time.Duration
	// Backoff, with SQS set, spaces the retries of a record whose handler
	// failed, as ConsumerOptions.Backoff does: before the invocation
	// returns, the record's visibility timeout is set from its receive
	// count (ApproximateReceiveCount), so it comes back after the backoff
	// instead of after the queue's whole visibility timeout. The dead-letter
	// queue still takes it after maxReceiveCount. Records reported failed
	// without being started keep the queue's timeout. Example:
	// patterns.ExponentialBackoff(time.Second, 5*time.Minute).
	Backoff func(receiveCount int) time.Duration
	// SQS changes the visibility for Backoff; the function's role needs
	// sqs:ChangeMessageVisibility and sqs:GetQueueUrl on its queue.
	SQS VisibilityAPI
	// ClaimCheck resolves claim-check pointers (the Extended Client
	// format) before the handler sees a record; a pointer whose object
	// cannot be read fails the record. Objects are not removed here: the
	// event source mapping deletes the message after the invocation, so
	// the bucket's lifecycle rule expires them.
	ClaimCheck *patterns.ClaimCheck
	// Tracer runs each record's handler in a span that continues the
	// trace the message carries (patterns/oteltrace).
	Tracer patterns.Tracer
	// Metrics counts the records delivered, handled, failed and (SQS)
	// deleted, times each record's handling, and counts the records in
	// flight (patterns/otelmetric).
	Metrics patterns.Metrics
	Logger  *slog.Logger
}

// WithLogger sets Options.Logger.
func WithLogger(l *slog.Logger) func(*Options) { return func(o *Options) { o.Logger = l } }

func options(optFns []func(*Options)) Options {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Concurrency < 1 {
		o.Concurrency = 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// SQSHandler returns a Lambda handler for SQS events that runs h on each
// record and reports, as batch item failures (by message id), the records
// that failed: a record that cannot be decoded (malformed SNS envelope or
// courier header), a handler error or panic, a record not started because
// the invocation was too close to its deadline, and on FIFO queues the
// records after a failure (see Options.SkipGroupOnError). Lambda deletes
// the other records. It never returns an error: that would make Lambda
// retry the whole batch, the records that succeeded included.
//
// Records of a standard queue run concurrently, at most
// Options.Concurrency at a time.
func SQSHandler(h patterns.Handler, optFns ...func(*Options)) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	o := options(optFns)
	urls := &queueURLs{}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		b := &batch{h: h, o: o, records: ev.Records, failed: make([]bool, len(ev.Records)), handlerFailed: make([]bool, len(ev.Records))}
		b.o.DeadlineMargin = margin(ctx, o.DeadlineMargin)
		var sources []sourceCount
		if o.Metrics != nil {
			sources = sqsSources(ev.Records)
			delivered(ctx, o.Metrics, sources)
		}
		switch {
		case !isFIFO(ev.Records):
			b.concurrently(ctx, singles(len(ev.Records)))
		case o.SkipGroupOnError:
			b.concurrently(ctx, groups(ev.Records))
		default:
			b.inOrder(ctx)
		}
		if o.Backoff != nil && o.SQS != nil {
			b.backoff(ctx, urls)
		}
		if o.Metrics != nil {
			b.acknowledged(ctx, sources)
		}
		return b.response(), nil
	}
}

// batch is one invocation's records and which of them failed.
type batch struct {
	h       patterns.Handler
	o       Options
	records []events.SQSMessage
	failed  []bool // by record index; each run writes only its own records
	// handlerFailed: the record ran (or could not be decoded) and failed.
	handlerFailed []bool
}

func (b *batch) response() events.SQSEventResponse {
	var resp events.SQSEventResponse
	for i, f := range b.failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: b.records[i].MessageId})
		}
	}
	return resp
}

// inOrder handles the records one at a time in batch order and, at the
// first failure, fails it and every record after it: AWS's guidance for
// FIFO queues with partial batch responses.
func (b *batch) inOrder(ctx context.Context) {
	b.run(ctx, allIndexes(len(b.records)))
}

// concurrently handles runs (each a sequence of record indexes handled in
// order) at most Concurrency at a time.
func (b *batch) concurrently(ctx context.Context, runs [][]int) {
	sem := make(chan struct{}, b.o.Concurrency)
	var wg sync.WaitGroup
	for _, r := range runs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b.run(ctx, r)
		}()
	}
	wg.Wait()
}

// run handles the records at idx in order; after a failure, or when too
// little time is left, it reports the rest of them failed without
// starting them.
func (b *batch) run(ctx context.Context, idx []int) {
	for k, i := range idx {
		if why := b.cannotStart(ctx); why != "" {
			b.o.Logger.Warn("courier: records not started; Lambda delivers them again", "why", why, "count", len(idx)-k, "first_message_id", b.records[i].MessageId)
			b.failAll(idx[k:])
			return
		}
		rec := b.records[i]
		if err := b.handle(ctx, rec); err != nil {
			b.o.Logger.Warn("courier: record failed; Lambda delivers it again", "message_id", rec.MessageId, "queue", rec.EventSourceARN, "err", err)
			b.failAll(idx[k : k+1])
			b.handlerFailed[i] = true
			if len(idx) > k+1 {
				b.o.Logger.Warn("courier: FIFO: records after a failure not started, to keep their order", "count", len(idx)-k-1, "after_message_id", rec.MessageId)
				b.failAll(idx[k+1:])
			}
			return
		}
	}
}

// margin returns the deadline margin of an invocation starting now.
func margin(ctx context.Context, set time.Duration) time.Duration {
	if set > 0 {
		return set
	}
	m := 2 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		m = min(m, time.Until(deadline)/10)
	}
	return m
}

func (b *batch) failAll(idx []int) {
	for _, i := range idx {
		b.failed[i] = true
	}
}

func (b *batch) cannotStart(ctx context.Context) string {
	if ctx.Err() != nil {
		return "invocation context done: " + ctx.Err().Error()
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < b.o.DeadlineMargin {
		return fmt.Sprintf("less than %v left before the invocation's deadline", b.o.DeadlineMargin)
	}
	return ""
}

func (b *batch) handle(ctx context.Context, rec events.SQSMessage) (err error) {
	if mx := b.o.Metrics; mx != nil {
		start := time.Now()
		defer func() { mx.Processed(ctx, QueueURL(rec.EventSourceARN), time.Since(start), err) }()
	}
	m, err := patterns.DecodeSQSMessage(Record(rec), b.o.Raw)
	if err != nil {
		return err
	}
	if b.o.ClaimCheck != nil {
		if err := b.o.ClaimCheck.Resolve(ctx, m); err != nil {
			return err
		}
	}
	return tracedCall(ctx, b.o.Tracer, b.h, m)
}

// tracedCall runs h through safeCall, in the Tracer's span when there is one.
func tracedCall(ctx context.Context, t patterns.Tracer, h patterns.Handler, m *patterns.Message) error {
	if t == nil {
		return safeCall(ctx, h, m)
	}
	ctx, end := t.StartProcess(ctx, m)
	err := safeCall(ctx, h, m)
	end(err)
	return err
}

// safeCall runs h, turning a panic into an error (patterns.ErrHandlerPanic):
// a panicking handler fails its record, not the invocation.
func safeCall(ctx context.Context, h patterns.Handler, m *patterns.Message) error {
	return patterns.Recover(h)(ctx, m)
}

func isFIFO(records []events.SQSMessage) bool {
	return len(records) > 0 && strings.HasSuffix(records[0].EventSourceARN, ".fifo")
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// singles gives each record a run of its own.
func singles(n int) [][]int {
	runs := make([][]int, n)
	for i := range runs {
		runs[i] = []int{i}
	}
	return runs
}

// groups gives each message group one run, its records in batch order.
func groups(records []events.SQSMessage) [][]int {
	var runs [][]int
	index := map[string]int{}
	for i, r := range records {
		g := r.Attributes["MessageGroupId"]
		k, ok := index[g]
		if !ok {
			k = len(runs)
			index[g] = k
			runs = append(runs, nil)
		}
		runs[k] = append(runs[k], i)
	}
	return runs
}

// Record converts a Lambda SQS record into the form patterns decodes.
func Record(rec events.SQSMessage) patterns.SQSRecord {
	attrs := make(map[string]patterns.Attribute, len(rec.MessageAttributes))
	for k, a := range rec.MessageAttributes {
		v := patterns.Attribute{DataType: a.DataType, Binary: a.BinaryValue}
		if a.StringValue != nil {
			v.Value = *a.StringValue
		}
		attrs[k] = v
	}
	return patterns.SQSRecord{
		MessageID:         rec.MessageId,
		ReceiptHandle:     rec.ReceiptHandle,
		Body:              rec.Body,
		Attributes:        rec.Attributes,
		MessageAttributes: attrs,
		QueueURL:          QueueURL(rec.EventSourceARN),
	}
}

// QueueURL turns a queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME) into
// its URL on AWS, or "" if arn is not a queue ARN. (An event carries only
// the ARN; on an emulator the URL names AWS, not the emulator.)
func QueueURL(arn string) string {
	a, err := patterns.ParseARN(arn, "sqs")
	if err != nil || a.Region == "" {
		return ""
	}
	domain := "amazonaws.com"
	if a.Partition == "aws-cn" {
		domain = "amazonaws.com.cn"
	}
	return fmt.Sprintf("https://sqs.%s.%s/%s/%s", a.Region, domain, a.Account, a.Name)
}

// SNSHandler returns a Lambda handler for SNS events (a function subscribed
// to a topic directly). SNS has no partial batch response: if any record
// fails the invocation returns an error, and Lambda (SNS invokes
// asynchronously) retries the whole event, twice by default, then drops it
// or sends it to the function's on-failure destination or DLQ. Handlers
// must be idempotent; chain a queue instead (topic -> queue -> SQSHandler)
// where a message must not be lost or retried on its own.
func SNSHandler(h patterns.Handler, optFns ...func(*Options)) func(context.Context, events.SNSEvent) error {
	o := options(optFns)
	return func(ctx context.Context, ev events.SNSEvent) error {
		var sources []sourceCount
		if o.Metrics != nil {
			sources = snsSources(ev.Records)
			delivered(ctx, o.Metrics, sources)
			defer done(ctx, o.Metrics, sources)
		}
		var errs []string
		for _, rec := range ev.Records {
			start := metricsStart(o.Metrics)
			m, err := snsMessage(rec.SNS)
			if err == nil && o.ClaimCheck != nil {
				err = o.ClaimCheck.Resolve(ctx, m)
			}
			if err == nil {
				err = tracedCall(ctx, o.Tracer, h, m)
			}
			if o.Metrics != nil {
				o.Metrics.Processed(ctx, rec.SNS.TopicArn, time.Since(start), err)
			}
			if err != nil {
				o.Logger.Warn("courier: SNS record failed", "message_id", rec.SNS.MessageID, "topic", rec.SNS.TopicArn, "err", err)
				errs = append(errs, rec.SNS.MessageID+": "+err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("courier: %d of %d SNS records failed: %s", len(errs), len(ev.Records), strings.Join(errs, "; "))
		}
		return nil
	}
}

// snsMessage reads an SNS event record through the same envelope parser the
// Consumer uses, so attributes and courier headers come out the same way.
func snsMessage(e events.SNSEntity) (*patterns.Message, error) {
	env, err := json.Marshal(map[string]any{
		"Type": "Notification", "MessageId": e.MessageID, "TopicArn": e.TopicArn,
		"Message": e.Message, "MessageAttributes": e.MessageAttributes,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", patterns.ErrMalformedEnvelope, err)
	}
	m, err := patterns.ParseSNSEnvelope(env)
	if err != nil {
		return nil, err
	}
	m.ID = e.MessageID
	return m, nil
}
