package adapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/patterns"
)

// load reads a Lambda event from testdata, as the Lambda runtime would.
func load[T any](t *testing.T, name string) T {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// failures returns the response's item identifiers, in response order,
// after a JSON round trip: what Lambda reads is the JSON.
func failures(t *testing.T, r events.SQSEventResponse) []string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var wire struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, f := range wire.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func quiet(o *adapter.Options) { o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) }

// recorder is a handler that records what it was given and fails bodies
// named in fail.
type recorder struct {
	mu    sync.Mutex
	fail  map[string]bool
	order []string
	got   map[string]*patterns.Message
}

func newRecorder(fail ...string) *recorder {
	r := &recorder{fail: map[string]bool{}, got: map[string]*patterns.Message{}}
	for _, f := range fail {
		r.fail[f] = true
	}
	return r
}

func (r *recorder) handle(_ context.Context, m *patterns.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[string(m.Body)] {
		return errors.New("handler refuses " + string(m.Body))
	}
	r.order = append(r.order, string(m.Body))
	r.got[m.ID] = m
	return nil
}

func TestSQSHandlerStandardQueue(t *testing.T) {
	ev := load[events.SQSEvent](t, "sqs-standard.json")
	rec := newRecorder("fail")
	resp, err := adapter.SQSHandler(rec.handle, quiet)(context.Background(), ev)
	if err != nil {
		t.Fatalf("the handler returned %v; it must never fail the whole batch", err)
	}
	// m-fail: the handler failed; m-malformed: its SNS envelope has a
	// binary attribute that is not base64; m-badheader: its courier header
	// does not parse. Each fails alone; the others are deleted.
	want := []string{"m-fail", "m-malformed", "m-badheader"}
	if got := failures(t, resp); !slices.Equal(got, want) {
		t.Errorf("batch item failures = %v, want %v", got, want)
	}

	ok := rec.got["m-ok"]
	switch {
	case ok == nil:
		t.Fatal("m-ok was not handled")
	case ok.Attr("color") != "orange", ok.CorrelationID != "c-1":
		t.Errorf("m-ok: attributes %v, correlation id %q", ok.Attributes, ok.CorrelationID)
	case !bytes.Equal(ok.Attributes["thumb"].Binary, []byte{0, 1, 2, 255}) || ok.Attributes["thumb"].DataType != "Binary":
		t.Errorf("m-ok: binary attribute %+v", ok.Attributes["thumb"])
	case ok.ReceiveCount != 1 || ok.SentAt.UnixMilli() != 1700000000000 || ok.ReceiptHandle != "rh-1":
		t.Errorf("m-ok: system attributes not read: %+v", ok)
	case ok.QueueURL != "https://sqs.us-east-1.amazonaws.com/123456789012/orders":
		t.Errorf("m-ok: queue URL %q", ok.QueueURL)
	}
	if _, leaked := ok.Attributes["courier"]; leaked {
		t.Error("courier's own attribute reached the handler")
	}

	env := rec.got["m-enveloped"]
	if env == nil || string(env.Body) != `{"order":2}` || env.Attr("color") != "orange" || env.TopicARN != "arn:aws:sns:us-east-1:123456789012:orders-events" {
		t.Errorf("SNS-enveloped record not unwrapped: %+v", env)
	}
}

func TestSQSHandlerRaw(t *testing.T) {
	// With Raw, an envelope is the payload: nothing to unwrap, nothing malformed.
	ev := load[events.SQSEvent](t, "sqs-standard.json")
	rec := newRecorder("fail")
	resp, _ := adapter.SQSHandler(rec.handle, quiet, func(o *adapter.Options) { o.Raw = true })(context.Background(), ev)
	if got := failures(t, resp); !slices.Equal(got, []string{"m-fail", "m-badheader"}) {
		t.Errorf("raw: failures = %v", got)
	}
	if m := rec.got["m-enveloped"]; m == nil || !strings.HasPrefix(string(m.Body), `{"Type":"Notification"`) {
		t.Errorf("raw: the envelope must reach the handler as the body: %+v", m)
	}
}

