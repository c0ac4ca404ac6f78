// Package oteltrace traces courier's messaging with OpenTelemetry: a
// patterns.Tracer that carries W3C trace context across SQS queues and SNS
// topics and makes spans per the OpenTelemetry messaging semantic
// conventions, so that one trace runs from the producer, through the
// queue or topic, into the consumer's handler, in a long-running Consumer
// or a Lambda function alike.
//
//	tr := oteltrace.New() // the global TracerProvider and propagator, at use time
//	p, _ := patterns.NewProducer(sqsClient, url, func(o *patterns.ProducerOptions) { o.Tracer = tr })
//	c, _ := patterns.NewConsumer(sqsClient, url, func(o *patterns.ConsumerOptions) { o.Tracer = tr })
//
// The producer's span ("send <queue>" / "publish <topic>", kind PRODUCER)
// is written into each message: traceparent as a message attribute of that
// name (what other languages' OpenTelemetry SQS instrumentations read),
// tracestate packed with courier's headers. The consumer's span ("process
// <queue>", kind CONSUMER) continues that trace; a message with no
// traceparent but the AWSTraceHeader system attribute (sent by a traced
// AWS service) continues the X-Ray trace instead.
//
// The library sets no global TracerProvider: give one with
// WithTracerProvider, or set the global one in main. Trace the SDK's
// requests themselves with otelaws:
//
//	otelaws.AppendMiddlewares(&cfg.APIOptions) // go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws
//
// The SDK's requests for a Send are then children of its send span, and a
// handler's requests children of its process span (TestTraceSDKCallsWithOtelaws).
// otelaws v0.72 is marked deprecated upstream; courier does not import it,
// only its tests do, so moving to another SDK instrumentation changes no
// courier API.
package oteltrace

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-aws/courier/patterns"
)

// ScopeName is the instrumentation scope of courier's spans.
const ScopeName = "github.com/courier-aws/courier/patterns"

// Attribute keys of the messaging semantic conventions.
const (
	keySystem        = attribute.Key("messaging.system")
	keyDestination   = attribute.Key("messaging.destination.name")
	keyOperationType = attribute.Key("messaging.operation.type")
	keyOperationName = attribute.Key("messaging.operation.name")
	keyMessageID     = attribute.Key("messaging.message.id")
	keyConversation  = attribute.Key("messaging.message.conversation_id")
	keyBatchCount    = attribute.Key("messaging.batch.message_count")
	keyBodySize      = attribute.Key("messaging.message.body.size")
	keyGroupID       = attribute.Key("messaging.aws.sqs.message_group_id") // not in semconv; the name other SDKs use is not settled
)

// Tracer is a patterns.Tracer on OpenTelemetry.
type Tracer struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
}

var _ patterns.Tracer = (*Tracer)(nil)

// Option configures a Tracer.
type Option func(*Tracer)

// WithTracerProvider sets the provider spans come from; default the
// global one (otel.GetTracerProvider) at the time of each span.
func WithTracerProvider(p trace.TracerProvider) Option { return func(t *Tracer) { t.provider = p } }

// WithPropagator sets how trace context is written into and read from
// messages; default the global propagator, or W3C trace context when the
// global one is the no-op default.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(t *Tracer) { t.propagator = p }
}

// New returns a Tracer.
func New(opts ...Option) *Tracer {
	t := &Tracer{}
	for _, o := range opts {
		o(t)
	}
	return t
}

func (t *Tracer) tracer() trace.Tracer {
	p := t.provider
	if p == nil {
		p = otel.GetTracerProvider()
	}
	return p.Tracer(ScopeName)
}

func (t *Tracer) prop() propagation.TextMapPropagator {
	if t.propagator != nil {
		return t.propagator
	}
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return propagation.TraceContext{}
}

