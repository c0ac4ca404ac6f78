package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/lambdas/functions"
	"github.com/courier-aws/courier/lambdas/internal/lambdatest"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// deploy builds function name as its main package does (functions.New
// with its environment), wrapped by the adapter as lambda.Start gets it,
// and logging JSON to logs.
func deploy(t *testing.T, name string, env map[string]string, d functions.Deps, logs *lambdatest.Logs) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	log, err := functions.NewLogger(logs, getenv)
	if err != nil {
		t.Fatal(err)
	}
	d.Log = log
	h, err := functions.New(name, getenv, d)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := functions.AdapterOptions(name, getenv, d)
	if err != nil {
		t.Fatal(err)
	}
	return adapter.SQSHandler(h, append(opts, adapter.WithLogger(lambdatest.Discard()))...)
}

// runnerConfig is an event source mapping as infra makes one: partial
// batch responses on.
func runnerConfig(url string, timeout time.Duration) localrunner.Config {
	return localrunner.Config{QueueURL: url, ReportBatchItemFailures: true, FunctionTimeout: timeout}
}

func sendAll(t *testing.T, b *backend.Backend, url string, msgs ...*patterns.Message) {
	t.Helper()
	p, err := patterns.NewProducer(b.SQS(), url)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// The worker, one-way: every job handled once and deleted; a job that is
// not JSON reported failed in each partial batch response until the
// redrive policy moves it to the DLQ.
func TestWorkerFunction(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 2 * time.Second, MaxReceiveCount: 2})
		var msgs []*patterns.Message
		for i := range 25 {
			msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf(`{"job":%d}`, i))})
		}
		poison := &patterns.Message{Body: []byte("not json")}
		sendAll(t, b, q.URL, append(msgs, poison)...)
		var logs lambdatest.Logs
		cfg := runnerConfig(q.URL, 2*time.Second)
		cfg.BatchSize, cfg.MaximumBatchingWindow = 10, time.Second
		r := lambdatest.Start(t, b, cfg, deploy(t, "worker", nil, functions.Deps{}, &logs))
		var dead []types.Message
		lambdatest.WaitFor(t, "25 jobs deleted and the poison in the DLQ", func() bool {
			dead = append(dead, b.Drain(t, q.DLQURL, 100*time.Millisecond)...)
			return r.Stats().Deleted == 25 && len(dead) == 1
		})
		r.Stop()
		var want []string
		for _, m := range msgs {
			want = append(want, m.ID)
		}
		got := logs.Values("handled", "message_id")
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("worker logged %d handled ids, want the 25 sent once each:\n got %v\nwant %v", len(got), got, want)
		}
		if aws.ToString(dead[0].MessageId) != poison.ID {
			t.Errorf("DLQ holds %v, want the poison %s", aws.ToString(dead[0].Body), poison.ID)
		}
		if st := r.Stats(); st.Reported < 2 || st.BatchFailures != 0 {
			t.Errorf("stats %+v: the poison is reported failed on each of its two receives; no batch fails whole", st)
		}
	})
}

// The worker with COURIER_RETRY_BACKOFF: a poison job on a queue whose
// visibility timeout is 30 s comes back after the backoff (1 s, then 2 s)
// and reaches the DLQ after its three receives in seconds, not minutes.
func TestWorkerFunctionBackoff(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceiveCount: 3})
		poison := &patterns.Message{Body: []byte("not json")}
		sendAll(t, b, q.URL, poison)
		var logs lambdatest.Logs
		env := map[string]string{contract.EnvRetryBackoff: "1s,2s"}
		start := time.Now()
		r := lambdatest.Start(t, b, runnerConfig(q.URL, 2*time.Second), deploy(t, "worker", env, functions.Deps{SQS: b.SQS()}, &logs))
		var dead []types.Message
		lambdatest.WaitFor(t, "the poison in the DLQ", func() bool {
			dead = append(dead, b.Drain(t, q.DLQURL, 100*time.Millisecond)...)
			return len(dead) == 1
		})
		took := time.Since(start)
		r.Stop()
		if aws.ToString(dead[0].MessageId) != poison.ID {
			t.Errorf("DLQ holds %v, want the poison %s", aws.ToString(dead[0].Body), poison.ID)
		}
		// Two backoffs of at most 1 s and 2 s (jitter shortens them), not
		// two 30 s visibility timeouts.
		if took > 20*time.Second {
			t.Errorf("the poison took %v to reach the DLQ: the backoff did not shorten its visibility", took)
		}
		if st := r.Stats(); st.Reported != 3 {
			t.Errorf("stats %+v: the poison is reported failed on each of its three receives", st)
		}
	})
}

