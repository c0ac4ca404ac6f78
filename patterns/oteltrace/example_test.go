package oteltrace_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/oteltrace"
)

// One trace from the producer through the queue into the consumer's
// handler. In your code the TracerProvider exports to your collector, and
// otelaws.AppendMiddlewares(&cfg.APIOptions) traces the SDK's requests too.
func Example() {
	b, ok := backend.First()
	if !ok {
		fmt.Println("no backend")
		return
	}
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer tp.Shutdown(context.Background())
	tracer := oteltrace.New(oteltrace.WithTracerProvider(tp))

	sqsClient := b.SQS()
	out, _ := sqsClient.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: ptr(fmt.Sprint("example-traced-", time.Now().UnixNano()))})
	queueURL := *out.QueueUrl
	defer sqsClient.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: &queueURL})

	p, _ := patterns.NewProducer(sqsClient, queueURL, func(o *patterns.ProducerOptions) { o.Tracer = tracer })
	_ = p.Send(context.Background(), &patterns.Message{Body: []byte("order 7")})

	c, _ := patterns.NewConsumer(sqsClient, queueURL, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Tracer = tracer
		o.Logger = slog.New(slog.DiscardHandler)
	})
	ctx, cancel := context.WithCancel(context.Background())
	_ = c.Run(ctx, func(context.Context, *patterns.Message) error { cancel(); return nil })

	spans := exporter.GetSpans()
	send, process := spans[0], spans[1]
	fmt.Println(send.SpanKind, "->", process.SpanKind)
	fmt.Println("one trace:", send.SpanContext.TraceID() == process.SpanContext.TraceID())
	fmt.Println("process is the child of send:", process.Parent.SpanID() == send.SpanContext.SpanID())
	// Output:
	// producer -> consumer
	// one trace: true
	// process is the child of send: true
}

func ptr[T any](v T) *T { return &v }
