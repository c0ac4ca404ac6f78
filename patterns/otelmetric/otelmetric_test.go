package otelmetric_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/otelmetric"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// refusedError is a handler's error with a type of its own: error.type
// names it.
type refusedError struct{}

func (refusedError) Error() string { return "refused" }

// meter is a Metrics whose instruments a ManualReader reads.
type meter struct {
	t      *testing.T
	mx     *otelmetric.Metrics
	reader *sdkmetric.ManualReader
}

func newMeter(t *testing.T) *meter {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	mx, err := otelmetric.New(otelmetric.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	return &meter{t: t, mx: mx, reader: reader}
}

// collect reads every instrument, by name.
func (m *meter) collect() map[string]metricdata.Metrics {
	m.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		m.t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelmetric.ScopeName {
			m.t.Errorf("instrumentation scope %q, want %q", sm.Scope.Name, otelmetric.ScopeName)
		}
		for _, x := range sm.Metrics {
			out[x.Name] = x
		}
	}
	return out
}

// matches tells whether set has every attribute of want; a want with an
// empty string value means the attribute is absent.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if kv.Value.Type() == attribute.STRING && kv.Value.AsString() == "" {
			if ok {
				return false
			}
			continue
		}
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sum adds up the data points of the counter (or up-down counter) name
// whose attributes match want; found: at least one did.
func (m *meter) sum(ms map[string]metricdata.Metrics, name string, want ...attribute.KeyValue) (total int64, found bool) {
	m.t.Helper()
	x, ok := ms[name]
	if !ok {
		return 0, false
	}
	s, ok := x.Data.(metricdata.Sum[int64])
	if !ok {
		m.t.Fatalf("%s is a %T, not an int64 sum", name, x.Data)
	}
	for _, dp := range s.DataPoints {
		if matches(dp.Attributes, want) {
			total += dp.Value
			found = true
		}
	}
	return total, found
}

// count adds up the counts of the histogram name's data points whose
// attributes match want.
func (m *meter) count(ms map[string]metricdata.Metrics, name string, want ...attribute.KeyValue) uint64 {
	m.t.Helper()
	x, ok := ms[name]
	if !ok {
		return 0
	}
	h, ok := x.Data.(metricdata.Histogram[float64])
	if !ok {
		m.t.Fatalf("%s is a %T, not a float64 histogram", name, x.Data)
	}
	var n uint64
	for _, dp := range h.DataPoints {
		if matches(dp.Attributes, want) {
			n += dp.Count
		}
	}
	return n
}

// expect checks a counter's sum.
func (m *meter) expect(ms map[string]metricdata.Metrics, name string, want int64, attrs ...attribute.KeyValue) {
	m.t.Helper()
	if got, _ := m.sum(ms, name, attrs...); got != want {
		m.t.Errorf("%s%v = %d, want %d", name, attrs, got, want)
	}
}

// expectCount checks a histogram's count.
func (m *meter) expectCount(ms map[string]metricdata.Metrics, name string, want uint64, attrs ...attribute.KeyValue) {
	m.t.Helper()
	if got := m.count(ms, name, attrs...); got != want {
		m.t.Errorf("%s%v: %d measurements, want %d", name, attrs, got, want)
	}
}

// waitFor polls until cond holds, or fails after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queueName(url string) string { return url[strings.LastIndex(url, "/")+1:] }

var (
	sqsSystem = attribute.String("messaging.system", "aws_sqs")
	snsSystem = attribute.String("messaging.system", "aws_sns")
	noError   = attribute.String("error.type", "")
)

func dest(name string) attribute.KeyValue {
	return attribute.String("messaging.destination.name", name)
}
func op(name string) attribute.KeyValue   { return attribute.String("messaging.operation.name", name) }
func errType(t string) attribute.KeyValue { return attribute.String("error.type", t) }

