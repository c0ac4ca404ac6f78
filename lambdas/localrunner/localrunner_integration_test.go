package localrunner_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/internal/lambdatest"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

func send(t *testing.T, b *backend.Backend, url string, bodies ...string) []string {
	t.Helper()
	p, err := patterns.NewProducer(b.SQS(), url)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*patterns.Message
	for _, body := range bodies {
		msgs = append(msgs, &patterns.Message{Body: []byte(body)})
	}
	if err := p.Send(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	return ids
}

// Deletes only the successes: the records the response names come back
// after their visibility timeout (received a second time), the others are
// gone.
func TestPartialBatchResponse(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 2 * time.Second})
		send(t, b, q.URL, "ok-1", "fail-1", "ok-2", "fail-2", "ok-3")
		var mu sync.Mutex
		seen := map[string][]string{} // body -> ApproximateReceiveCount of each delivery
		handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			var resp events.SQSEventResponse
			mu.Lock()
			defer mu.Unlock()
			for _, r := range ev.Records {
				seen[r.Body] = append(seen[r.Body], r.Attributes["ApproximateReceiveCount"])
				if r.Body[:4] == "fail" && len(seen[r.Body]) == 1 {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return resp, nil
		}
		r := lambdatest.Start(t, b, localrunner.Config{QueueURL: q.URL, ReportBatchItemFailures: true, FunctionTimeout: 2 * time.Second}, handler)
		lambdatest.WaitFor(t, "all five deleted", func() bool { return r.Stats().Deleted == 5 })
		r.Stop()
		mu.Lock()
		defer mu.Unlock()
		for body, counts := range seen {
			want := []string{"1"}
			if body[:4] == "fail" {
				want = []string{"1", "2"} // reported once, delivered again
			}
			if !slices.Equal(counts, want) {
				t.Errorf("%s delivered with receive counts %v, want %v", body, counts, want)
			}
		}
		if st := r.Stats(); st.Reported != 2 || st.BatchFailures != 0 {
			t.Errorf("stats %+v: want 2 reported, no batch failure", st)
		}
	})
}

// A handler error, a panic, a timeout or an invalid response fail the whole
// batch: nothing is deleted, everything comes back.
func TestWholeBatchFailures(t *testing.T) {
	tests := []struct {
		name    string
		handler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)
		want    error // what Invocation.Err wraps, when the runner makes it
	}{
		{name: "handler error", handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, errors.New("down")
		}},
		{name: "panic", handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			panic("boom")
		}},
		{name: "timeout", want: patterns.ErrTimeout, handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			time.Sleep(1500 * time.Millisecond) // ignores ctx, past FunctionTimeout
			return events.SQSEventResponse{}, nil
		}},
		{name: "unknown item identifier", want: localrunner.ErrInvalidResponse, handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "no-such-id"}}}, nil
		}},
	}
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 30 * time.Second})
				send(t, b, q.URL, "a", "b", "c")
				r := lambdatest.Start(t, b, localrunner.Config{QueueURL: q.URL, ReportBatchItemFailures: true, FunctionTimeout: time.Second}, tt.handler)
				lambdatest.WaitFor(t, "an invocation with all three", func() bool { return r.Stats().Received == 3 && r.Stats().Invocations >= 1 })
				lambdatest.WaitFor(t, "three invocations of one record or one of three", func() bool {
					n := 0
					for _, i := range r.Invocations() {
						n += len(i.MessageIDs)
					}
					return n == 3
				})
				r.Stop()
				st := r.Stats()
				if st.Deleted != 0 || st.BatchFailures != st.Invocations {
					t.Errorf("stats %+v: nothing may be deleted, every invocation fails", st)
				}
				for _, i := range r.Invocations() {
					if i.Err == nil || (tt.want != nil && !errors.Is(i.Err, tt.want)) || !slices.Equal(i.Failed, i.MessageIDs) {
						t.Errorf("invocation %+v: want the whole batch failed (err wrapping %v)", i, tt.want)
					}
				}
				if _, inflight := b.Counts(t, q.URL); inflight != 3 {
					t.Errorf("%d in flight, want all 3 (they come back after the visibility timeout)", inflight)
				}
			})
		}
	})
}

