package oteltrace_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/oteltrace"
)

// With the SDK instrumented by otelaws, the SQS requests courier makes
// for a Send are children of its send span, and the requests a handler
// makes are children of its process span: one trace holds both courier's
// messaging spans and the SDK's client spans.
func TestTraceSDKCallsWithOtelaws(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		tr := oteltrace.New(oteltrace.WithTracerProvider(tp))

		cfg := b.Config()
		otelaws.AppendMiddlewares(&cfg.APIOptions, otelaws.WithTracerProvider(tp))
		client := sqs.NewFromConfig(cfg)

		in, out := b.CreateQueue(t, backend.QueueOptions{}), b.CreateQueue(t, backend.QueueOptions{})
		p, err := patterns.NewProducer(client, in.URL, func(o *patterns.ProducerOptions) { o.Tracer = tr })
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Send(context.Background(), &patterns.Message{Body: []byte("a")}, &patterns.Message{Body: []byte("b")}); err != nil {
			t.Fatal(err)
		}
		c, err := patterns.NewConsumer(client, in.URL, func(o *patterns.ConsumerOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet()
			o.Tracer = tr
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		handled := make(chan struct{}, 2)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			_ = c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				// The handler's own SDK call: a forward to another queue.
				_, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &out.URL, MessageBody: aws.String(string(m.Body))})
				handled <- struct{}{}
				return err
			})
		}()
		<-handled
		<-handled
		cancel()
		<-stopped // the process spans end after their handlers return

		byID := map[trace.SpanID]tracetest.SpanStub{}
		for _, s := range exp.GetSpans() {
			byID[s.SpanContext.SpanID()] = s
		}
		sends := spansNamed(exp, "send "+queueName(in.URL))
		if len(sends) != 1 {
			t.Fatalf("%d send spans", len(sends))
		}
		var batchCalls, forwards int
		for _, s := range exp.GetSpans() {
			if !strings.HasPrefix(s.Name, "SQS.") || s.SpanKind != trace.SpanKindClient {
				continue
			}
			parent, ok := byID[s.Parent.SpanID()]
			switch s.Name {
			case "SQS.SendMessageBatch":
				batchCalls++
				if !ok || parent.SpanContext.SpanID() != sends[0].SpanContext.SpanID() {
					t.Errorf("SendMessageBatch span's parent %q, want the send span", parent.Name)
				}
			case "SQS.SendMessage":
				forwards++
				if !ok || parent.Name != "process "+queueName(in.URL) || parent.SpanContext.TraceID() != sends[0].SpanContext.TraceID() {
					t.Errorf("the handler's SendMessage span's parent %q, want the process span in the send's trace", parent.Name)
				}
			}
		}
		if batchCalls != 1 || forwards != 2 {
			t.Errorf("SDK spans: %d SendMessageBatch (want 1), %d SendMessage (want 2)", batchCalls, forwards)
		}
	})
}
