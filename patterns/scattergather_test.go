package patterns_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// quote is a responder's answer in these tests: its name and the request,
// so that a response gathered into the wrong aggregate shows.
func quote(name string, req *patterns.Message) *patterns.Message {
	return &patterns.Message{Body: []byte(name + "|" + string(req.Body))}
}

// startQuoter runs a Responder on queueURL that answers scatter requests
// sent with responses to replyURL, after delay.
func startQuoter(t *testing.T, client patterns.SQSAPI, queueURL, replyURL string, delay time.Duration) *patterns.Responder {
	t.Helper()
	cfg := patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowReplyTo: []string{replyURL}}
	return startResponder(t, client, queueURL, cfg, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return quote(queueURL, req), nil
	})
}

// startScatterGather returns a ScatterGather on replyURL, running until the
// test ends.
func startScatterGather(t *testing.T, b *backend.Backend, replyURL string, cfg patterns.ScatterGatherOptions) *patterns.ScatterGather {
	t.Helper()
	if cfg.Consumer.Logger == nil {
		cfg.Consumer = quietOptions()
	}
	sg, err := patterns.NewScatterGather(b.SQS(), b.SNS(), replyURL, func(o *patterns.ScatterGatherOptions) { *o = cfg })
	if err != nil {
		t.Fatal(err)
	}
	runFor(t, sg.Run)
	return sg
}

func responders(a *patterns.Aggregate) []string {
	var out []string
	for _, r := range a.Responses {
		out = append(out, r.Responder)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// Five responders, one slower than the deadline and one dead: the deadline
// completes the aggregate with the three that answered and names the two
// that did not; the slow one's reply, when it comes, is ignored and
// counted as late.
func TestScatterGatherDeadline(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const deadline = 2 * time.Second
		replies := b.CreateQueue(t, backend.QueueOptions{})
		var qs []string
		for range 5 {
			qs = append(qs, b.CreateQueue(t, backend.QueueOptions{}).URL)
		}
		fast, slow, dead := qs[:3], qs[3], qs[4]
		for _, q := range fast {
			startQuoter(t, b.SQS(), q, replies.URL, 0)
		}
		startQuoter(t, b.SQS(), slow, replies.URL, deadline+time.Second)
		_ = dead // nobody consumes it

		sg := startScatterGather(t, b, replies.URL, patterns.ScatterGatherOptions{})
		var to []patterns.Destination
		for _, q := range qs {
			to = append(to, patterns.Destination(q))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		agg, err := sg.Gather(ctx, &patterns.Message{Body: []byte("quote: 3 widgets")},
			patterns.ScatterOptions{To: to, Completion: patterns.Completion{Deadline: deadline}})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < deadline {
			t.Errorf("completed after %v, before the %v deadline", took, deadline)
		}
		if agg.Reason != patterns.CompletedDeadline {
			t.Errorf("reason %q, want %q", agg.Reason, patterns.CompletedDeadline)
		}
		if got, want := responders(agg), sorted(fast...); !slices.Equal(got, want) {
			t.Errorf("answered: %v, want %v", got, want)
		}
		for _, r := range agg.Responses {
			if want := r.Responder + "|quote: 3 widgets"; string(r.Body) != want {
				t.Errorf("response %q, want %q", r.Body, want)
			}
		}
		if got, want := sorted(agg.Missing...), sorted(slow, dead); !slices.Equal(got, want) {
			t.Errorf("missing: %v, want %v", got, want)
		}
		// The slow reply comes after the deadline: ignored, counted.
		waitFor(t, 30*time.Second, "the slow responder's late reply", func() bool { return sg.Stats().Late == 1 })
		if s := sg.Stats(); s.Completed != 1 || s.Deadlines != 1 || s.Responses != 3 {
			t.Errorf("stats %+v: want 1 completed by deadline, 3 responses", s)
		}
	})
}

// 100 scatter-gathers at once over one response queue, to three
// responders each: every aggregate completes with exactly its three
// responses (each names the responder and echoes that aggregate's request).
func TestScatterGatherConcurrent(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const n = 100
		replies := b.CreateQueue(t, backend.QueueOptions{})
		var to []patterns.Destination
		var names []string
		for range 3 {
			q := b.CreateQueue(t, backend.QueueOptions{}).URL
			startQuoter(t, b.SQS(), q, replies.URL, 0)
			to, names = append(to, patterns.Destination(q)), append(names, q)
		}
		var processed atomic.Int64
		sg := startScatterGather(t, b, replies.URL, patterns.ScatterGatherOptions{
			Processor: func(context.Context, *patterns.Aggregate) error { processed.Add(1); return nil },
		})
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				body := fmt.Sprintf("request-%03d", i)
				agg, err := sg.Gather(ctx, &patterns.Message{Body: []byte(body)}, patterns.ScatterOptions{To: to})
				if err == nil {
					err = checkAggregate(agg, body, names)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", body, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if s := sg.Stats(); processed.Load() != n || s.Completed != n || s.Responses != 3*n || s.Late+s.Duplicates+s.Unknown != 0 {
			t.Errorf("processor called %d times, stats %+v; want %d aggregates of 3 responses, nothing ignored", processed.Load(), s, n)
		}
	})
}