// destination names a queue URL or topic ARN: its system and short name.
func destination(dest string) (system, name string) {
	if strings.HasPrefix(dest, "arn:") {
		system = "aws_sns"
		if strings.Contains(dest, ":sqs:") {
			system = "aws_sqs"
		}
		return system, dest[strings.LastIndex(dest, ":")+1:]
	}
	return "aws_sqs", dest[strings.LastIndex(dest, "/")+1:]
}

// StartSend implements patterns.Tracer.
func (t *Tracer) StartSend(ctx context.Context, dest string, msgs []*patterns.Message) (context.Context, func(error)) {
	system, name := destination(dest)
	op := "send"
	if system == "aws_sns" {
		op = "publish"
	}
	attrs := []attribute.KeyValue{
		keySystem.String(system), keyDestination.String(name),
		keyOperationType.String("send"), keyOperationName.String(op),
	}
	if len(msgs) != 1 {
		attrs = append(attrs, keyBatchCount.Int(len(msgs)))
	} else if m := msgs[0]; m != nil && m.CorrelationID != "" {
		attrs = append(attrs, keyConversation.String(m.CorrelationID))
	}
	ctx, span := t.tracer().Start(ctx, op+" "+name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	p := t.prop()
	for _, m := range msgs {
		if m != nil {
			p.Inject(ctx, carrier{m})
		}
	}
	return ctx, func(err error) {
		if len(msgs) == 1 && msgs[0] != nil && msgs[0].ID != "" {
			span.SetAttributes(keyMessageID.String(msgs[0].ID))
		}
		end(span, err)
	}
}

// StartProcess implements patterns.Tracer.
func (t *Tracer) StartProcess(ctx context.Context, m *patterns.Message) (context.Context, func(error)) {
	parent := t.prop().Extract(ctx, carrier{m})
	if !trace.SpanContextFromContext(parent).IsValid() && m.AWSTraceHeader != "" {
		if sc, ok := parseXRay(m.AWSTraceHeader); ok {
			parent = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	system, name := "aws_sqs", ""
	if m.QueueURL != "" {
		_, name = destination(m.QueueURL)
	}
	attrs := []attribute.KeyValue{
		keySystem.String(system), keyDestination.String(name),
		keyOperationType.String("process"), keyOperationName.String("process"),
		keyMessageID.String(m.ID), keyBodySize.Int(len(m.Body)),
	}
	if m.CorrelationID != "" {
		attrs = append(attrs, keyConversation.String(m.CorrelationID))
	}
	if m.GroupID != "" {
		attrs = append(attrs, keyGroupID.String(m.GroupID))
	}
	ctx, span := t.tracer().Start(parent, "process "+name, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	return ctx, func(err error) { end(span, err) }
}

func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// carrier reads and writes trace context in a Message: traceparent in its
// own attribute, tracestate with courier's headers.
type carrier struct{ m *patterns.Message }

func (c carrier) Get(key string) string {
	switch strings.ToLower(key) {
	case "traceparent":
		return c.m.TraceParent
	case "tracestate":
		return c.m.TraceState()
	}
	return ""
}

func (c carrier) Set(key, value string) {
	switch strings.ToLower(key) {
	case "traceparent":
		c.m.TraceParent = value
	case "tracestate":
		c.m.SetTraceState(value)
	}
}

func (c carrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// parseXRay reads an X-Ray trace header
// (Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1)
// as a remote span context: the trace id is the root's two hex parts.
func parseXRay(h string) (trace.SpanContext, bool) {
	var root, parent string
	sampled := false
	for _, part := range strings.Split(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Root":
			root = v
		case "Parent":
			parent = v
		case "Sampled":
			sampled = v == "1"
		}
	}
	fields := strings.Split(root, "-")
	if len(fields) != 3 || fields[0] != "1" {
		return trace.SpanContext{}, false
	}
	tid, err := trace.TraceIDFromHex(fields[1] + fields[2])
	if err != nil {
		return trace.SpanContext{}, false
	}
	sid, err := trace.SpanIDFromHex(parent)
	if err != nil {
		return trace.SpanContext{}, false
	}
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, Remote: true}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.NewSpanContext(cfg), true
}