func TestSQSHandlerFIFO(t *testing.T) {
	// sqs-fifo.json: a1(g1) b1(g2) a2(g1) b2(g2) a3(g1); a2 fails.
	tests := []struct {
		name         string
		opts         []func(*adapter.Options)
		wantFailures []string
		wantHandled  []string // in handling order, per group
	}{{
		// AWS: "stop processing messages after the first failure and
		// return all failed and unprocessed messages in batchItemFailures".
		name:         "AWS guidance: stop the batch at the first failure",
		wantFailures: []string{"a2", "b2", "a3"},
		wantHandled:  []string{"a1", "b1"},
	}, {
		name:         "SkipGroupOnError: stop only the failed group",
		opts:         []func(*adapter.Options){func(o *adapter.Options) { o.SkipGroupOnError = true }},
		wantFailures: []string{"a2", "a3"},
		wantHandled:  []string{"a1", "b1", "b2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := load[events.SQSEvent](t, "sqs-fifo.json")
			rec := newRecorder("a2")
			resp, err := adapter.SQSHandler(rec.handle, append(tt.opts, quiet)...)(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := failures(t, resp); !slices.Equal(got, tt.wantFailures) {
				t.Errorf("failures = %v, want %v", got, tt.wantFailures)
			}
			got := slices.Clone(rec.order)
			slices.Sort(got)
			if !slices.Equal(got, tt.wantHandled) {
				t.Errorf("handled %v, want %v (a3 must never run after a2 failed)", rec.order, tt.wantHandled)
			}
			for _, g := range []string{"a", "b"} {
				var seq []string
				for _, b := range rec.order {
					if strings.HasPrefix(b, g) {
						seq = append(seq, b)
					}
				}
				if !slices.IsSorted(seq) {
					t.Errorf("group %s handled out of order: %v", g, seq)
				}
			}
		})
	}
}

func TestSQSHandlerFIFOGroupsRunConcurrently(t *testing.T) {
	// With SkipGroupOnError, g2 does not wait for g1: b1 finishes while a1
	// is still running (a1 waits for it; one group at a time would never
	// get there).
	ev := load[events.SQSEvent](t, "sqs-fifo.json")
	b1done := make(chan struct{})
	h := func(ctx context.Context, m *patterns.Message) error {
		switch string(m.Body) {
		case "a1":
			select {
			case <-b1done:
			case <-ctx.Done():
				return ctx.Err()
			}
		case "b1":
			close(b1done)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, _ := adapter.SQSHandler(h, quiet, func(o *adapter.Options) { o.SkipGroupOnError = true })(ctx, ev)
	if got := failures(t, resp); len(got) != 0 {
		t.Errorf("failures %v: groups did not run concurrently", got)
	}
}

func TestSQSHandlerConcurrencyBound(t *testing.T) {
	var records []events.SQSMessage
	for i := range 50 {
		records = append(records, events.SQSMessage{
			MessageId: string(rune('A'+i%26)) + string(rune('a'+i/26)), Body: "x",
			EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:orders",
		})
	}
	var running, peak atomic.Int32
	h := func(ctx context.Context, m *patterns.Message) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		running.Add(-1)
		return nil
	}
	resp, _ := adapter.SQSHandler(h, quiet, func(o *adapter.Options) { o.Concurrency = 3 })(context.Background(), events.SQSEvent{Records: records})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	if p := peak.Load(); p > 3 {
		t.Errorf("%d handlers ran at once, bound is 3", p)
	}
}

func TestSQSHandlerPanic(t *testing.T) {
	ev := load[events.SQSEvent](t, "sqs-standard.json")
	h := func(ctx context.Context, m *patterns.Message) error {
		if m.ID == "m-ok" {
			panic("boom")
		}
		return nil
	}
	resp, err := adapter.SQSHandler(h, quiet)(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(t, resp); !slices.Equal(got, []string{"m-ok", "m-malformed", "m-badheader"}) {
		t.Errorf("failures = %v: the panicking record fails alone (with the undecodable ones)", got)
	}
}

func TestSQSHandlerDeadline(t *testing.T) {
	t.Run("too close: nothing starts", func(t *testing.T) {
		ev := load[events.SQSEvent](t, "sqs-standard.json")
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		rec := newRecorder()
		resp, _ := adapter.SQSHandler(rec.handle, quiet, func(o *adapter.Options) { o.DeadlineMargin = time.Second })(ctx, ev)
		want := []string{"m-ok", "m-fail", "m-malformed", "m-enveloped", "m-badheader"}
		if got := failures(t, resp); len(rec.order) != 0 || !slices.Equal(got, want) {
			t.Errorf("handled %v, failures %v; want none handled, all reported", rec.order, got)
		}
	})
	t.Run("context done: nothing starts", func(t *testing.T) {
		ev := load[events.SQSEvent](t, "sqs-fifo.json")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rec := newRecorder()
		resp, _ := adapter.SQSHandler(rec.handle, quiet)(ctx, ev)
		if got := failures(t, resp); len(rec.order) != 0 || len(got) != 5 {
			t.Errorf("handled %v, failures %v", rec.order, got)
		}
	})
	t.Run("FIFO: time runs out mid-batch", func(t *testing.T) {
		// b1 runs until less than the margin is left: a2, b2 and a3 are
		// then reported without being started.
		ev := load[events.SQSEvent](t, "sqs-fifo.json")
		const margin = 2 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), margin+500*time.Millisecond)
		defer cancel()
		var calls []string
		h := func(ctx context.Context, m *patterns.Message) error {
			calls = append(calls, string(m.Body))
			if string(m.Body) == "b1" {
				deadline, _ := ctx.Deadline()
				for time.Until(deadline) >= margin {
					time.Sleep(10 * time.Millisecond)
				}
			}
			return nil
		}
		resp, _ := adapter.SQSHandler(h, quiet, func(o *adapter.Options) { o.DeadlineMargin = margin })(ctx, ev)
		if got := failures(t, resp); !slices.Equal(calls, []string{"a1", "b1"}) || !slices.Equal(got, []string{"a2", "b2", "a3"}) {
			t.Errorf("calls %v, failures %v; want a1, b1 handled and the rest reported", calls, got)
		}
	})
}

func TestSQSHandlerDefaultMargin(t *testing.T) {
	// A short function (3s) still runs its records: the default margin is
	// a tenth of the invocation's time when that is under 2s.
	ev := load[events.SQSEvent](t, "sqs-fifo.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rec := newRecorder()
	resp, _ := adapter.SQSHandler(rec.handle, quiet)(ctx, ev)
	if got := failures(t, resp); len(got) != 0 || len(rec.order) != 5 {
		t.Errorf("3s invocation: handled %v, failures %v", rec.order, got)
	}
}

func TestSNSHandler(t *testing.T) {
	ev := load[events.SNSEvent](t, "sns.json")
	var got *patterns.Message
	err := adapter.SNSHandler(func(ctx context.Context, m *patterns.Message) error { got = m; return nil }, quiet)(context.Background(), ev)
	if err != nil || got == nil {
		t.Fatalf("SNS record: %+v, %v", got, err)
	}
	if string(got.Body) != `{"order":3}` || got.Attr("color") != "orange" || got.CorrelationID != "c-3" ||
		got.ID != "95df01b4-ee98-5cb9-9903-4c221d41eb5e" || got.TopicARN != "arn:aws:sns:us-east-1:123456789012:orders-events" {
		t.Errorf("SNS record decoded as %+v", got)
	}
	err = adapter.SNSHandler(func(context.Context, *patterns.Message) error { return errors.New("no") }, quiet)(context.Background(), ev)
	if err == nil {
		t.Error("a failed SNS record must fail the invocation (Lambda retries the event)")
	}
	err = adapter.SNSHandler(func(context.Context, *patterns.Message) error { panic("boom") }, quiet)(context.Background(), ev)
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("a panicking handler: %v", err)
	}
}

func TestSNSHandlerMalformed(t *testing.T) {
	// The second record's courier header does not parse: the invocation
	// fails naming it; the first record was still handled.
	ev := load[events.SNSEvent](t, "sns-malformed.json")
	var handled []string
	err := adapter.SNSHandler(func(ctx context.Context, m *patterns.Message) error {
		handled = append(handled, m.ID)
		return nil
	}, quiet)(context.Background(), ev)
	if !errors.Is(err, patterns.ErrMalformedMessage) && (err == nil || !strings.Contains(err.Error(), "0f6c3a4e-bad-header")) {
		t.Errorf("err = %v, want one naming the malformed record", err)
	}
	if !slices.Equal(handled, []string{"95df01b4-ee98-5cb9-9903-4c221d41eb5e"}) {
		t.Errorf("handled %v", handled)
	}
}

func TestQueueURL(t *testing.T) {
	tests := []struct{ arn, want string }{
		{"arn:aws:sqs:us-east-1:123456789012:orders", "https://sqs.us-east-1.amazonaws.com/123456789012/orders"},
		{"arn:aws:sqs:eu-west-1:123456789012:ledger.fifo", "https://sqs.eu-west-1.amazonaws.com/123456789012/ledger.fifo"},
		{"arn:aws-cn:sqs:cn-north-1:123456789012:q", "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q"},
		{"arn:aws:sns:us-east-1:123456789012:topic", ""},
		{"arn:aws:sqs:us-east-1:123456789012", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := adapter.QueueURL(tt.arn); got != tt.want {
			t.Errorf("QueueURL(%q) = %q, want %q", tt.arn, got, tt.want)
		}
	}
}

// An idempotent handler under the adapter: the same message twice in one
// batch (a duplicate SQS delivered together) runs its side effect once; the
// copy that found it in progress is reported failed, and when SQS delivers
// it again it is acknowledged without running.
func TestSQSHandlerIdempotent(t *testing.T) {
	store, _ := patterns.NewMemoryIdempotencyStore()
	var effects atomic.Int64
	entered := make(chan struct{})
	var once sync.Once
	h, err := patterns.Idempotent(func(ctx context.Context, m *patterns.Message) error {
		once.Do(func() { close(entered) })
		time.Sleep(100 * time.Millisecond) // still running when the copy begins
		effects.Add(1)
		return nil
	}, store, func(o *patterns.IdempotencyOptions) { o.Logger = slog.New(slog.DiscardHandler) })
	if err != nil {
		t.Fatal(err)
	}
	rec := func(id, receipt string) events.SQSMessage {
		return events.SQSMessage{MessageId: id, ReceiptHandle: receipt, Body: "charge 42",
			EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:payments"}
	}
	handler := adapter.SQSHandler(h, quiet)
	resp, err := handler(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec("m-1", "rh-1"), rec("m-1", "rh-2")}})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	if got := failures(t, resp); len(got) != 1 || got[0] != "m-1" || effects.Load() != 1 {
		t.Errorf("failures %v, %d side effects; want the copy reported failed and one side effect", got, effects.Load())
	}
	resp, err = handler(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec("m-1", "rh-3")}})
	if got := failures(t, resp); err != nil || len(got) != 0 || effects.Load() != 1 {
		t.Errorf("redelivery: failures %v, err %v, %d side effects; want acknowledged without running", got, err, effects.Load())
	}
}
