// Package otelmetric measures courier's messaging with OpenTelemetry's
// metric API: a patterns.Metrics whose instruments follow the
// OpenTelemetry messaging semantic conventions where they name one, and
// are courier's own, under courier., where they do not.
//
//	mx, _ := otelmetric.New() // the global MeterProvider; or WithMeterProvider
//	sqsClient := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, mx.Install) })
//	p, _ := patterns.NewProducer(sqsClient, url, func(o *patterns.ProducerOptions) { o.Metrics = mx })
//	c, _ := patterns.NewConsumer(sqsClient, url, func(o *patterns.ConsumerOptions) { o.Metrics = mx })
//
// Instruments (attributes: messaging.system aws_sqs or aws_sns,
// messaging.destination.name the queue's or topic's name, and error.type
// on failures):
//
//	messaging.client.sent.messages      counter {message}  messages a Send or Publish gave SQS or SNS (messaging.operation.name send or publish); those not sent with error.type
//	messaging.client.consumed.messages  counter {message}  messages received (receive) or, in Lambda, delivered to the adapter (process)
//	messaging.client.operation.duration histogram s        each Send, Publish and ReceiveMessage (messaging.operation.name, messaging.operation.type)
//	messaging.process.duration          histogram s        each message's handling (messaging.operation.name process)
//	courier.messages.failed             counter {message}  messages whose handling failed (error.type): they will be delivered again
//	courier.messages.deleted            counter {message}  handled messages deleted (acknowledged); deletes that failed with error.type
//	courier.messages.in_flight          updowncounter {message}  messages received and not finished
//	courier.client.requests             counter {request}  API request attempts (rpc.system aws-api, rpc.service, rpc.method; error.type), with Install
//	courier.client.billed_requests      counter {request}  the same, as AWS bills them (one per started 64 KiB)
//	courier.requester.calls             counter {call}     Requester.Request calls, by request queue; failures with error.type (timeout, remote_error, ...)
//	courier.requester.duration          histogram s        their duration, request to reply
//	courier.requester.timeouts          counter {call}     calls that got no reply in time
//	courier.requester.late_replies      counter {message}  replies nobody waited for (late or duplicate), by reply queue
//	courier.scatter_gather.completions  counter {aggregate} aggregates completed, by courier.completion.reason (all, quorum, deadline, predicate; timeout and cancelled: Gather stopped waiting), response queue
//	courier.scatter_gather.duration     histogram s        from the scatter to the completion
//
// Reply queues that a Requester creates have random names; to keep the
// number of series bounded, a queue whose name starts with one of the
// temporary prefixes (default patterns.DefaultReplyQueuePrefix; see
// WithTemporaryQueuePrefixes) carries messaging.destination.temporary
// true and messaging.destination.template ("courier-reply-*") instead of
// its name.
//
// error.type is the AWS error code when there is one (of the request, or
// of the first entry a batch refused for itself), a short name for courier's own
// errors (timeout, canceled, message_too_large, remote_error, ...), the Go
// type of any other error that has a type of its own, else _OTHER.
//
// The library sets no global MeterProvider: give one with
// WithMeterProvider, or set the global one in main (instruments made from
// the global provider before it is set follow it once it is).
package otelmetric

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/courier-aws/courier/patterns"
)

// ScopeName is the instrumentation scope of courier's instruments.
const ScopeName = "github.com/courier-aws/courier/patterns"

// Names of the instruments.
const (
	SentMessages       = "messaging.client.sent.messages"
	ConsumedMessages   = "messaging.client.consumed.messages"
	OperationDuration  = "messaging.client.operation.duration"
	ProcessDuration    = "messaging.process.duration"
	FailedMessages     = "courier.messages.failed"
	DeletedMessages    = "courier.messages.deleted"
	InFlightMessages   = "courier.messages.in_flight"
	APIRequests        = "courier.client.requests"
	BilledRequests     = "courier.client.billed_requests"
	RequesterCalls     = "courier.requester.calls"
	RequesterDuration  = "courier.requester.duration"
	RequesterTimeouts  = "courier.requester.timeouts"
	LateReplies        = "courier.requester.late_replies"
	Completions        = "courier.scatter_gather.completions"
	CompletionDuration = "courier.scatter_gather.duration"
)

