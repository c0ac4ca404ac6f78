package adapter_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/patterns"
)

// countMetrics sums what the adapter reports, by method and source.
type countMetrics struct {
	mu        sync.Mutex
	counts    map[string]int // "Method source" -> sum of the counts
	errs      map[string]int // "Method source" -> calls with an error
	inFlight  map[string]int // now
	peak      int
	durations int // Processed calls with a duration > 0
}

func newCountMetrics() *countMetrics {
	return &countMetrics{counts: map[string]int{}, errs: map[string]int{}, inFlight: map[string]int{}}
}

func (c *countMetrics) add(method, src string, n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[method+" "+src] += n
	if err != nil {
		c.errs[method+" "+src]++
	}
}

func (c *countMetrics) Sent(context.Context, string, int, int, time.Duration, error) {}
func (c *countMetrics) Received(context.Context, string, int, time.Duration, error)  {}
func (c *countMetrics) Delivered(_ context.Context, src string, n int) {
	c.add("Delivered", src, n, nil)
}
func (c *countMetrics) Processed(_ context.Context, src string, d time.Duration, err error) {
	c.add("Processed", src, 1, err)
	c.mu.Lock()
	if d > 0 {
		c.durations++
	}
	c.mu.Unlock()
}
func (c *countMetrics) Deleted(_ context.Context, q string, n, failed int, err error) {
	c.add("Deleted", q, n, err)
}
func (c *countMetrics) InFlight(_ context.Context, q string, delta int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight[q] += delta
	c.peak = max(c.peak, c.inFlight[q])
}
func (c *countMetrics) APIRequest(context.Context, string, string, int64, error) {}
func (c *countMetrics) Requested(context.Context, string, time.Duration, error)  {}
func (c *countMetrics) LateReply(context.Context, string)                        {}
func (c *countMetrics) Completed(context.Context, string, patterns.CompletionReason, time.Duration) {
}

var _ patterns.Metrics = (*countMetrics)(nil)

// TestSQSHandlerMetrics: an SQS event's records are counted as delivered
// and in flight, each record's handling is timed (failures with their
// error: a handler error, two that do not decode), the records not
// reported failed count as deleted, and nothing stays in flight.
func TestSQSHandlerMetrics(t *testing.T) {
	ev := load[events.SQSEvent](t, "sqs-standard.json")
	m := newCountMetrics()
	resp, _ := adapter.SQSHandler(newRecorder("fail").handle, quiet, func(o *adapter.Options) { o.Metrics = m })(context.Background(), ev)
	if n := len(failures(t, resp)); n != 3 {
		t.Fatalf("%d failures, want 3", n)
	}
	q := "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
	for k, want := range map[string]int{"Delivered " + q: 5, "Processed " + q: 5, "Deleted " + q: 2} {
		if got := m.counts[k]; got != want {
			t.Errorf("%s: %d, want %d (all: %v)", k, got, want, m.counts)
		}
	}
	if got := m.errs["Processed "+q]; got != 3 {
		t.Errorf("Processed with an error: %d, want 3", got)
	}
	if m.durations != 5 {
		t.Errorf("%d of 5 Processed calls have a duration", m.durations)
	}
	if m.inFlight[q] != 0 || m.peak != 5 {
		t.Errorf("in flight: %d at the end, %d at most; want 0 and 5", m.inFlight[q], m.peak)
	}
}

// TestSNSHandlerMetrics: an SNS event's records are delivered, timed and
// taken out of flight; there is nothing to delete.
func TestSNSHandlerMetrics(t *testing.T) {
	ev := load[events.SNSEvent](t, "sns-malformed.json")
	m := newCountMetrics()
	err := adapter.SNSHandler(func(context.Context, *patterns.Message) error { return nil }, quiet, func(o *adapter.Options) { o.Metrics = m })(context.Background(), ev)
	if err == nil {
		t.Fatal("the malformed record did not fail the invocation")
	}
	topic := "arn:aws:sns:us-east-1:123456789012:orders-events"
	if m.counts["Delivered "+topic] != 2 || m.counts["Processed "+topic] != 2 || m.errs["Processed "+topic] != 1 || len(m.counts) != 2 {
		t.Errorf("counts %v, errors %v; want 2 delivered, 2 processed, 1 failed, nothing else", m.counts, m.errs)
	}
	if m.inFlight[topic] != 0 || m.peak != 2 {
		t.Errorf("in flight: %d at the end, %d at most; want 0 and 2", m.inFlight[topic], m.peak)
	}
}