// The worker on a FIFO queue. A poison job fails every time; the adapter
// does what AWS asks of partial batch responses on FIFO queues (stop at
// the first failure, report it and everything after it), so nothing of
// its group runs after it.
//
// What then happens to the rest of the group is SQS's rule, and worth
// knowing: maxReceiveCount counts receives, not failures. With batches of
// one, a job behind the poison is not received while the poison is in
// flight: the poison alone goes to the DLQ and the group goes on in order.
// With larger batches, the jobs behind it come in the same batches, are
// reported unprocessed each time, and reach maxReceiveCount with it: they
// go to the DLQ unrun (redrive them once the poison is dealt with).
func TestWorkerFunctionFIFO(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		for _, batchSize := range []int{1, 10} {
			t.Run(fmt.Sprintf("batch=%d", batchSize), func(t *testing.T) {
				q := b.CreateQueue(t, backend.QueueOptions{FIFO: true, ContentDedup: true, VisibilityTimeout: 2 * time.Second, MaxReceiveCount: 2})
				var msgs []*patterns.Message
				for _, job := range []string{"a1", "b1", "a2", "b2", "a3", "b3"} {
					body := fmt.Sprintf(`{"job":%q}`, job)
					if job == "a2" {
						body = "not json: a2"
					}
					msgs = append(msgs, &patterns.Message{Body: []byte(body), GroupID: job[:1]})
				}
				sendAll(t, b, q.URL, msgs...)
				job := map[string]string{}
				for _, m := range msgs {
					job[m.ID] = string(m.Body)
				}
				var logs lambdatest.Logs
				cfg := runnerConfig(q.URL, 2*time.Second)
				cfg.BatchSize = batchSize
				r := lambdatest.Start(t, b, cfg, deploy(t, "worker", nil, functions.Deps{}, &logs))
				var dead []string
				lambdatest.WaitFor(t, "every job handled or dead-lettered", func() bool {
					for _, m := range b.Drain(t, q.DLQURL, 100*time.Millisecond) {
						dead = append(dead, job[aws.ToString(m.MessageId)])
					}
					return int(r.Stats().Deleted)+len(dead) == len(msgs)
				})
				r.Stop()
				var handled []string
				for _, id := range logs.Values("handled", "message_id") {
					handled = append(handled, job[id])
				}
				t.Logf("handled %v; dead-lettered %v", handled, dead)
				if len(handled)+len(dead) != len(msgs) {
					t.Errorf("%d handled + %d dead-lettered, want each of the %d jobs once", len(handled), len(dead), len(msgs))
				}
				if !slices.Contains(dead, "not json: a2") {
					t.Errorf("the poison a2 is not in the DLQ")
				}
				if !b.Caps.FIFOOrderAfterVisibilityExpiry {
					// moto redelivers a group's messages out of order after a
					// visibility timeout, so a3 may come before a2 again.
					t.Logf("%s lacks FIFOOrderAfterVisibilityExpiry: what follows the poison is not checked", b.Name)
					return
				}
				switch {
				case batchSize > 1 && slices.Contains(handled, `{"job":"a3"}`):
					t.Errorf("a3 ran after a2 failed")
				case batchSize > 1 && !slices.Contains(dead, `{"job":"a3"}`):
					t.Errorf("batches of ten: a3 shares the poison's receives and its DLQ, got %v", dead)
				case batchSize == 1 && len(dead) != 1:
					t.Errorf("batches of one: only the poison belongs in the DLQ, got %v", dead)
				}
				for _, g := range []string{"a", "b"} {
					var seq []string
					for _, body := range handled {
						if strings.Contains(body, `"`+g) {
							seq = append(seq, body)
						}
					}
					if !slices.IsSorted(seq) {
						t.Errorf("group %s handled out of order: %v", g, seq)
					}
				}
			})
		}
	})
}