// Attribute keys.
const (
	keySystem        = attribute.Key("messaging.system")
	keyDestination   = attribute.Key("messaging.destination.name")
	keyTemplate      = attribute.Key("messaging.destination.template")
	keyTemporary     = attribute.Key("messaging.destination.temporary")
	keyOperationName = attribute.Key("messaging.operation.name")
	keyOperationType = attribute.Key("messaging.operation.type")
	keyErrorType     = attribute.Key("error.type")
	keyRPCSystem     = attribute.Key("rpc.system")
	keyRPCService    = attribute.Key("rpc.service")
	keyRPCMethod     = attribute.Key("rpc.method")
	keyReason        = attribute.Key("courier.completion.reason")
)

// Bucket boundaries, in seconds: the messaging conventions' for
// operations and processing, longer ones for request-response and
// scatter-gather, which wait for other services.
var (
	operationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	waitBuckets      = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900}
)

// Metrics is a patterns.Metrics on OpenTelemetry. It is safe for
// concurrent use; give one to every Producer, Publisher, Consumer,
// Requester and adapter of a process.
type Metrics struct {
	temporary []string

	sent, consumed, failed, deleted, apiRequests, billed  metric.Int64Counter
	requesterCalls, timeouts, lateReplies, completions    metric.Int64Counter
	inFlight                                              metric.Int64UpDownCounter
	opDuration, processDuration, callDuration, sgDuration metric.Float64Histogram

	mu    sync.RWMutex
	attrs map[attrKey]metric.MeasurementOption
}

var _ patterns.Metrics = (*Metrics)(nil)

type config struct {
	provider  metric.MeterProvider
	temporary []string
}

// Option configures a Metrics.
type Option func(*config)

// WithMeterProvider sets the provider the instruments come from; default
// the global one (otel.GetMeterProvider).
func WithMeterProvider(p metric.MeterProvider) Option { return func(c *config) { c.provider = p } }

// WithTemporaryQueuePrefixes sets the name prefixes of temporary queues,
// which are measured by their prefix rather than their name; default
// patterns.DefaultReplyQueuePrefix. Add the ReplyQueuePrefix of
// Requesters that set one.
func WithTemporaryQueuePrefixes(prefixes ...string) Option {
	return func(c *config) { c.temporary = prefixes }
}

// New returns a Metrics with its instruments made.
func New(opts ...Option) (*Metrics, error) {
	c := config{temporary: []string{patterns.DefaultReplyQueuePrefix}}
	for _, o := range opts {
		o(&c)
	}
	if c.provider == nil {
		c.provider = otel.GetMeterProvider()
	}
	meter := c.provider.Meter(ScopeName)
	m := &Metrics{temporary: c.temporary, attrs: map[attrKey]metric.MeasurementOption{}}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		i, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return i
	}
	histogram := func(name, desc string, buckets []float64) metric.Float64Histogram {
		i, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return i
	}
	m.sent = counter(SentMessages, "{message}", "Number of messages producer attempted to send to the broker.")
	m.consumed = counter(ConsumedMessages, "{message}", "Number of messages that were delivered to the application.")
	m.opDuration = histogram(OperationDuration, "Duration of messaging operation initiated by a producer or consumer client.", operationBuckets)
	m.processDuration = histogram(ProcessDuration, "Duration of processing operation.", operationBuckets)
	m.failed = counter(FailedMessages, "{message}", "Messages whose handling failed; they will be delivered again.")
	m.deleted = counter(DeletedMessages, "{message}", "Handled messages deleted from their queue (acknowledged).")
	inFlight, err := meter.Int64UpDownCounter(InFlightMessages, metric.WithUnit("{message}"), metric.WithDescription("Messages received and not finished yet."))
	errs = append(errs, err)
	m.inFlight = inFlight
	m.apiRequests = counter(APIRequests, "{request}", "API request attempts, retries included.")
	m.billed = counter(BilledRequests, "{request}", "API request attempts as AWS bills them: one per started 64 KiB of payload.")
	m.requesterCalls = counter(RequesterCalls, "{call}", "Request-response calls.")
	m.callDuration = histogram(RequesterDuration, "Duration of request-response calls, request to reply.", waitBuckets)
	m.timeouts = counter(RequesterTimeouts, "{call}", "Request-response calls that got no reply in time.")
	m.lateReplies = counter(LateReplies, "{message}", "Replies nobody waited for (late or duplicate).")
	m.completions = counter(Completions, "{aggregate}", "Scatter-gather aggregates completed, by reason.")
	m.sgDuration = histogram(CompletionDuration, "Duration of scatter-gathers, scatter to completion.", waitBuckets)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("otelmetric: %w", err)
	}
	return m, nil
}

