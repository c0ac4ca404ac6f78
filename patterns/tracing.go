package patterns

import "context"

// Tracer instruments what courier sends and handles, so that one trace
// follows a message across queues and topics. patterns/oteltrace
// implements it with OpenTelemetry (W3C trace context in the message,
// spans per the messaging semantic conventions); patterns itself depends on
// no tracing library. Set it in ProducerOptions.Tracer,
// PublisherOptions.Tracer, ConsumerOptions.Tracer and the Lambda adapter's
// Options.Tracer. Nil: no tracing, no cost.
type Tracer interface {
	// StartSend starts the span of one Send or Publish call to dest (a
	// queue URL or topic ARN) and writes its trace context into each
	// message (Message.TraceParent, Message.TraceState). end records the
	// call's outcome.
	StartSend(ctx context.Context, dest string, msgs []*Message) (_ context.Context, end func(error))
	// StartProcess starts the span of handling m, continuing the trace m
	// carries (its TraceParent, else its AWSTraceHeader); the handler runs
	// with the returned context. end records the handler's outcome.
	StartProcess(ctx context.Context, m *Message) (_ context.Context, end func(error))
}

// traceStateHeader carries the W3C tracestate, packed with courier's
// other headers (traceparent has an attribute of its own, under its W3C
// name, for other tracers to read).
const traceStateHeader = "tracestate"

// TraceState is the W3C tracestate that goes with TraceParent.
func (m *Message) TraceState() string { return m.Header(traceStateHeader) }

// SetTraceState sets the W3C tracestate that goes with TraceParent.
func (m *Message) SetTraceState(s string) {
	if s == "" {
		delete(m.Headers, traceStateHeader)
		return
	}
	m.SetHeader(traceStateHeader, s)
}