// The filtered subscriber on a queue chained to a topic with a filter
// policy, with SNS envelopes and with raw delivery: it gets exactly the
// orange messages, unwrapped.
func TestSubscriberFunction(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		for _, raw := range []bool{false, true} {
			t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
				ctx := context.Background()
				topic := b.CreateTopic(t, false, nil)
				q := b.CreateQueue(t, backend.QueueOptions{})
				if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) {
					o.Raw = raw
					o.FilterPolicy = `{"color":["orange"]}`
				}); err != nil {
					t.Fatal(err)
				}
				pub, err := patterns.NewPublisher(b.SNS(), topic)
				if err != nil {
					t.Fatal(err)
				}
				var msgs []*patterns.Message
				for i, color := range []string{"blue", "red", "orange", "blue", "orange", "orange"} {
					m := &patterns.Message{Body: []byte(fmt.Sprintf("fruit %d is %s", i, color))}
					m.SetAttr("color", color)
					msgs = append(msgs, m)
				}
				if err := pub.Publish(ctx, msgs...); err != nil {
					t.Fatal(err)
				}
				var logs lambdatest.Logs
				r := lambdatest.Start(t, b, runnerConfig(q.URL, 3*time.Second), deploy(t, "subscriber", nil, functions.Deps{}, &logs))
				lambdatest.WaitFor(t, "three orange messages deleted", func() bool { return r.Stats().Deleted >= 3 })
				r.Stop()
				lines := logs.Lines("received")
				var bodies []string
				for _, l := range lines {
					bodies = append(bodies, l["body"].(string))
					attrs, _ := l["attributes"].(map[string]any)
					if attrs["color"] != "orange" {
						t.Errorf("the filter let through %v", l)
					}
					if topicARN, _ := l["topic"].(string); !raw && topicARN != topic {
						t.Errorf("envelope not unwrapped (topic %q): %v", topicARN, l)
					}
				}
				slices.Sort(bodies)
				if want := []string{"fruit 2 is orange", "fruit 4 is orange", "fruit 5 is orange"}; !slices.Equal(bodies, want) {
					t.Errorf("subscriber received %v, want %v", bodies, want)
				}
				if visible, inflight := b.Counts(t, q.URL); visible+inflight != 0 {
					t.Errorf("%d visible, %d in flight left on the queue", visible, inflight)
				}
			})
		}
	})
}

// The subscriber with COURIER_CLAIM_CHECK_BUCKET reads a payload published
// above SNS's 256 KiB limit through a claim check, enveloped and raw, and
// leaves the object for the topic's other subscriptions (the bucket's
// lifecycle rule removes it). Without the bucket it would log the pointer.
func TestSubscriberFunctionClaimCheck(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		bucket := b.CreateBucket(t)
		topic := b.CreateTopic(t, false, nil)
		enveloped, raw := b.CreateQueue(t, backend.QueueOptions{}), b.CreateQueue(t, backend.QueueOptions{})
		for _, q := range []struct {
			url string
			raw bool
		}{{enveloped.URL, false}, {raw.URL, true}} {
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.url, func(o *patterns.ChainOptions) { o.Raw = q.raw }); err != nil {
				t.Fatal(err)
			}
		}
		cc, err := patterns.NewClaimCheck(b.S3(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := patterns.NewPublisher(b.SNS(), topic, func(o *patterns.PublisherOptions) { o.ClaimCheck = cc })
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte("manifest line\n"), 300<<10/14)
		if err := pub.Publish(ctx, &patterns.Message{Body: body}); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{contract.EnvClaimCheckBucket: bucket}
		for _, q := range []string{enveloped.URL, raw.URL} {
			var logs lambdatest.Logs
			r := lambdatest.Start(t, b, runnerConfig(q, 5*time.Second), deploy(t, "subscriber", env, functions.Deps{S3: b.S3()}, &logs))
			lambdatest.WaitFor(t, "the large message deleted", func() bool { return r.Stats().Deleted >= 1 })
			r.Stop()
			lines := logs.Lines("received")
			if len(lines) != 1 {
				t.Fatalf("%d received lines, want 1", len(lines))
			}
			if n, _ := lines[0]["bytes"].(float64); int(n) != len(body) || !strings.HasPrefix(lines[0]["body"].(string), "manifest line") {
				t.Errorf("subscriber on %s got %v bytes starting %.40q, want the %d-byte payload", q, lines[0]["bytes"], lines[0]["body"], len(body))
			}
		}
		if objs := b.Objects(t, bucket); len(objs) != 1 {
			t.Errorf("bucket holds %v, want the one shared payload kept", objs)
		}
	})
}

