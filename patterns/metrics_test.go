package patterns

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/memaws"
)

// metricEvent is one call of a Metrics method, as recMetrics saw it.
type metricEvent struct {
	method       string
	dest, op     string
	n, failed    int
	billed       int64
	d            time.Duration
	err          error
	reason       CompletionReason
	inFlightDiff int
}

// recMetrics records every call, for tests to compare.
type recMetrics struct {
	mu     sync.Mutex
	events []metricEvent
}

func (r *recMetrics) add(e metricEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recMetrics) of(method string) []metricEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []metricEvent
	for _, e := range r.events {
		if e.method == method {
			out = append(out, e)
		}
	}
	return out
}

func (r *recMetrics) Sent(_ context.Context, dest string, sent, failed int, d time.Duration, err error) {
	r.add(metricEvent{method: "Sent", dest: dest, n: sent, failed: failed, d: d, err: err})
}

func (r *recMetrics) Received(_ context.Context, queue string, n int, d time.Duration, err error) {
	r.add(metricEvent{method: "Received", dest: queue, n: n, d: d, err: err})
}

func (r *recMetrics) Delivered(_ context.Context, source string, n int) {
	r.add(metricEvent{method: "Delivered", dest: source, n: n})
}

func (r *recMetrics) Processed(_ context.Context, source string, d time.Duration, err error) {
	r.add(metricEvent{method: "Processed", dest: source, d: d, err: err})
}

func (r *recMetrics) Deleted(_ context.Context, queue string, deleted, failed int, err error) {
	r.add(metricEvent{method: "Deleted", dest: queue, n: deleted, failed: failed, err: err})
}

func (r *recMetrics) InFlight(_ context.Context, queue string, delta int) {
	r.add(metricEvent{method: "InFlight", dest: queue, inFlightDiff: delta})
}

func (r *recMetrics) APIRequest(_ context.Context, service, operation string, billed int64, err error) {
	r.add(metricEvent{method: "APIRequest", dest: service, op: operation, billed: billed, err: err})
}

func (r *recMetrics) Requested(_ context.Context, queue string, d time.Duration, err error) {
	r.add(metricEvent{method: "Requested", dest: queue, d: d, err: err})
}

func (r *recMetrics) LateReply(_ context.Context, replyQueue string) {
	r.add(metricEvent{method: "LateReply", dest: replyQueue})
}

func (r *recMetrics) Completed(_ context.Context, responseQueue string, reason CompletionReason, d time.Duration) {
	r.add(metricEvent{method: "Completed", dest: responseQueue, reason: reason, d: d})
}

// nopMetrics is a Metrics that does nothing, to measure what the hook's
// calls cost apart from what an implementation does.
type nopMetrics struct{}

func (nopMetrics) Sent(context.Context, string, int, int, time.Duration, error)       {}
func (nopMetrics) Received(context.Context, string, int, time.Duration, error)        {}
func (nopMetrics) Delivered(context.Context, string, int)                             {}
func (nopMetrics) Processed(context.Context, string, time.Duration, error)            {}
func (nopMetrics) Deleted(context.Context, string, int, int, error)                   {}
func (nopMetrics) InFlight(context.Context, string, int)                              {}
func (nopMetrics) APIRequest(context.Context, string, string, int64, error)           {}
func (nopMetrics) Requested(context.Context, string, time.Duration, error)            {}
func (nopMetrics) LateReply(context.Context, string)                                  {}
func (nopMetrics) Completed(context.Context, string, CompletionReason, time.Duration) {}

var (
	_ Metrics = (*recMetrics)(nil)
	_ Metrics = nopMetrics{}
)

// okSQS accepts every entry of every batch, with outputs made ahead, so
// that what a Send allocates is courier's own.
type okSQS struct{ out *sqs.SendMessageBatchOutput }

func newOKSQS() *okSQS {
	out := &sqs.SendMessageBatchOutput{}
	for i := range MaxBatchEntries {
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: aws.String(entryID(i)), MessageId: aws.String("m")})
	}
	return &okSQS{out: out}
}

func (c *okSQS) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{}, nil
}

func (c *okSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return &sqs.SendMessageBatchOutput{Successful: c.out.Successful[:len(in.Entries)]}, nil
}

const testQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/metrics-test"

// TestNilMetricsAllocatesNothing: the Metrics hook costs a Send no
// allocation: one with a Metrics that does nothing allocates exactly as
// much as one without (nil), so the hook's own code (the clock read, the
// deferred call, the counts) allocates nothing, and with nil it is not
// even run.
func TestNilMetricsAllocatesNothing(t *testing.T) {
	allocs := func(m Metrics) float64 {
		p, err := NewProducer(newOKSQS(), testQueueURL, func(o *ProducerOptions) { o.Metrics = m })
		if err != nil {
			t.Fatal(err)
		}
		msg := &Message{Body: []byte("hello")}
		ctx := context.Background()
		send := func() {
			if err := p.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
		send() // warm up
		return testing.AllocsPerRun(500, send)
	}
	without, with := allocs(nil), allocs(nopMetrics{})
	t.Logf("allocations per Send: %.2f with Metrics nil, %.2f with a no-op Metrics", without, with)
	if with != without {
		t.Errorf("a Send with a no-op Metrics allocates %.2f times, without %.2f: the hook allocates", with, without)
	}
	if metricsStart(nil) != (time.Time{}) {
		t.Error("metricsStart(nil) reads the clock")
	}
	send := func(context.Context, string, *Message) error { return nil }
	if reflect.ValueOf(meteredSend(nil, send)).Pointer() != reflect.ValueOf(send).Pointer() {
		t.Error("meteredSend(nil, send) wraps send")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = sendCounts(3, nil) }); n != 0 {
		t.Errorf("sendCounts of a successful Send allocates %.0f times", n)
	}
}

