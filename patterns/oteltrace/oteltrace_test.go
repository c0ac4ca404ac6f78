package oteltrace_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/oteltrace"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTracer returns a Tracer whose spans land in an in-memory exporter.
func newTracer(t *testing.T) (*oteltrace.Tracer, *tracetest.InMemoryExporter, trace.Tracer) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return oteltrace.New(oteltrace.WithTracerProvider(tp)), exp, tp.Tracer("test")
}

func spansNamed(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, k string) attribute.Value {
	for _, a := range s.Attributes {
		if string(a.Key) == k {
			return a.Value
		}
	}
	return attribute.Value{}
}

// consume runs a Consumer with the tracer until n messages were handled;
// each handler checks that it runs inside a span.
func consume(t *testing.T, b *backend.Backend, url string, tr patterns.Tracer, n int) {
	t.Helper()
	c, err := patterns.NewConsumer(b.SQS(), url, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet()
		o.Tracer = tr
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var mu sync.Mutex
	handled := 0
	go func() {
		done <- c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
			if !trace.SpanContextFromContext(ctx).IsValid() {
				t.Error("the handler runs outside a span")
			}
			mu.Lock()
			handled++
			if handled == n {
				cancel()
			}
			mu.Unlock()
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		cancel()
		t.Fatalf("%d of %d messages handled", handled, n)
	}
}

// checkChild: child continues parent's trace, as its child, with kind
// and the messaging attributes.
func checkChild(t *testing.T, parent, child tracetest.SpanStub, system, dest string) {
	t.Helper()
	if child.SpanContext.TraceID() != parent.SpanContext.TraceID() || child.Parent.SpanID() != parent.SpanContext.SpanID() {
		t.Errorf("%s is not a child of %s (trace %s vs %s)", child.Name, parent.Name, child.SpanContext.TraceID(), parent.SpanContext.TraceID())
	}
	if child.SpanKind != trace.SpanKindConsumer || parent.SpanKind != trace.SpanKindProducer {
		t.Errorf("kinds %v -> %v, want producer -> consumer", parent.SpanKind, child.SpanKind)
	}
	if attr(child, "messaging.system").AsString() != system {
		t.Errorf("%s: messaging.system %q, want %q", child.Name, attr(child, "messaging.system").AsString(), system)
	}
	if attr(parent, "messaging.operation.type").AsString() != "send" {
		t.Errorf("%s attributes %v", parent.Name, parent.Attributes)
	}
	if attr(child, "messaging.destination.name").AsString() != dest || attr(child, "messaging.operation.type").AsString() != "process" || attr(child, "messaging.message.id").AsString() == "" {
		t.Errorf("%s attributes %v", child.Name, child.Attributes)
	}
}

// One trace: the caller's span, the producer's send span, the consumer's
// process span, each the child of the one before.
func TestTraceThroughQueue(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		tr, exp, test := newTracer(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		p, err := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) { o.Tracer = tr })
		if err != nil {
			t.Fatal(err)
		}
		ctx, root := test.Start(context.Background(), "checkout")
		m := &patterns.Message{Body: []byte("order 1"), CorrelationID: "order-1"}
		if err := p.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		root.End()
		if m.TraceParent == "" {
			t.Fatal("no traceparent written into the message")
		}
		consume(t, b, q.URL, tr, 1)

		sends, procs, roots := spansNamed(exp, "send "+queueName(q.URL)), spansNamed(exp, "process "+queueName(q.URL)), spansNamed(exp, "checkout")
		if len(sends) != 1 || len(procs) != 1 || len(roots) != 1 {
			t.Fatalf("spans %d send, %d process, %d root", len(sends), len(procs), len(roots))
		}
		if sends[0].Parent.SpanID() != roots[0].SpanContext.SpanID() {
			t.Error("the send span is not the caller's child")
		}
		checkChild(t, sends[0], procs[0], "aws_sqs", queueName(q.URL))
		if attr(procs[0], "messaging.message.conversation_id").AsString() != "order-1" || attr(sends[0], "messaging.message.id").AsString() != m.ID {
			t.Errorf("send %v / process %v attributes", sends[0].Attributes, procs[0].Attributes)
		}
	})
}

func queueName(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			return url[i+1:]
		}
	}
	return url
}

// Producer, SNS, SQS, consumer: the publish span is the parent of the
// process span of each subscribed queue, raw and enveloped alike.
func TestTraceThroughTopic(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		tr, exp, _ := newTracer(t)
		ctx := context.Background()
		topic := b.CreateTopic(t, false, nil)
		var queues []string
		for _, raw := range []bool{true, false} {
			q := b.CreateQueue(t, backend.QueueOptions{})
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = raw }); err != nil {
				t.Fatal(err)
			}
			queues = append(queues, q.URL)
		}
		pub, err := patterns.NewPublisher(b.SNS(), topic, func(o *patterns.PublisherOptions) { o.Tracer = tr })
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(ctx, &patterns.Message{Body: []byte("price changed")}); err != nil {
			t.Fatal(err)
		}
		for _, q := range queues {
			consume(t, b, q, tr, 1)
		}
		topicName := queueNameARN(topic)
		pubs := spansNamed(exp, "publish "+topicName)
		if len(pubs) != 1 || attr(pubs[0], "messaging.system").AsString() != "aws_sns" {
			t.Fatalf("%d publish spans", len(pubs))
		}
		for _, q := range queues {
			procs := spansNamed(exp, "process "+queueName(q))
			if len(procs) != 1 {
				t.Fatalf("%s: %d process spans", q, len(procs))
			}
			checkChild(t, pubs[0], procs[0], "aws_sqs", queueName(q))
		}
	})
}