// A bucket without an S3 client is a cold-start error, not a pointer
// handed to the handler as its body.
func TestSubscriberFunctionClaimCheckNeedsS3(t *testing.T) {
	getenv := func(k string) string { return map[string]string{contract.EnvClaimCheckBucket: "payloads"}[k] }
	if _, err := functions.AdapterOptions("subscriber", getenv, functions.Deps{}); !errors.Is(err, patterns.ErrInvalidConfig) || !strings.Contains(err.Error(), contract.EnvClaimCheckBucket) {
		t.Errorf("err = %v, want ErrInvalidConfig naming %s", err, contract.EnvClaimCheckBucket)
	}
}

// The responder answers a Requester's requests through the Lambda glue
// (its reply allowlist from COURIER_REPLY_ALLOWLIST), and does not answer
// a return address outside the allowlist, nor delete its request.
func TestResponderFunction(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		q := b.CreateQueue(t, backend.QueueOptions{})
		ref, _ := patterns.ParseQueueURL(q.URL)
		env := map[string]string{
			contract.EnvQueueURL:       q.URL,
			contract.EnvReplyAllowlist: "arn:aws:sqs:*:" + ref.Account + ":" + patterns.DefaultReplyQueuePrefix + "*",
		}
		var logs lambdatest.Logs
		r := lambdatest.Start(t, b, runnerConfig(q.URL, 5*time.Second), deploy(t, "responder", env, functions.Deps{SQS: b.SQS()}, &logs))

		req, err := patterns.NewRequester(b.SQS(), func(o *patterns.RequesterOptions) { o.Logger = lambdatest.Discard() })
		if err != nil {
			t.Fatal(err)
		}
		defer req.Close(context.Background())
		for i := range 5 {
			reply, err := req.Request(ctx, q.URL, &patterns.Message{Body: []byte(fmt.Sprint("ping ", i))})
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint("echo: ping ", i); string(reply.Body) != want {
				t.Errorf("reply %q, want %q", reply.Body, want)
			}
		}

		// A return address the allowlist does not name: not answered, and
		// reported failed (left to the queue's redrive policy), not deleted.
		other := b.CreateQueue(t, backend.QueueOptions{})
		// A reply can arrive before the runner has deleted its request.
		lambdatest.WaitFor(t, "the five requests deleted", func() bool { return r.Stats().Deleted >= 5 })
		before, deleted := r.Stats().Reported+r.Stats().BatchFailures, r.Stats().Deleted
		sendAll(t, b, q.URL, &patterns.Message{Body: []byte("to elsewhere"), CorrelationID: "c-other", ReturnAddress: other.URL})
		lambdatest.WaitFor(t, "the request reported failed", func() bool { s := r.Stats(); return s.Reported+s.BatchFailures > before })
		if got := r.Stats().Deleted; got != deleted {
			t.Errorf("the refused request was deleted (%d deletes, want %d)", got, deleted)
		}
		r.Stop()
		if got := b.Drain(t, other.URL, time.Second); len(got) != 0 {
			t.Errorf("the responder answered a return address outside its allowlist: %v", got)
		}
	})
}