// checkAggregate: complete because all answered, with one response from
// each of names, each to body.
func checkAggregate(agg *patterns.Aggregate, body string, names []string) error {
	if agg.Reason != patterns.CompletedAll || len(agg.Missing) != 0 {
		return fmt.Errorf("reason %q, missing %v", agg.Reason, agg.Missing)
	}
	if got, want := responders(agg), sorted(names...); !slices.Equal(got, want) {
		return fmt.Errorf("responders %v, want %v", got, want)
	}
	for _, r := range agg.Responses {
		if want := r.Responder + "|" + body; string(r.Body) != want {
			return fmt.Errorf("response %q, want %q", r.Body, want)
		}
	}
	return nil
}

// A scatter through an SNS topic fanned out to three responder queues,
// completed by a quorum of two: the aggregate has the first two answers,
// and the third is ignored as late. Responders named by ResponderOptions.Name.
func TestScatterGatherTopicQuorum(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		replies := b.CreateQueue(t, backend.QueueOptions{})
		topic := b.CreateTopic(t, false, nil)
		for i := range 3 {
			q := b.CreateQueue(t, backend.QueueOptions{}).URL
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q, func(o *patterns.ChainOptions) { o.Raw = i%2 == 0 }); err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("supplier-%d", i)
			cfg := patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowReplyTo: []string{replies.URL}, Name: name}
			startResponder(t, b.SQS(), q, cfg, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
				return quote(name, req), nil
			})
		}
		sg := startScatterGather(t, b, replies.URL, patterns.ScatterGatherOptions{})
		gctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		agg, err := sg.Gather(gctx, &patterns.Message{Body: []byte("rfq")},
			patterns.ScatterOptions{To: []patterns.Destination{patterns.Destination(topic)}, Completion: patterns.Completion{Quorum: 2}})
		if err != nil {
			t.Fatal(err)
		}
		// Responses that arrive in one receive are counted side by side:
		// the quorum may complete with the third one in it too.
		if agg.Reason != patterns.CompletedQuorum || len(agg.Responses) < 2 {
			t.Fatalf("reason %q with %d responses, want quorum of 2", agg.Reason, len(agg.Responses))
		}
		for _, r := range agg.Responses {
			if !strings.HasPrefix(r.Responder, "supplier-") || string(r.Body) != r.Responder+"|rfq" {
				t.Errorf("response %q from %q", r.Body, r.Responder)
			}
		}
		waitFor(t, 30*time.Second, "the third answer, late", func() bool { return sg.Stats().Late == 1 })
	})
}

// Bad input is refused before anything is sent or opened.
func TestScatterGatherRefuses(t *testing.T) {
	b, ok := backend.First()
	if !ok {
		t.Skip("no backend")
	}
	replies := b.CreateQueue(t, backend.QueueOptions{})
	topic := b.CreateTopic(t, false, nil)
	var rc patterns.RequestCounter
	sg, err := patterns.NewScatterGather(b.SQS(&rc), b.SNS(&rc), replies.URL, func(o *patterns.ScatterGatherOptions) { o.Consumer = quietOptions() })
	if err != nil {
		t.Fatal(err)
	}
	rc.Reset()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		req  *patterns.Message
		o    patterns.ScatterOptions
		want error
	}{
		{"no destinations", &patterns.Message{Body: []byte("x")}, patterns.ScatterOptions{}, patterns.ErrNoRecipients},
		{"topic without a rule", &patterns.Message{Body: []byte("x")}, patterns.ScatterOptions{To: []patterns.Destination{patterns.Destination(topic)}}, patterns.ErrNoCompletion},
		{"nil request", nil, patterns.ScatterOptions{To: []patterns.Destination{patterns.Destination(replies.URL)}}, patterns.ErrInvalidMessage},
		{"oversize", &patterns.Message{Body: bytes.Repeat([]byte("x"), patterns.MaxSQSMessageBytes+1)}, patterns.ScatterOptions{To: []patterns.Destination{patterns.Destination(replies.URL)}}, patterns.ErrMessageTooLarge},
		{"negative quorum", &patterns.Message{Body: []byte("x")}, patterns.ScatterOptions{To: []patterns.Destination{patterns.Destination(replies.URL)}, Completion: patterns.Completion{Quorum: -1}}, patterns.ErrInvalidConfig},
	} {
		if _, err := sg.Gather(ctx, c.req, c.o); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if n := rc.Total(); n != 0 {
		t.Errorf("%d requests sent for refused scatters", n)
	}
	if _, err := patterns.NewScatterGather(b.SQS(), b.SNS(), "https://example.com/not-a-queue"); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("bad response queue: %v", err)
	}
}