func queueNameARN(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == ':' {
			return arn[i+1:]
		}
	}
	return arn
}

// Through the Lambda adapter under the local event-source runner: the
// record's handler runs in a process span, child of the send span.
func TestTraceThroughLambda(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		tr, exp, _ := newTracer(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		p, _ := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) { o.Tracer = tr })
		if err := p.Send(context.Background(), &patterns.Message{Body: []byte("resize image 4")}); err != nil {
			t.Fatal(err)
		}
		h := adapter.SQSHandler(func(ctx context.Context, m *patterns.Message) error {
			if !trace.SpanContextFromContext(ctx).IsValid() {
				t.Error("the handler runs outside a span")
			}
			return nil
		}, func(o *adapter.Options) { o.Tracer = tr; o.Logger = quiet() })
		r, err := localrunner.New(b.SQS(), localrunner.Config{QueueURL: q.URL, ReportBatchItemFailures: true, FunctionTimeout: 5 * time.Second, WaitTime: time.Second, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, h) }()
		for deadline := time.Now().Add(time.Minute); r.Stats().Deleted < 1 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		<-done
		sends, procs := spansNamed(exp, "send "+queueName(q.URL)), spansNamed(exp, "process "+queueName(q.URL))
		if len(sends) != 1 || len(procs) != 1 {
			t.Fatalf("%d send, %d process spans", len(sends), len(procs))
		}
		checkChild(t, sends[0], procs[0], "aws_sqs", queueName(q.URL))
	})
}

// A message with no traceparent but an X-Ray AWSTraceHeader continues the
// X-Ray trace; a failed handler marks its span as an error.
func TestTraceFromAWSTraceHeader(t *testing.T) {
	tr, exp, _ := newTracer(t)
	m := &patterns.Message{ID: "m-1", QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
		AWSTraceHeader: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}
	_, end := tr.StartProcess(context.Background(), m)
	end(errors.New("boom"))
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.SpanContext.TraceID().String() != "5759e988bd862e3fe1be46a994272793" || s.Parent.SpanID().String() != "53995c3f42cd8ad8" {
		t.Errorf("trace %s parent %s: the X-Ray trace is not continued", s.SpanContext.TraceID(), s.Parent.SpanID())
	}
	if s.Name != "process jobs" || s.Status.Code.String() != "Error" {
		t.Errorf("span %q status %v", s.Name, s.Status)
	}
}

// Request-response: the caller's span, the Requester's send span, the
// Responder's process span and its reply's send span, one trace, each the
// child of the one before.
func TestTraceRequestResponse(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		tr, exp, test := newTracer(t)
		requests := b.CreateQueue(t, backend.QueueOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		responder, err := patterns.NewResponder(b.SQS(), requests.URL, func(o *patterns.ResponderOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet()
			o.Tracer = tr
		})
		if err != nil {
			t.Fatal(err)
		}
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			_ = responder.Run(ctx, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
				return &patterns.Message{Body: []byte("pong")}, nil
			})
		}()
		requester, err := patterns.NewRequester(b.SQS(), func(o *patterns.RequesterOptions) {
			o.Tracer = tr
			o.Logger = quiet()
			o.ReplyQueuePrefix = "courier-reply-trace-"
		})
		if err != nil {
			t.Fatal(err)
		}
		defer requester.Close(context.Background())

		rctx, root := test.Start(ctx, "checkout")
		reqCtx, stop := context.WithTimeout(rctx, 20*time.Second)
		defer stop()
		reply, err := requester.Request(reqCtx, requests.URL, &patterns.Message{Body: []byte("ping")})
		root.End()
		if err != nil {
			t.Fatal(err)
		}
		if string(reply.Body) != "pong" {
			t.Fatalf("reply %q", reply.Body)
		}
		cancel()
		<-stopped // the process span ends after the reply is sent

		sends, procs, roots := spansNamed(exp, "send "+queueName(requests.URL)), spansNamed(exp, "process "+queueName(requests.URL)), spansNamed(exp, "checkout")
		if len(sends) != 1 || len(procs) != 1 || len(roots) != 1 {
			t.Fatalf("spans: %d request send, %d process, %d root", len(sends), len(procs), len(roots))
		}
		if sends[0].Parent.SpanID() != roots[0].SpanContext.SpanID() {
			t.Error("the request's send span is not the caller's child")
		}
		checkChild(t, sends[0], procs[0], "aws_sqs", queueName(requests.URL))
		var replySend *tracetest.SpanStub
		for _, s := range exp.GetSpans() {
			if s.SpanKind == trace.SpanKindProducer && s.Parent.SpanID() == procs[0].SpanContext.SpanID() {
				replySend = &s
			}
		}
		if replySend == nil {
			t.Fatalf("no send span under the process span; spans: %v", spanNames(exp))
		}
		if replySend.SpanContext.TraceID() != roots[0].SpanContext.TraceID() || !strings.HasPrefix(replySend.Name, "send courier-reply-trace-") {
			t.Errorf("reply send span %q in trace %s, want send to the reply queue in the caller's trace", replySend.Name, replySend.SpanContext.TraceID())
		}
		if got := attr(*replySend, "messaging.message.conversation_id").AsString(); got != reply.CorrelationID {
			t.Errorf("reply send span's conversation id %q, want the correlation id %q", got, reply.CorrelationID)
		}
	})
}

func spanNames(exp *tracetest.InMemoryExporter) []string {
	var out []string
	for _, s := range exp.GetSpans() {
		out = append(out, s.Name)
	}
	return out
}