// Without ReportBatchItemFailures the response is ignored, as Lambda does:
// records reported failed are deleted too.
func TestResponseIgnoredWithoutReportBatchItemFailures(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{})
		send(t, b, q.URL, "a", "b")
		handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[0].MessageId}}}, nil
		}
		r := lambdatest.Start(t, b, localrunner.Config{QueueURL: q.URL}, handler)
		lambdatest.WaitFor(t, "both deleted", func() bool { return r.Stats().Deleted == 2 })
		r.Stop()
		if st := r.Stats(); st.Reported != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// A batching window gathers up to BatchSize records from several polls;
// without one, a batch is what one poll returns.
func TestBatchingWindow(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		for _, tt := range []struct {
			name      string
			cfg       localrunner.Config
			wantFirst int
		}{
			{"window 3s, batch 25", localrunner.Config{BatchSize: 25, MaximumBatchingWindow: 3 * time.Second}, 25},
			{"no window, batch 10", localrunner.Config{BatchSize: 10}, 10},
		} {
			t.Run(tt.name, func(t *testing.T) {
				q := b.CreateQueue(t, backend.QueueOptions{})
				var bodies []string
				for i := range 30 {
					bodies = append(bodies, strconv.Itoa(i))
				}
				send(t, b, q.URL, bodies...)
				cfg := tt.cfg
				cfg.QueueURL = q.URL
				noop := func(ctx context.Context, ev events.SQSEvent) error { return nil }
				r := lambdatest.Start(t, b, cfg, noop)
				lambdatest.WaitFor(t, "all 30 deleted", func() bool { return r.Stats().Deleted == 30 })
				r.Stop()
				all := r.Invocations()
				largest := 0
				for _, i := range all {
					largest = max(largest, len(i.MessageIDs))
				}
				if largest > cfg.BatchSize {
					t.Errorf("a batch of %d records, BatchSize is %d", largest, cfg.BatchSize)
				}
				if cfg.MaximumBatchingWindow > 0 && len(all[0].MessageIDs) != tt.wantFirst {
					// 30 were queued before the first poll: the window fills the batch.
					t.Errorf("first batch has %d records, want %d", len(all[0].MessageIDs), tt.wantFirst)
				}
			})
		}
	})
}

