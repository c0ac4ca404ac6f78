package adapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/patterns"
)

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

func failures(r events.SQSEventResponse) []string {
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func TestSQSHandlerPartialFailures(t *testing.T) {
	ev := load[events.SQSEvent](t, "sqs-standard.json")
	var mu sync.Mutex
	got := map[string]*patterns.Message{}
	h := adapter.SQSHandler(func(ctx context.Context, m *patterns.Message) error {
		if string(m.Body) == "fail" {
			return errors.New("cannot")
		}
		mu.Lock()
		got[m.ID] = m
		mu.Unlock()
		return nil
	})
	resp, err := h(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if f := failures(resp); !slices.Equal(f, []string{"m-fail", "m-malformed"}) {
		t.Errorf("batch item failures = %v, want the failing and the malformed record only", f)
	}
	ok := got["m-ok"]
	if ok == nil || ok.Attr("color") != "orange" || ok.CorrelationID != "c-1" || ok.QueueURL != "https://sqs.us-east-1.amazonaws.com/123456789012/orders" {
		t.Errorf("plain record decoded as %+v", ok)
	}
	env := got["m-enveloped"]
	if env == nil || string(env.Body) != `{"order":2}` || env.Attr("color") != "orange" || env.TopicARN == "" {
		t.Errorf("SNS-enveloped record not unwrapped: %+v", env)
	}
}

func TestSQSHandlerFIFOStopsTheGroup(t *testing.T) {
	ev := load[events.SQSEvent](t, "sqs-fifo.json")
	var mu sync.Mutex
	var handled []string
	h := adapter.SQSHandler(func(ctx context.Context, m *patterns.Message) error {
		if string(m.Body) == "a2" {
			return errors.New("a2 fails")
		}
		mu.Lock()
		handled = append(handled, string(m.Body))
		mu.Unlock()
		return nil
	})
	resp, _ := h(context.Background(), ev)
	if f := failures(resp); !slices.Equal(f, []string{"a2", "a3"}) {
		t.Errorf("failures = %v, want a2 and the rest of its group (a3)", f)
	}
	slices.Sort(handled)
	if !slices.Equal(handled, []string{"a1", "b1", "b2"}) {
		t.Errorf("handled %v: a3 must not run after a2 failed; group g2 goes on", handled)
	}
}

func TestSQSHandlerPanicAndDeadline(t *testing.T) {
	ev := load[events.SQSEvent](t, "sqs-standard.json")
	h := adapter.SQSHandler(func(ctx context.Context, m *patterns.Message) error { panic("boom") })
	resp, err := h(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != len(ev.Records) {
		t.Errorf("panics: %d failures, err %v; want every record failed, no crash", len(resp.BatchItemFailures), err)
	}
	// Too little time left: nothing starts, everything is retried.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(500*time.Millisecond))
	defer cancel()
	var calls atomic.Int32
	h = adapter.SQSHandler(func(ctx context.Context, m *patterns.Message) error { calls.Add(1); return nil })
	resp, _ = h(ctx, ev)
	if calls.Load() != 0 || len(resp.BatchItemFailures) != len(ev.Records) {
		t.Errorf("near the deadline: %d calls, %d failures", calls.Load(), len(resp.BatchItemFailures))
	}
}

func TestSNSHandler(t *testing.T) {
	ev := load[events.SNSEvent](t, "sns.json")
	var got *patterns.Message
	err := adapter.SNSHandler(func(ctx context.Context, m *patterns.Message) error { got = m; return nil })(context.Background(), ev)
	if err != nil || got == nil || string(got.Body) != `{"order":3}` || got.Attr("color") != "orange" || got.CorrelationID != "c-3" {
		t.Fatalf("SNS record: %+v, %v", got, err)
	}
	err = adapter.SNSHandler(func(context.Context, *patterns.Message) error { return errors.New("no") })(context.Background(), ev)
	if err == nil {
		t.Error("a failed SNS record must fail the invocation (SNS retries it)")
	}
}