// The aggregator groups responses by correlation id in its DynamoDB table
// and sends each completed aggregate once to the result queue. Here its
// aggregates were opened by no scatterer: a quorum of
// COURIER_EXPECTED_RESPONSES completes them.
func TestAggregatorFunction(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		table := b.CreateTable(t)
		responses := b.CreateQueue(t, backend.QueueOptions{})
		results := b.CreateQueue(t, backend.QueueOptions{})
		env := map[string]string{
			contract.EnvAggregateTable:    table,
			contract.EnvResultQueueURL:    results.URL,
			contract.EnvExpectedResponses: "3",
		}
		resp := func(cid, responder, body string) *patterns.Message {
			m := &patterns.Message{Body: []byte(body), CorrelationID: cid}
			if responder != "" {
				m.SetHeader(functions.ResponderHeader, responder)
			}
			return m
		}
		sendAll(t, b, responses.URL,
			resp("quote-A", "r1", `{"cents":100}`), resp("quote-B", "r1", `{"cents":7}`),
			resp("quote-A", "r2", `{"cents":90}`), resp("quote-A", "r2", `{"cents":90}`), // r2 answered twice: counts once
			resp("", "r9", "no correlation id"), resp("quote-B", "r2", `{"cents":8}`),
			resp("quote-A", "r3", `{"cents":95}`),
		)
		var logs lambdatest.Logs
		r := lambdatest.Start(t, b, runnerConfig(responses.URL, 5*time.Second),
			deploy(t, "aggregator", env, functions.Deps{SQS: b.SQS(), DynamoDB: b.DynamoDB()}, &logs))
		lambdatest.WaitFor(t, "all seven responses deleted", func() bool { return r.Stats().Deleted == 7 })
		r.Stop()
		got := b.Drain(t, results.URL, 2*time.Second)
		if len(got) != 1 {
			for _, m := range got {
				t.Logf("aggregate %s %v", aws.ToString(m.Body), aws.ToString(m.MessageAttributes[patterns.HeaderAttribute].StringValue))
			}
			for _, i := range r.Invocations() {
				t.Logf("invocation %v failed %v err %v", i.MessageIDs, i.Failed, i.Err)
			}
			t.Logf("logs %v", logs.Lines("completed"))
			t.Fatalf("%d aggregates on the result queue, want one (quote-A; quote-B has 2 of 3)", len(got))
		}
		var agg functions.Aggregate
		if err := json.Unmarshal([]byte(aws.ToString(got[0].Body)), &agg); err != nil {
			t.Fatal(err)
		}
		keys := map[string]string{}
		for _, r := range agg.Responses {
			keys[r.Responder] = r.Body
		}
		want := map[string]string{"r1": `{"cents":100}`, "r2": `{"cents":90}`, "r3": `{"cents":95}`}
		if agg.CorrelationID != "quote-A" || agg.Reason != "quorum" || !maps.Equal(keys, want) {
			t.Errorf("aggregate %+v", agg)
		}
		if h := aws.ToString(got[0].MessageAttributes[patterns.HeaderAttribute].StringValue); !strings.Contains(h, "cid=quote-A") {
			t.Errorf("the aggregate's courier header %q does not carry the correlation id", h)
		}
	})
}