// The invocation gets the JSON Lambda sends and a context like the
// runtime's: a deadline at the function timeout and a LambdaContext.
func TestInvocationPayloadAndContext(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{})
		p, _ := patterns.NewProducer(b.SQS(), q.URL)
		m := &patterns.Message{Body: []byte("hello"), CorrelationID: "c-1"}
		m.SetAttr("color", "orange")
		if err := p.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		type seen struct {
			payload  []byte
			deadline time.Duration
			lc       *lambdacontext.LambdaContext
		}
		got := make(chan seen, 1)
		var h rawHandler = func(ctx context.Context, payload []byte) ([]byte, error) {
			d, _ := ctx.Deadline()
			lc, _ := lambdacontext.FromContext(ctx)
			got <- seen{payload, time.Until(d), lc}
			return nil, nil
		}
		r := lambdatest.Start(t, b, localrunner.Config{QueueURL: q.URL, FunctionTimeout: 5 * time.Second, FunctionName: "worker"}, h)
		var s seen
		select {
		case s = <-got:
		case <-time.After(60 * time.Second):
			t.Fatal("no invocation")
		}
		r.Stop()
		if s.deadline <= 0 || s.deadline > 5*time.Second {
			t.Errorf("deadline in %v, want within the 5s function timeout", s.deadline)
		}
		if s.lc == nil || s.lc.AwsRequestID == "" || s.lc.InvokedFunctionArn == "" {
			t.Errorf("lambda context %+v", s.lc)
		}
		var ev struct {
			Records []struct {
				MessageID         string            `json:"messageId"`
				Body              string            `json:"body"`
				Attributes        map[string]string `json:"attributes"`
				MessageAttributes map[string]struct {
					StringValue      string   `json:"stringValue"`
					StringListValues []string `json:"stringListValues"`
					DataType         string   `json:"dataType"`
				} `json:"messageAttributes"`
				EventSource    string `json:"eventSource"`
				EventSourceARN string `json:"eventSourceARN"`
				AWSRegion      string `json:"awsRegion"`
				MD5OfBody      string `json:"md5OfBody"`
			} `json:"Records"`
		}
		if err := json.Unmarshal(s.payload, &ev); err != nil || len(ev.Records) != 1 {
			t.Fatalf("payload %s: %v", s.payload, err)
		}
		rec := ev.Records[0]
		switch {
		case rec.MessageID != m.ID, rec.Body != "hello", rec.EventSource != "aws:sqs", rec.EventSourceARN != q.ARN,
			rec.AWSRegion != "us-east-1", rec.MD5OfBody != "5d41402abc4b2a76b9719d911017c592":
			t.Errorf("record %+v", rec)
		case rec.Attributes["ApproximateReceiveCount"] != "1" || rec.Attributes["SentTimestamp"] == "":
			t.Errorf("system attributes %v", rec.Attributes)
		case rec.MessageAttributes["color"].StringValue != "orange" || rec.MessageAttributes["color"].StringListValues == nil:
			t.Errorf("message attributes %+v", rec.MessageAttributes)
		case rec.MessageAttributes["courier"].StringValue != "cid=c-1":
			t.Errorf("courier header %+v", rec.MessageAttributes["courier"])
		}
	})
}

// rawHandler is a lambda.Handler: it sees the payload bytes.
type rawHandler func(ctx context.Context, payload []byte) ([]byte, error)

func (h rawHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return h(ctx, payload)
}

// As CreateEventSourceMapping: a queue whose visibility timeout is below
// the function timeout is refused.
func TestVisibilityBelowFunctionTimeout(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 2 * time.Second})
		r, err := localrunner.New(b.SQS(), localrunner.Config{QueueURL: q.URL, FunctionTimeout: 3 * time.Second, Logger: lambdatest.Discard()})
		if err != nil {
			t.Fatal(err)
		}
		err = r.Run(context.Background(), func(context.Context, events.SQSEvent) error { return nil })
		if !errors.Is(err, patterns.ErrInvalidConfig) {
			t.Errorf("Run = %v, want ErrInvalidConfig", err)
		}
		r, _ = localrunner.New(b.SQS(), localrunner.Config{QueueURL: q.URL + "-gone", Logger: lambdatest.Discard()})
		if err := r.Run(context.Background(), func(context.Context, events.SQSEvent) error { return nil }); !errors.Is(err, patterns.ErrNotFound) {
			t.Errorf("Run on a missing queue = %v, want ErrNotFound", err)
		}
	})
}

// MaxConcurrency pollers invoke at once, never more; every message is
// handled and deleted.
func TestConcurrentPollers(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{})
		var bodies []string
		for i := range 40 {
			bodies = append(bodies, strconv.Itoa(i))
		}
		send(t, b, q.URL, bodies...)
		var mu sync.Mutex
		running, peak := 0, 0
		seen := map[string]int{}
		handler := func(ctx context.Context, ev events.SQSEvent) error {
			mu.Lock()
			running++
			peak = max(peak, running)
			for _, r := range ev.Records {
				seen[r.Body]++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		}
		r := lambdatest.Start(t, b, localrunner.Config{QueueURL: q.URL, BatchSize: 5, MaxConcurrency: 4}, handler)
		lambdatest.WaitFor(t, "all 40 deleted", func() bool { return r.Stats().Deleted == 40 })
		r.Stop()
		mu.Lock()
		defer mu.Unlock()
		if peak > 4 {
			t.Errorf("%d invocations at once, MaxConcurrency is 4", peak)
		}
		if len(seen) != 40 {
			t.Errorf("%d distinct messages handled, want 40", len(seen))
		}
	})
}