// replyQueues is how a Requester's reply queues are measured: by their
// prefix, not their random names.
var replyQueues = []attribute.KeyValue{
	sqsSystem,
	attribute.String("messaging.destination.template", patterns.DefaultReplyQueuePrefix+"*"),
	attribute.Bool("messaging.destination.temporary", true),
}

// TestEveryInstrument drives a Producer, a Consumer, a Publisher, a
// Requester and its Responder, a ScatterGather and the Lambda adapter on
// the in-process memaws backend, then reads every instrument through the
// SDK's ManualReader and checks names, attributes and counts.
func TestEveryInstrument(t *testing.T) {
	b := backend.Require(t, "memory")
	m := newMeter(t)

	t.Run("producer and consumer", func(t *testing.T) { producerConsumer(t, m, b) })
	t.Run("publisher", func(t *testing.T) { publisher(t, m, b) })
	t.Run("request-response", func(t *testing.T) { requestResponse(t, m, b) })
	t.Run("scatter-gather", func(t *testing.T) { scatterGather(t, m, b) })
	t.Run("lambda", func(t *testing.T) { lambda(t, m) })

	ms := m.collect()
	for _, name := range []string{
		otelmetric.SentMessages, otelmetric.ConsumedMessages, otelmetric.OperationDuration, otelmetric.ProcessDuration,
		otelmetric.FailedMessages, otelmetric.DeletedMessages, otelmetric.InFlightMessages,
		otelmetric.APIRequests, otelmetric.BilledRequests,
		otelmetric.RequesterCalls, otelmetric.RequesterDuration, otelmetric.RequesterTimeouts, otelmetric.LateReplies,
		otelmetric.Completions, otelmetric.CompletionDuration,
	} {
		if _, ok := ms[name]; !ok {
			t.Errorf("instrument %s recorded nothing", name)
		}
	}
	for name, unit := range map[string]string{
		otelmetric.SentMessages: "{message}", otelmetric.OperationDuration: "s", otelmetric.InFlightMessages: "{message}",
		otelmetric.APIRequests: "{request}", otelmetric.Completions: "{aggregate}",
	} {
		if got := ms[name].Unit; got != unit {
			t.Errorf("%s: unit %q, want %q", name, got, unit)
		}
	}
	if s, ok := ms[otelmetric.InFlightMessages].Data.(metricdata.Sum[int64]); !ok || s.IsMonotonic {
		t.Errorf("%s is not an up-down counter: %+v", otelmetric.InFlightMessages, ms[otelmetric.InFlightMessages].Data)
	}
}