// Install adds the API request counters to an SDK client's middleware
// stack: append it to the client's APIOptions (patterns.MetricsMiddleware).
func (m *Metrics) Install(stack *middleware.Stack) error {
	return patterns.MetricsMiddleware(m)(stack)
}

// attrKey identifies an attribute set: a destination (or, rpc, an API
// operation) with an operation and an outcome.
type attrKey struct {
	rpc             bool
	dest            string // queue URL or topic ARN; rpc: the service
	op, opType      string // messaging operation; rpc: the method
	reason, errType string
}

// opt returns the measurement option of k's attributes, made once.
func (m *Metrics) opt(k attrKey) metric.MeasurementOption {
	m.mu.RLock()
	o, ok := m.attrs[k]
	m.mu.RUnlock()
	if ok {
		return o
	}
	var attrs []attribute.KeyValue
	if k.rpc {
		attrs = append(attrs, keyRPCSystem.String("aws-api"), keyRPCService.String(k.dest), keyRPCMethod.String(k.op))
	} else {
		attrs = m.destination(k.dest)
		if k.op != "" {
			attrs = append(attrs, keyOperationName.String(k.op))
		}
		if k.opType != "" {
			attrs = append(attrs, keyOperationType.String(k.opType))
		}
	}
	if k.reason != "" {
		attrs = append(attrs, keyReason.String(k.reason))
	}
	if k.errType != "" {
		attrs = append(attrs, keyErrorType.String(k.errType))
	}
	o = metric.WithAttributeSet(attribute.NewSet(attrs...))
	m.mu.Lock()
	m.attrs[k] = o
	m.mu.Unlock()
	return o
}

// destination returns the attributes of a queue URL or topic ARN: its
// system and name, or, for a temporary queue, its template.
func (m *Metrics) destination(dest string) []attribute.KeyValue {
	system, name := "aws_sqs", dest[strings.LastIndex(dest, "/")+1:]
	if strings.HasPrefix(dest, "arn:") {
		if !strings.Contains(dest, ":sqs:") {
			system = "aws_sns"
		}
		name = dest[strings.LastIndex(dest, ":")+1:]
	}
	attrs := []attribute.KeyValue{keySystem.String(system)}
	if name == "" {
		return attrs
	}
	if system == "aws_sqs" {
		for _, p := range m.temporary {
			if p != "" && strings.HasPrefix(name, p) {
				return append(attrs, keyTemplate.String(p+"*"), keyTemporary.Bool(true))
			}
		}
	}
	return append(attrs, keyDestination.String(name))
}

// sendOp names a Send (SQS) or Publish (SNS) by its destination.
func sendOp(dest string) string {
	if strings.HasPrefix(dest, "arn:") && !strings.Contains(dest, ":sqs:") {
		return "publish"
	}
	return "send"
}

// Sent implements patterns.Metrics.
func (m *Metrics) Sent(ctx context.Context, dest string, sent, failed int, d time.Duration, err error) {
	op := sendOp(dest)
	et := errorType(err)
	if sent > 0 {
		m.sent.Add(ctx, int64(sent), m.opt(attrKey{dest: dest, op: op}))
	}
	if failed > 0 {
		m.sent.Add(ctx, int64(failed), m.opt(attrKey{dest: dest, op: op, errType: et}))
	}
	m.opDuration.Record(ctx, d.Seconds(), m.opt(attrKey{dest: dest, op: op, opType: "send", errType: et}))
}

// Received implements patterns.Metrics.
func (m *Metrics) Received(ctx context.Context, queue string, n int, d time.Duration, err error) {
	if n > 0 {
		m.consumed.Add(ctx, int64(n), m.opt(attrKey{dest: queue, op: "receive"}))
	}
	m.opDuration.Record(ctx, d.Seconds(), m.opt(attrKey{dest: queue, op: "receive", opType: "receive", errType: errorType(err)}))
}

// Delivered implements patterns.Metrics.
func (m *Metrics) Delivered(ctx context.Context, source string, n int) {
	if n > 0 {
		m.consumed.Add(ctx, int64(n), m.opt(attrKey{dest: source, op: "process"}))
	}
}

// Processed implements patterns.Metrics.
func (m *Metrics) Processed(ctx context.Context, source string, d time.Duration, err error) {
	et := errorType(err)
	m.processDuration.Record(ctx, d.Seconds(), m.opt(attrKey{dest: source, op: "process", errType: et}))
	if err != nil {
		m.failed.Add(ctx, 1, m.opt(attrKey{dest: source, errType: et}))
	}
}