// Scatter-gather as deployed: a Scatterer opens each aggregate in the
// DynamoDB table and sends the request to three responder queues; two run
// the responder function, the third nobody serves; two aggregator
// invocations at once (a concurrency of two) gather the responses. The
// deadline completes each aggregate once, with two responses and the
// third responder named missing.
func TestScatterGatherFunctions(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const n = 5
		table := b.CreateTable(t)
		responses := b.CreateQueue(t, backend.QueueOptions{})
		results := b.CreateQueue(t, backend.QueueOptions{})
		ref, _ := patterns.ParseQueueURL(responses.URL)
		var to []patterns.Destination
		for i := range 3 {
			q := b.CreateQueue(t, backend.QueueOptions{})
			to = append(to, patterns.Destination(q.URL))
			if i == 2 {
				continue // down
			}
			env := map[string]string{
				contract.EnvQueueURL:       q.URL,
				contract.EnvReplyAllowlist: "arn:aws:sqs:*:" + ref.Account + ":" + ref.Name,
			}
			var logs lambdatest.Logs
			lambdatest.Start(t, b, runnerConfig(q.URL, 5*time.Second), deploy(t, "responder", env, functions.Deps{SQS: b.SQS()}, &logs))
		}
		env := map[string]string{
			contract.EnvAggregateTable:    table,
			contract.EnvResultQueueURL:    results.URL,
			contract.EnvExpectedResponses: "3",
		}
		var logs lambdatest.Logs
		h := deploy(t, "aggregator", env, functions.Deps{SQS: b.SQS(), DynamoDB: b.DynamoDB()}, &logs)
		cfg := runnerConfig(responses.URL, 5*time.Second)
		cfg.BatchSize = 1 // one response per invocation: the two invocations race on each aggregate
		lambdatest.Start(t, b, cfg, h)
		lambdatest.Start(t, b, cfg, h)

		store, err := patterns.NewDynamoDBAggregateStore(b.DynamoDB(), table)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := patterns.NewScatterer(b.SQS(), nil, responses.URL, store)
		if err != nil {
			t.Fatal(err)
		}
		cids := map[string]bool{}
		for i := range n {
			cid, err := sc.Scatter(context.Background(), &patterns.Message{Body: []byte(fmt.Sprint("quote ", i))},
				// The deadline leaves the two live responders time to answer
				// on a loaded CI machine (2 s was too short under -race with
				// other packages running).
				patterns.ScatterOptions{To: to, Completion: patterns.Completion{Deadline: 6 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			cids[cid] = true
		}
		var got []functions.Aggregate
		lambdatest.WaitFor(t, "an aggregate per scatter on the result queue", func() bool {
			for _, m := range b.Drain(t, results.URL, 500*time.Millisecond) {
				var a functions.Aggregate
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &a); err != nil {
					t.Fatal(err)
				}
				got = append(got, a)
			}
			return len(got) >= n
		})
		time.Sleep(2 * time.Second) // anything sent twice would be there by now
		got = append(got, func() (out []functions.Aggregate) {
			for _, m := range b.Drain(t, results.URL, 500*time.Millisecond) {
				var a functions.Aggregate
				_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &a)
				out = append(out, a)
			}
			return out
		}()...)
		// Each aggregate completes once (the store's conditional write);
		// its result is sent at least once: a response or deadline message
		// SQS delivers twice (moto does under concurrent receives,
		// localstack/FIDELITY.md) may send the completed aggregate again,
		// and then it is the same aggregate.
		first := map[string]functions.Aggregate{}
		var unique []functions.Aggregate
		for _, a := range got {
			if prev, dup := first[a.CorrelationID]; dup {
				if !reflect.DeepEqual(prev, a) {
					t.Errorf("aggregate %s sent twice, differently: %+v and %+v", a.CorrelationID, prev, a)
				}
				t.Logf("aggregate %s sent again (a redelivered message)", a.CorrelationID)
				continue
			}
			first[a.CorrelationID] = a
			unique = append(unique, a)
		}
		if len(unique) != n {
			t.Fatalf("%d aggregates for %d scatters", len(unique), n)
		}
		for _, a := range unique {
			if !cids[a.CorrelationID] || a.Reason != "deadline" || len(a.Responses) != 2 || !slices.Equal(a.Missing, []string{string(to[2])}) {
				t.Errorf("aggregate %+v", a)
			}
			delete(cids, a.CorrelationID)
			for _, r := range a.Responses {
				if !strings.HasPrefix(r.Body, "echo: quote ") || (r.Responder != string(to[0]) && r.Responder != string(to[1])) {
					t.Errorf("response %+v", r)
				}
			}
		}
	})
}

// The worker with COURIER_IDEMPOTENCY_TABLE: a job SQS delivers twice
// (its visibility timeout expired before the delete) is handled once; the
// second delivery is acknowledged as already handled.
func TestWorkerFunctionIdempotent(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		table := b.CreateTable(t)
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: time.Second})
		sendAll(t, b, q.URL, &patterns.Message{Body: []byte(`{"job":"invoice 9"}`)})
		var logs lambdatest.Logs
		h := deploy(t, "worker", map[string]string{contract.EnvIdempotencyTable: table}, functions.Deps{DynamoDB: b.DynamoDB()}, &logs)
		receipts := map[string]bool{}
		for delivery := range 2 {
			var got []types.Message
			lambdatest.WaitFor(t, "the job delivered", func() bool {
				out, err := b.SQS().ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1, MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"},
				})
				if err != nil {
					t.Fatal(err)
				}
				got = out.Messages
				return len(got) == 1
			})
			receipts[aws.ToString(got[0].ReceiptHandle)] = true
			resp, err := h(context.Background(), localrunner.Event(got, q.ARN))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("delivery %d: %v %+v", delivery+1, err, resp)
			}
			// Not deleted: as if the delete were lost; it comes back.
		}
		if handled, skipped := len(logs.Lines("handled")), len(logs.Lines("courier: already handled; skipped")); len(receipts) != 2 || handled != 1 || skipped != 1 {
			t.Errorf("%d deliveries: handled %d times, skipped %d; want 2 deliveries, handled once", len(receipts), handled, skipped)
		}
	})
}