// producerConsumer: three messages sent (one request), a Send refused
// before any request, the three consumed, one of them failed by its
// handler, two deleted; nothing left in flight.
func producerConsumer(t *testing.T, m *meter, b *backend.Backend) {
	ctx := context.Background()
	q := b.CreateQueue(t, backend.QueueOptions{})
	name := queueName(q.URL)
	client := sqs.NewFromConfig(b.Config(), func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, m.mx.Install) })

	p, err := patterns.NewProducer(client, q.URL, func(o *patterns.ProducerOptions) { o.Metrics = m.mx })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, &patterns.Message{Body: []byte("a")}, &patterns.Message{Body: []byte("b")}, &patterns.Message{Body: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	tooLarge := &patterns.Message{Body: []byte(strings.Repeat("x", patterns.MaxSQSMessageBytes+1))}
	if err := p.Send(ctx, &patterns.Message{Body: []byte("fine")}, tooLarge); !errors.Is(err, patterns.ErrMessageTooLarge) {
		t.Fatalf("Send of a message too large: %v", err)
	}
	// One request that fails: a queue that does not exist.
	if _, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL + "-missing")}); err == nil {
		t.Fatal("GetQueueAttributes of a missing queue succeeded")
	}

	c, err := patterns.NewConsumer(b.SQS(), q.URL, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet()
		o.Metrics = m.mx
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var handled atomic.Int32
	var peak atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(ctx context.Context, msg *patterns.Message) error {
			if v, _ := m.sum(m.collect(), otelmetric.InFlightMessages, sqsSystem, dest(name)); v > peak.Load() {
				peak.Store(v)
			}
			defer func() {
				if handled.Add(1) == 3 {
					cancel()
				}
			}()
			if string(msg.Body) == "b" {
				return refusedError{}
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not handle 3 messages")
	}

	ms := m.collect()
	m.expect(ms, otelmetric.SentMessages, 3, sqsSystem, dest(name), op("send"), noError)
	m.expect(ms, otelmetric.SentMessages, 2, sqsSystem, dest(name), op("send"), errType("message_too_large"))
	m.expectCount(ms, otelmetric.OperationDuration, 1, dest(name), op("send"), attribute.String("messaging.operation.type", "send"), noError)
	m.expectCount(ms, otelmetric.OperationDuration, 1, dest(name), op("send"), errType("message_too_large"))
	m.expect(ms, otelmetric.ConsumedMessages, 3, sqsSystem, dest(name), op("receive"), noError)
	if n := m.count(ms, otelmetric.OperationDuration, dest(name), op("receive"), attribute.String("messaging.operation.type", "receive")); n < 1 {
		t.Errorf("%s of receive: %d measurements, want at least 1", otelmetric.OperationDuration, n)
	}
	m.expectCount(ms, otelmetric.ProcessDuration, 2, sqsSystem, dest(name), op("process"), noError)
	m.expectCount(ms, otelmetric.ProcessDuration, 1, sqsSystem, dest(name), op("process"), errType("otelmetric_test.refusedError"))
	m.expect(ms, otelmetric.FailedMessages, 1, sqsSystem, dest(name), errType("otelmetric_test.refusedError"))
	m.expect(ms, otelmetric.DeletedMessages, 2, sqsSystem, dest(name), noError)
	if v, found := m.sum(ms, otelmetric.InFlightMessages, sqsSystem, dest(name)); v != 0 || !found || peak.Load() < 1 {
		t.Errorf("%s: %d at the end (recorded: %v), at most %d while handlers ran; want 0, recorded, at least 1", otelmetric.InFlightMessages, v, found, peak.Load())
	}

	rpc := func(method string) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("rpc.system", "aws-api"), attribute.String("rpc.service", "SQS"), attribute.String("rpc.method", method)}
	}
	m.expect(ms, otelmetric.APIRequests, 1, append(rpc("SendMessageBatch"), noError)...)
	m.expect(ms, otelmetric.BilledRequests, 1, rpc("SendMessageBatch")...)
	failed, _ := m.sum(ms, otelmetric.APIRequests, rpc("GetQueueAttributes")...)
	ok, _ := m.sum(ms, otelmetric.APIRequests, append(rpc("GetQueueAttributes"), noError)...)
	if failed != 1 || ok != 0 {
		t.Errorf("%s of GetQueueAttributes: %d, %d without error.type; want 1, failed", otelmetric.APIRequests, failed, ok)
	}
}

// publisher: two messages published to a topic.
func publisher(t *testing.T, m *meter, b *backend.Backend) {
	ctx := context.Background()
	topic := b.CreateTopic(t, false, nil)
	p, err := patterns.NewPublisher(b.SNS(), topic, func(o *patterns.PublisherOptions) { o.Metrics = m.mx })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, &patterns.Message{Body: []byte("d")}, &patterns.Message{Body: []byte("e")}); err != nil {
		t.Fatal(err)
	}
	name := topic[strings.LastIndex(topic, ":")+1:]
	ms := m.collect()
	m.expect(ms, otelmetric.SentMessages, 2, snsSystem, dest(name), op("publish"), noError)
	m.expectCount(ms, otelmetric.OperationDuration, 1, snsSystem, dest(name), op("publish"), noError)
}