// Two aggregators (two processes, or two Lambda invocations) consume one
// response queue with a DynamoDB store: each aggregate is processed
// exactly once, whether completed by all answering, by a quorum (both
// aggregators may see it reached) or by its deadline message.
func TestAggregatorsDynamoDBExactlyOnce(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const n = 30
		table := b.CreateTable(t)
		replies := b.CreateQueue(t, backend.QueueOptions{})
		var to []patterns.Destination
		var names []string
		for range 3 {
			q := b.CreateQueue(t, backend.QueueOptions{}).URL
			startQuoter(t, b.SQS(), q, replies.URL, 0)
			startQuoter(t, b.SQS(), q, replies.URL, 0) // competing replicas
			to, names = append(to, patterns.Destination(q)), append(names, q)
		}
		dead := patterns.Destination(b.CreateQueue(t, backend.QueueOptions{}).URL) // nobody answers
		var (
			mu        sync.Mutex
			processed = map[string][]*patterns.Aggregate{}
			aggs      []*patterns.Aggregator
		)
		for range 2 {
			store, err := patterns.NewDynamoDBAggregateStore(b.DynamoDB(), table)
			if err != nil {
				t.Fatal(err)
			}
			a, err := patterns.NewAggregator(b.SQS(), replies.URL, store, func(_ context.Context, a *patterns.Aggregate) error {
				mu.Lock()
				defer mu.Unlock()
				processed[a.CorrelationID] = append(processed[a.CorrelationID], a)
				return nil
			}, func(o *patterns.AggregatorOptions) { o.ConsumerOptions = quietOptions() })
			if err != nil {
				t.Fatal(err)
			}
			runFor(t, a.Run)
			aggs = append(aggs, a)
		}
		store, err := patterns.NewDynamoDBAggregateStore(b.DynamoDB(), table)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := patterns.NewScatterer(b.SQS(), nil, replies.URL, store)
		if err != nil {
			t.Fatal(err)
		}
		// all three answer; a quorum of two (when a third answer is counted
		// before the quorum's completion is claimed, "all" wins: both held);
		// a deadline, with one destination that never answers.
		want := map[string][]patterns.CompletionReason{}
		bodies := map[string]string{}
		for i := range n {
			body := fmt.Sprintf("request-%02d", i)
			o := patterns.ScatterOptions{To: to}
			reasons := []patterns.CompletionReason{patterns.CompletedAll}
			switch i % 3 {
			case 1:
				o.Quorum, reasons = 2, []patterns.CompletionReason{patterns.CompletedQuorum, patterns.CompletedAll}
			case 2:
				// 6 s: the live responders must answer before the deadline
				// also on a loaded machine (moto took over 1 s under the
				// parallel backends' load); only the dead one is missing.
				o.To, o.Deadline, reasons = append(slices.Clone(to), dead), 6*time.Second, []patterns.CompletionReason{patterns.CompletedDeadline}
			}
			cid, err := sc.Scatter(context.Background(), &patterns.Message{Body: []byte(body)}, o)
			if err != nil {
				t.Fatal(err)
			}
			want[cid], bodies[cid] = reasons, body
		}
		waitFor(t, time.Minute, "every aggregate processed", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(processed) == n
		})
		// Let redeliveries and deadline messages come: nothing more may be processed.
		waitFor(t, time.Minute, "the response queue empty", func() bool {
			v, inflight := b.Counts(t, replies.URL)
			return v+inflight == 0
		})
		mu.Lock()
		defer mu.Unlock()
		var completed int64
		for _, a := range aggs {
			completed += a.Stats().Completed
		}
		if completed != n {
			t.Errorf("the aggregators completed %d aggregates, want %d", completed, n)
		}
		for cid, ps := range processed {
			if len(ps) != 1 {
				t.Errorf("%s processed %d times", cid, len(ps))
			}
			a := ps[0]
			if !slices.Contains(want[cid], a.Reason) {
				t.Errorf("%s completed by %q, want one of %q", cid, a.Reason, want[cid])
			}
			if a.Reason == patterns.CompletedDeadline && (len(a.Missing) != 1 || a.Missing[0] != string(dead)) {
				t.Errorf("%s: missing %v, want the dead destination", cid, a.Missing)
			}
			for _, r := range a.Responses {
				if string(r.Body) != r.Responder+"|"+bodies[cid] {
					t.Errorf("%s: response %q from %q", cid, r.Body, r.Responder)
				}
			}
			if a.Reason == patterns.CompletedAll {
				if err := checkAggregate(a, bodies[cid], names); err != nil {
					t.Errorf("%s: %v", cid, err)
				}
			}
		}
	})
}