func BenchmarkSendMetrics(b *testing.B) {
	for _, bc := range []struct {
		name string
		m    Metrics
	}{{"nil", nil}, {"nop", nopMetrics{}}} {
		b.Run(bc.name, func(b *testing.B) {
			p, _ := NewProducer(newOKSQS(), testQueueURL, func(o *ProducerOptions) { o.Metrics = bc.m })
			msg := &Message{Body: []byte("hello")}
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Send(context.Background(), msg)
			}
		})
	}
}

func TestSendCounts(t *testing.T) {
	partial := &SendError{Failed: []FailedEntry{{Index: 1}, {Index: 3}}}
	for _, tc := range []struct {
		n            int
		err          error
		sent, failed int
	}{
		{4, nil, 4, 0},
		{4, partial, 2, 2},
		{4, errors.Join(errors.New("wrapped"), partial), 2, 2},
		{4, context.DeadlineExceeded, 0, 4},
	} {
		if s, f := sendCounts(tc.n, tc.err); s != tc.sent || f != tc.failed {
			t.Errorf("sendCounts(%d, %v) = %d, %d; want %d, %d", tc.n, tc.err, s, f, tc.sent, tc.failed)
		}
	}
}

// TestMetricsSendAndPublish: Producer and Publisher report each call:
// messages sent and not, the error, a duration.
func TestMetricsSendAndPublish(t *testing.T) {
	mem := memaws.New()
	ctx := context.Background()
	sqsClient, snsClient := mem.SQS(), mem.SNS()
	q, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("metrics-send")})
	if err != nil {
		t.Fatal(err)
	}
	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("metrics-publish")})
	if err != nil {
		t.Fatal(err)
	}
	url, arn := aws.ToString(q.QueueUrl), aws.ToString(topic.TopicArn)
	rec := &recMetrics{}
	p, err := NewProducer(sqsClient, url, func(o *ProducerOptions) { o.Metrics = rec })
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(snsClient, arn, func(o *PublisherOptions) { o.Metrics = rec })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, &Message{Body: []byte("a")}, &Message{Body: []byte("b")}, &Message{Body: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	bad := p.Send(ctx, &Message{Body: []byte("ok")}, &Message{Body: []byte(strings.Repeat("x", MaxSQSMessageBytes+1))})
	if !errors.Is(bad, ErrMessageTooLarge) {
		t.Fatalf("Send of a message too large: %v", bad)
	}
	if err := pub.Publish(ctx, &Message{Body: []byte("d")}, &Message{Body: []byte("e")}); err != nil {
		t.Fatal(err)
	}

	sent := rec.of("Sent")
	if len(sent) != 3 {
		t.Fatalf("Sent events: %+v; want 3", sent)
	}
	want := []metricEvent{
		{method: "Sent", dest: url, n: 3, failed: 0},
		{method: "Sent", dest: url, n: 0, failed: 2},
		{method: "Sent", dest: arn, n: 2, failed: 0},
	}
	for i, w := range want {
		g := sent[i]
		if g.dest != w.dest || g.n != w.n || g.failed != w.failed || (g.err == nil) != (w.failed == 0) || g.d <= 0 {
			t.Errorf("Sent event %d: %+v; want %+v, a duration, and an error when one failed", i, g, w)
		}
	}
	if !errors.Is(sent[1].err, ErrMessageTooLarge) {
		t.Errorf("Sent event 1: err %v; want the Send's error", sent[1].err)
	}
}

// TestMetricsMiddleware: each API request attempt is reported with its
// service, operation, billed size and error.
func TestMetricsMiddleware(t *testing.T) {
	mem := memaws.New()
	ctx := context.Background()
	rec := &recMetrics{}
	client := sqs.NewFromConfig(mem.Config(), func(o *sqs.Options) {
		o.APIOptions = append(o.APIOptions, MetricsMiddleware(rec), MetricsMiddleware(nil))
	})
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("metrics-mw")})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := NewProducer(client, aws.ToString(q.QueueUrl))
	if err := p.Send(ctx, &Message{Body: []byte(strings.Repeat("x", 100<<10))}); err != nil {
		t.Fatal(err)
	}
	_, err = client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(aws.ToString(q.QueueUrl) + "-missing")})
	if err == nil {
		t.Fatal("GetQueueAttributes of a queue that does not exist succeeded")
	}
	got := rec.of("APIRequest")
	if len(got) != 3 {
		t.Fatalf("APIRequest events: %+v; want 3", got)
	}
	for i, w := range []metricEvent{
		{dest: "SQS", op: "CreateQueue", billed: 1},
		{dest: "SQS", op: "SendMessageBatch", billed: 2},
		{dest: "SQS", op: "GetQueueAttributes", billed: 1},
	} {
		if g := got[i]; g.dest != w.dest || g.op != w.op || g.billed != w.billed || (g.err != nil) != (i == 2) {
			t.Errorf("APIRequest %d: %+v; want %+v (an error for the last)", i, g, w)
		}
	}
}