// requestResponse: two requests answered, one answered with an error,
// one that times out and whose reply then comes late.
func requestResponse(t *testing.T, m *meter, b *backend.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	requests := b.CreateQueue(t, backend.QueueOptions{})
	name := queueName(requests.URL)
	responder, err := patterns.NewResponder(b.SQS(), requests.URL, func(o *patterns.ResponderOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet()
		o.Metrics = m.mx
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = responder.Run(ctx, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
			switch string(req.Body) {
			case "fail":
				return nil, errors.New("no")
			case "slow":
				time.Sleep(1500 * time.Millisecond)
			}
			return &patterns.Message{Body: []byte("pong")}, nil
		})
	}()
	requester, err := patterns.NewRequester(b.SQS(), func(o *patterns.RequesterOptions) {
		o.Logger = quiet()
		o.Metrics = m.mx
	})
	if err != nil {
		t.Fatal(err)
	}
	defer requester.Close(context.Background())

	request := func(body string, timeout time.Duration) error {
		rctx, stop := context.WithTimeout(ctx, timeout)
		defer stop()
		_, err := requester.Request(rctx, requests.URL, &patterns.Message{Body: []byte(body)})
		return err
	}
	for range 2 {
		if err := request("ping", 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var remote *patterns.RemoteError
	if err := request("fail", 20*time.Second); !errors.As(err, &remote) {
		t.Fatalf("request answered with an error: %v", err)
	}
	if err := request("slow", 500*time.Millisecond); !errors.Is(err, patterns.ErrTimeout) {
		t.Fatalf("slow request: %v, want ErrTimeout", err)
	}
	waitFor(t, "the late reply", func() bool {
		n, _ := m.sum(m.collect(), otelmetric.LateReplies)
		return n == 1
	})
	cancel()
	<-stopped
	if err := requester.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	ms := m.collect()
	m.expect(ms, otelmetric.RequesterCalls, 2, sqsSystem, dest(name), noError)
	m.expect(ms, otelmetric.RequesterCalls, 1, sqsSystem, dest(name), errType("remote_error"))
	m.expect(ms, otelmetric.RequesterCalls, 1, sqsSystem, dest(name), errType("timeout"))
	m.expectCount(ms, otelmetric.RequesterDuration, 4, sqsSystem, dest(name))
	m.expect(ms, otelmetric.RequesterTimeouts, 1, sqsSystem, dest(name))
	m.expect(ms, otelmetric.LateReplies, 1, replyQueues...)
	// The requests, sent by the Requester; the replies, by the Responder.
	m.expect(ms, otelmetric.SentMessages, 4, sqsSystem, dest(name), op("send"), noError)
	m.expect(ms, otelmetric.SentMessages, 4, append(replyQueues, op("send"), noError)...)
	// The responder's consumer: four requests, each answered and deleted
	// (an error reply is an answer); the requester's: four replies.
	m.expect(ms, otelmetric.ConsumedMessages, 4, sqsSystem, dest(name), op("receive"))
	m.expectCount(ms, otelmetric.ProcessDuration, 4, sqsSystem, dest(name), noError)
	m.expect(ms, otelmetric.DeletedMessages, 4, sqsSystem, dest(name))
	m.expect(ms, otelmetric.ConsumedMessages, 4, append(replyQueues, op("receive"))...)
	m.expect(ms, otelmetric.DeletedMessages, 4, replyQueues...)
	if v, _ := m.sum(ms, otelmetric.InFlightMessages, sqsSystem, dest(name)); v != 0 {
		t.Errorf("%d requests still in flight", v)
	}
}

// scatterGather: one aggregate completed by all its responders, one by
// its deadline, one that Gather stopped waiting for.
func scatterGather(t *testing.T, m *meter, b *backend.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	replies := b.CreateQueue(t, backend.QueueOptions{})
	var to []patterns.Destination
	for range 2 {
		q := b.CreateQueue(t, backend.QueueOptions{}).URL
		r, err := patterns.NewResponder(b.SQS(), q, func(o *patterns.ResponderOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet()
			o.AllowNames = []string{queueName(replies.URL)}
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_ = r.Run(ctx, func(context.Context, *patterns.Message) (*patterns.Message, error) {
				return &patterns.Message{Body: []byte("quote")}, nil
			})
		})
		to = append(to, patterns.Destination(q))
	}
	dead := patterns.Destination(b.CreateQueue(t, backend.QueueOptions{}).URL) // nobody answers

	sg, err := patterns.NewScatterGather(b.SQS(), b.SNS(), replies.URL, func(o *patterns.ScatterGatherOptions) {
		o.Consumer = patterns.ConsumerOptions{WaitTime: time.Second, Logger: quiet(), Metrics: m.mx}
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = sg.Run(ctx) })

	gather := func(o patterns.ScatterOptions, timeout time.Duration) (*patterns.Aggregate, error) {
		gctx, stop := context.WithTimeout(ctx, timeout)
		defer stop()
		return sg.Gather(gctx, &patterns.Message{Body: []byte("quote?")}, o)
	}
	if a, err := gather(patterns.ScatterOptions{To: to}, 20*time.Second); err != nil || a.Reason != patterns.CompletedAll {
		t.Fatalf("gather from all: %+v, %v", a, err)
	}
	if a, err := gather(patterns.ScatterOptions{To: []patterns.Destination{to[0], dead}, Completion: patterns.Completion{Deadline: time.Second}}, 20*time.Second); err != nil || a.Reason != patterns.CompletedDeadline {
		t.Fatalf("gather by deadline: %+v, %v", a, err)
	}
	if _, err := gather(patterns.ScatterOptions{To: []patterns.Destination{dead}}, 300*time.Millisecond); !errors.Is(err, patterns.ErrTimeout) {
		t.Fatalf("gather from nobody: %v, want ErrTimeout", err)
	}

	name := queueName(replies.URL)
	ms := m.collect()
	reason := func(r patterns.CompletionReason) attribute.KeyValue {
		return attribute.String("courier.completion.reason", string(r))
	}
	for _, r := range []patterns.CompletionReason{patterns.CompletedAll, patterns.CompletedDeadline, patterns.GatherTimeout} {
		m.expect(ms, otelmetric.Completions, 1, sqsSystem, dest(name), reason(r))
		m.expectCount(ms, otelmetric.CompletionDuration, 1, sqsSystem, dest(name), reason(r))
	}
	m.expect(ms, otelmetric.Completions, 3, sqsSystem, dest(name))
	// Three responses: two to the first, one to the second (on a loaded
	// machine it may come after the deadline, and then after Gather).
	waitFor(t, "three responses", func() bool {
		n, _ := m.sum(m.collect(), otelmetric.ConsumedMessages, sqsSystem, dest(name), op("receive"))
		return n == 3
	})
}

// lambda: an SQS event of two records, one handled, one failed.
func lambda(t *testing.T, m *meter) {
	arn := "arn:aws:sqs:us-east-1:123456789012:lambda-orders"
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "1", Body: "ok", EventSourceARN: arn},
		{MessageId: "2", Body: "fail", EventSourceARN: arn},
	}}
	h := adapter.SQSHandler(func(_ context.Context, msg *patterns.Message) error {
		if string(msg.Body) == "fail" {
			return refusedError{}
		}
		return nil
	}, func(o *adapter.Options) { o.Metrics, o.Logger = m.mx, quiet() })
	resp, _ := h(context.Background(), ev)
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("failures: %+v", resp.BatchItemFailures)
	}
	ms := m.collect()
	d := dest("lambda-orders")
	m.expect(ms, otelmetric.ConsumedMessages, 2, sqsSystem, d, op("process"))
	m.expectCount(ms, otelmetric.ProcessDuration, 2, sqsSystem, d)
	m.expect(ms, otelmetric.FailedMessages, 1, sqsSystem, d, errType("otelmetric_test.refusedError"))
	m.expect(ms, otelmetric.DeletedMessages, 1, sqsSystem, d)
	m.expect(ms, otelmetric.InFlightMessages, 0, sqsSystem, d)
}