// Deleted implements patterns.Metrics.
func (m *Metrics) Deleted(ctx context.Context, queue string, deleted, failed int, err error) {
	if deleted > 0 {
		m.deleted.Add(ctx, int64(deleted), m.opt(attrKey{dest: queue}))
	}
	if failed > 0 {
		m.deleted.Add(ctx, int64(failed), m.opt(attrKey{dest: queue, errType: errorType(err)}))
	}
}

// InFlight implements patterns.Metrics.
func (m *Metrics) InFlight(ctx context.Context, queue string, delta int) {
	if delta != 0 {
		m.inFlight.Add(ctx, int64(delta), m.opt(attrKey{dest: queue}))
	}
}

// APIRequest implements patterns.Metrics.
func (m *Metrics) APIRequest(ctx context.Context, service, operation string, billed int64, err error) {
	m.apiRequests.Add(ctx, 1, m.opt(attrKey{rpc: true, dest: service, op: operation, errType: errorType(err)}))
	m.billed.Add(ctx, billed, m.opt(attrKey{rpc: true, dest: service, op: operation}))
}

// Requested implements patterns.Metrics.
func (m *Metrics) Requested(ctx context.Context, queue string, d time.Duration, err error) {
	o := m.opt(attrKey{dest: queue, errType: errorType(err)})
	m.requesterCalls.Add(ctx, 1, o)
	m.callDuration.Record(ctx, d.Seconds(), o)
	if errors.Is(err, patterns.ErrTimeout) {
		m.timeouts.Add(ctx, 1, m.opt(attrKey{dest: queue}))
	}
}

// LateReply implements patterns.Metrics.
func (m *Metrics) LateReply(ctx context.Context, replyQueue string) {
	m.lateReplies.Add(ctx, 1, m.opt(attrKey{dest: replyQueue}))
}

// Completed implements patterns.Metrics.
func (m *Metrics) Completed(ctx context.Context, responseQueue string, reason patterns.CompletionReason, d time.Duration) {
	o := m.opt(attrKey{dest: responseQueue, reason: string(reason)})
	m.completions.Add(ctx, 1, o)
	m.sgDuration.Record(ctx, d.Seconds(), o)
}

// sentinels name courier's errors (and the context's) for error.type,
// most specific first.
var sentinels = []struct {
	err  error
	name string
}{
	{patterns.ErrTimeout, "timeout"},
	{context.DeadlineExceeded, "timeout"},
	{context.Canceled, "canceled"},
	{patterns.ErrRequesterClosed, "requester_closed"},
	{patterns.ErrLeaseLost, "lease_lost"},
	{patterns.ErrGroupStopped, "group_stopped"},
	{patterns.ErrSendAborted, "send_aborted"},
	{patterns.ErrMessageTooLarge, "message_too_large"},
	{patterns.ErrTooManyAttributes, "too_many_attributes"},
	{patterns.ErrInvalidGroupID, "invalid_group_id"},
	{patterns.ErrInvalidMessage, "invalid_message"},
	{patterns.ErrMalformedEnvelope, "malformed_envelope"},
	{patterns.ErrMalformedMessage, "malformed_message"},
	{patterns.ErrUnknownReturnAddress, "unknown_return_address"},
	{patterns.ErrNotFound, "not_found"},
	{patterns.ErrThrottled, "throttled"},
	{patterns.ErrInvalidConfig, "invalid_config"},
}

// errorType is the error.type of err: "" for nil; see the package doc.
func errorType(err error) string {
	if err == nil {
		return ""
	}
	var se *patterns.SendError
	if errors.As(err, &se) && len(se.Failed) > 0 {
		// The first entry that failed for itself, not because another did.
		f := se.Failed[0]
		for _, g := range se.Failed {
			if !errors.Is(g.Err, patterns.ErrSendAborted) && !errors.Is(g.Err, patterns.ErrGroupStopped) {
				f = g
				break
			}
		}
		if f.Code != "" {
			return f.Code
		}
		if f.Err != nil {
			err = f.Err
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode()
	}
	var re *patterns.RemoteError
	if errors.As(err, &re) {
		return "remote_error"
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch t := fmt.Sprintf("%T", e); t {
		case "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError":
		default:
			return t
		}
	}
	return "_OTHER"
}
