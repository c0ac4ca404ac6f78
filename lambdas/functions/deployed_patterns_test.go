package functions_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/lambdas/functions"
	"github.com/courier-aws/courier/lambdas/internal/lambdatest"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// invoke calls a deployed function synchronously with event, as its event
// source mapping would, and returns its SQS batch response and the request
// id of the invocation (from the START line of the logs Lambda returns).
func invoke(ctx context.Context, d *deployment, function string, event any) (events.SQSEventResponse, string, error) {
	payload, err := json.Marshal(event)
	if err != nil {
		return events.SQSEventResponse{}, "", err
	}
	out, err := d.lam.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: payload, LogType: ltypes.LogTypeTail})
	if err != nil {
		return events.SQSEventResponse{}, "", err
	}
	if out.FunctionError != nil {
		return events.SQSEventResponse{}, "", fmt.Errorf("%s failed: %s: %s", function, aws.ToString(out.FunctionError), out.Payload)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out.Payload, &resp); err != nil {
		return resp, "", fmt.Errorf("%s answered %q: %w", function, out.Payload, err)
	}
	logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	m := startLine.FindSubmatch(logs)
	if m == nil {
		return resp, "", fmt.Errorf("%s: no START line in the invocation's logs %q", function, logs)
	}
	return resp, string(m[1]), nil
}

var startLine = regexp.MustCompile(`START RequestId: (\S+)`)

// The deployed responder (CourierCompute, fed by LocalStack's mapping on
// the Requests queue) answers a patterns.Requester: each reply is the
// function's echo of its request, on the Requester's own reply queue
// (courier-reply-*, which the deployed COURIER_REPLY_ALLOWLIST names). A
// return address outside the allowlist is refused: invoked with such a
// request, the function reports it failed and sends nothing.
func TestDeployedResponder(t *testing.T) {
	d := requireDeployment(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp := d.fn("responder")
	if resp.QueueURL != d.out["RequestsQueueUrl"] || resp.Env[contract.EnvQueueURL] != resp.QueueURL {
		t.Fatalf("the responder consumes %s with %s=%s; the deployment's request queue is %s",
			resp.QueueURL, contract.EnvQueueURL, resp.Env[contract.EnvQueueURL], d.out["RequestsQueueUrl"])
	}
	req, err := patterns.NewRequester(d.b.SQS(), func(o *patterns.RequesterOptions) { o.Logger = lambdatest.Discard() })
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close(context.Background())
	run := backend.UniqueName(t)
	for i := range 5 {
		start := time.Now()
		reply, err := req.Request(ctx, resp.QueueURL, &patterns.Message{Body: []byte(fmt.Sprintf("ping %d %s", i, run))})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if want := fmt.Sprintf("echo: ping %d %s", i, run); string(reply.Body) != want {
			t.Errorf("reply %q, want %q", reply.Body, want)
		}
		t.Logf("request %d answered by the deployed responder in %v", i, time.Since(start).Round(time.Millisecond))
	}
	if !strings.Contains(req.ReplyQueueURL(), "/"+patterns.DefaultReplyQueuePrefix) {
		t.Errorf("the replies came on %s, not a %s* queue", req.ReplyQueueURL(), patterns.DefaultReplyQueuePrefix)
	}

	// A request whose return address the allowlist does not name, given
	// to the deployed function as its mapping would give it: reported
	// failed (the queue's redrive policy deals with it), nothing sent.
	scratch := d.b.CreateQueue(t, backend.QueueOptions{})
	elsewhere := d.b.CreateQueue(t, backend.QueueOptions{})
	sendAll(t, d.b, scratch.URL, &patterns.Message{Body: []byte("to elsewhere"), CorrelationID: "c-" + run, ReturnAddress: elsewhere.URL})
	msgs := d.b.Drain(t, scratch.URL, time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d requests on the scratch queue, want 1", len(msgs))
	}
	out, _, err := invoke(ctx, d, resp.Name, localrunner.Event(msgs, queueARN(t, d.b, resp.QueueURL)))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.BatchItemFailures) != 1 || out.BatchItemFailures[0].ItemIdentifier != aws.ToString(msgs[0].MessageId) {
		t.Errorf("the deployed responder answered %+v, want the request to %s reported failed", out, elsewhere.URL)
	}
	if got := d.b.Drain(t, elsewhere.URL, time.Second); len(got) != 0 {
		t.Errorf("the deployed responder replied to %s, outside its allowlist: %v", elsewhere.URL, got)
	}
}

// queueARN returns the ARN of the queue at url.
func queueARN(t *testing.T, b *backend.Backend, url string) string {
	t.Helper()
	out, err := b.SQS().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// The deployed aggregator (on the Quotes response queue, with its DynamoDB
// table and result queue) completes scatter-gathers opened by a
// patterns.Scatterer on its table, each exactly once:
//
//   - through its mapping: two responders answer on the deployed response
//     queue and LocalStack's mapping invokes the function;
//   - with two invocations at once, one response each. LocalStack's SQS
//     mapping polls with one poller and invokes one batch at a time, so it
//     never runs two invocations of a function at once; the two are made
//     here with Invoke, each with the event the mapping would build from
//     its response. That they ran at once is read from LocalStack: it
//     gives an invocation the first idle execution environment of the
//     function and starts another only when none is idle, so two
//     invocations logging in two environments (two log streams) were in
//     flight together. Two environments are warmed first, so that both
//     handlers start at once and race on the aggregate. Should a busy
//     machine hold one back until the other is done, another scatter and
//     pair follow (three at most), each completed exactly once too.
func TestDeployedAggregator(t *testing.T) {
	d := requireDeployment(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	agg := d.fn("aggregator")
	table, results := agg.Env[contract.EnvAggregateTable], agg.Env[contract.EnvResultQueueURL]
	if table != d.out["AggregateTable"] || results != d.out["ResultsQueueUrl"] {
		t.Fatalf("the aggregator writes table %s and result queue %s; the deployment's are %s and %s",
			table, results, d.out["AggregateTable"], d.out["ResultsQueueUrl"])
	}
	store, err := patterns.NewDynamoDBAggregateStore(d.b.DynamoDB(), table)
	if err != nil {
		t.Fatal(err)
	}

	// Two responders (run here by the local runner: they are not under
	// test) answer on whatever return address a request names: the
	// deployed response queue, or a gather queue of this test's.
	gather := d.b.CreateQueue(t, backend.QueueOptions{})
	var to []patterns.Destination
	for range 2 {
		q := d.b.CreateQueue(t, backend.QueueOptions{})
		to = append(to, patterns.Destination(q.URL))
		env := map[string]string{contract.EnvQueueURL: q.URL, contract.EnvReplyAllowlist: agg.QueueURL + "," + gather.URL}
		var logs lambdatest.Logs
		lambdatest.Start(t, d.b, runnerConfig(q.URL, 5*time.Second), deploy(t, "responder", env, functions.Deps{SQS: d.b.SQS()}, &logs))
	}
	scatter := func(responseQueue string, i int) string {
		t.Helper()
		sc, err := patterns.NewScatterer(d.b.SQS(), nil, responseQueue, store)
		if err != nil {
			t.Fatal(err)
		}
		cid, err := sc.Scatter(ctx, &patterns.Message{Body: []byte(fmt.Sprint("quote ", i))}, patterns.ScatterOptions{To: to})
		if err != nil {
			t.Fatal(err)
		}
		return cid
	}

	// Through the mapping.
	viaMapping := scatter(agg.QueueURL, 1)
	got := awaitAggregates(t, d.b, results, viaMapping)
	checkAggregate(t, got[viaMapping], viaMapping, to)

	// Two invocations at once. A machine busy enough to hold one back
	// until the other is done shows no concurrency: then another scatter
	// and another pair, each of them completed exactly once too.
	arn := queueARN(t, d.b, agg.QueueURL) // what the mapping puts in each record
	for attempt := 1; ; attempt++ {
		cid := scatter(gather.URL, 1+attempt)
		concurrent, why := racePair(ctx, t, d, agg.Name, arn, gather.URL, cid, store, to)
		if concurrent {
			break
		}
		if attempt == 3 {
			t.Fatalf("three pairs of invocations, none seen running at once: %s", why)
		}
		t.Logf("attempt %d: %s; again", attempt, why)
	}
}

// racePair gives the two responses of aggregate cid (on the gather queue)
// to two invocations of the deployed aggregator at once, checks that the
// aggregate completed exactly once, and tells whether the two were in
// flight together (and if not, why not).
func racePair(ctx context.Context, t *testing.T, d *deployment, function, arn, gather, cid string, store *patterns.DynamoDBAggregateStore, to []patterns.Destination) (bool, string) {
	t.Helper()
	results := d.fn("aggregator").Env[contract.EnvResultQueueURL]
	var responses []types.Message
	lambdatest.WaitFor(t, "both responses on the gather queue", func() bool {
		responses = append(responses, d.b.Drain(t, gather, 500*time.Millisecond)...)
		return len(responses) >= 2
	})
	if len(responses) != 2 {
		t.Fatalf("%d responses, want 2", len(responses))
	}
	logs := newFunctionLogs(d.b)
	// Warm two execution environments (two empty invocations at once).
	since := time.Now()
	warmups := make([]string, 2)
	var wg sync.WaitGroup
	for i := range warmups {
		wg.Go(func() {
			var err error
			if _, warmups[i], err = invoke(ctx, d, function, events.SQSEvent{Records: []events.SQSMessage{}}); err != nil {
				t.Errorf("warming: %v", err)
			}
		})
	}
	wg.Wait()
	type result struct {
		resp       events.SQSEventResponse
		requestID  string
		start, end time.Time
		err        error
	}
	res := make([]result, 2)
	gate := make(chan struct{})
	for i := range 2 {
		wg.Go(func() {
			<-gate
			r := &res[i]
			r.start = time.Now()
			r.resp, r.requestID, r.err = invoke(ctx, d, function, localrunner.Event(responses[i:i+1], arn))
			r.end = time.Now()
		})
	}
	close(gate)
	wg.Wait()
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("invocation %d: %v", i, r.err)
		}
		if len(r.resp.BatchItemFailures) != 0 {
			t.Errorf("invocation %d reported %v failed", i, r.resp.BatchItemFailures)
		}
	}
	got := awaitAggregates(t, d.b, results, cid)
	checkAggregate(t, got[cid], cid, to)
	a, err := store.Get(ctx, cid)
	if err != nil || a == nil || !a.Complete() || !a.Processed || len(a.Responses) != 2 {
		t.Fatalf("the aggregate in the table: %+v, %v; want complete and processed with both responses", a, err)
	}
	if a.CompletedBy != aws.ToString(responses[0].MessageId) && a.CompletedBy != aws.ToString(responses[1].MessageId) {
		t.Errorf("completed by %q, not by one of the two responses", a.CompletedBy)
	}

	// Were the two in flight together? Each START line names its
	// execution environment by its log stream.
	ids := []string{res[0].requestID, res[1].requestID}
	evs := logs.waitLogs(t, function, since, 30*time.Second, "the START lines of both invocations", func(evs []logEvent) bool {
		n := 0
		for _, e := range evs {
			if m := startLine.FindStringSubmatch(e.Message); m != nil && slices.Contains(ids, m[1]) {
				n++
			}
		}
		return n == 2
	})
	streams := map[string]string{} // request id -> stream
	var others []string
	for _, e := range evs {
		if m := startLine.FindStringSubmatch(e.Message); m != nil {
			if slices.Contains(ids, m[1]) {
				streams[m[1]] = e.Stream
			} else if !slices.Contains(warmups, m[1]) {
				others = append(others, m[1])
			}
		}
	}
	t.Logf("aggregate %s: invocation 1 %s in %s, %v..%v; invocation 2 %s in %s, %v..%v; completed by %s",
		cid, ids[0], streams[ids[0]], res[0].start.Format("15:04:05.000"), res[0].end.Format("15:04:05.000"),
		ids[1], streams[ids[1]], res[1].start.Format("15:04:05.000"), res[1].end.Format("15:04:05.000"), a.CompletedBy)
	switch {
	case len(others) > 0:
		return false, fmt.Sprintf("other invocations of %s ran meanwhile (%v): the environments do not tell whether these two overlapped", function, others)
	case streams[ids[0]] == streams[ids[1]]:
		return false, fmt.Sprintf("both invocations ran in execution environment %s, one after the other", streams[ids[0]])
	}
	return true, ""
}

// awaitAggregates drains the result queue until an aggregate for each cid
// came, then a little longer (a second one would be there by then); it
// fails on a second aggregate for a cid. Other messages (other runs') are
// left on the queue.
func awaitAggregates(t *testing.T, b *backend.Backend, results string, cids ...string) map[string]functions.Aggregate {
	t.Helper()
	ctx := context.Background()
	got := map[string]functions.Aggregate{}
	var quiet time.Time
	deadline := time.Now().Add(90 * time.Second)
	for quiet.IsZero() || time.Now().Before(quiet) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for aggregates %v on %s (got %d)", cids, results, len(got))
		}
		r, err := b.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(results), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Messages {
			var a functions.Aggregate
			if json.Unmarshal([]byte(aws.ToString(m.Body)), &a) != nil || !slices.Contains(cids, a.CorrelationID) {
				_, _ = b.SQS().ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(results), ReceiptHandle: m.ReceiptHandle})
				continue
			}
			_, _ = b.SQS().DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(results), ReceiptHandle: m.ReceiptHandle})
			if _, dup := got[a.CorrelationID]; dup {
				t.Errorf("aggregate %s sent twice", a.CorrelationID)
			}
			got[a.CorrelationID] = a
		}
		if quiet.IsZero() && len(got) == len(cids) {
			quiet = time.Now().Add(3 * time.Second)
		}
	}
	return got
}

func checkAggregate(t *testing.T, a functions.Aggregate, cid string, to []patterns.Destination) {
	t.Helper()
	var who []string
	for _, r := range a.Responses {
		who = append(who, r.Responder)
		if !strings.HasPrefix(r.Body, "echo: quote ") {
			t.Errorf("aggregate %s: response %+v", cid, r)
		}
	}
	slices.Sort(who)
	want := []string{string(to[0]), string(to[1])}
	slices.Sort(want)
	if a.CorrelationID != cid || a.Reason != string(patterns.CompletedAll) || !slices.Equal(who, want) || len(a.Missing) != 0 {
		t.Errorf("aggregate %+v; want %s complete (all) with responses from %v", a, cid, want)
	}
}

// The deployed subscriber gets the large orders published to the Orders
// topic: one small enough for SNS through the "large" queue (the
// subscription filters on the body's total), and one above SNS's 256 KiB
// through the claim check: its body goes to the deployed OrderPayloads
// bucket, and its pointer, which has no total to filter on, through the
// "claimchecked" queue that the subscriber also consumes. The function
// reads the payload back (its own log line counts the whole body) and
// leaves the object for the topic's other subscriptions.
//
// Before CourierMessaging had the claimchecked queue, the pointer matched
// no subscription of the subscriber's and SNS dropped it: this test is
// what showed it.
func TestDeployedSubscriberClaimCheck(t *testing.T) {
	d := requireDeployment(t)
	t.Parallel()
	ctx := context.Background()
	sub := d.fn("subscriber")
	bucket := sub.Env[contract.EnvClaimCheckBucket]
	if bucket != d.out["OrderPayloadsBucket"] {
		t.Fatalf("the subscriber reads claim checks from %q; the deployment's bucket is %q", bucket, d.out["OrderPayloadsBucket"])
	}
	cc, err := patterns.NewClaimCheck(d.b.S3(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := patterns.NewPublisher(d.b.SNS(), d.out["OrdersTopicArn"], func(o *patterns.PublisherOptions) { o.ClaimCheck = cc })
	if err != nil {
		t.Fatal(err)
	}
	run := backend.UniqueName(t)
	big := fmt.Sprintf(`{"order":"big-%s","total":5000,"lines":%q}`, run, strings.Repeat("pallet of bricks;", 300<<10/17))
	small := fmt.Sprintf(`{"order":"small-%s","total":1500}`, run)
	if len(big) <= 256<<10 {
		t.Fatalf("the big order is %d bytes: not above SNS's limit", len(big))
	}
	before := objects(t, d.b, bucket)
	since := time.Now()
	if err := pub.Publish(ctx, &patterns.Message{Body: []byte(big)}, &patterns.Message{Body: []byte(small)}); err != nil {
		t.Fatal(err)
	}
	logs := newFunctionLogs(d.b)
	got := map[string]float64{} // order -> bytes the subscriber logged
	received := func(evs []logEvent) bool {
		for _, e := range evs {
			if e.Msg() != "received" {
				continue
			}
			n, _ := e.JSON["bytes"].(float64)
			switch body := e.Str("body"); {
			case strings.Contains(body, "big-"+run):
				got["big"] = n
			case strings.Contains(body, "small-"+run):
				got["small"] = n
			}
		}
		return len(got) == 2
	}
	if _, ok := logs.pollLogs(t, sub.Name, since, 60*time.Second, received); !ok {
		if got["small"] != 0 {
			t.Fatalf("the small order reached the subscriber, the claim-checked one not in 60 s: SNS dropped its pointer "+
				"(a pointer body has no %q for the large orders' body filter: does a subscription take claim-checked orders to a queue of the subscriber?)", "total")
		}
		t.Fatalf("the subscriber logged %v of the two orders in 60 s", got)
	}
	// LocalStack re-serializes a body that a body filter policy looked at
	// (the small order comes with spaces after its colons); the claim
	// check's payload comes from S3 as published.
	if int(got["big"]) != len(big) {
		t.Errorf("the subscriber logged the big order with %v bytes, want %d (the payload read back through the claim check)", got["big"], len(big))
	}
	if after := objects(t, d.b, bucket); len(after) != len(before)+1 {
		t.Errorf("bucket %s held %d objects before and %d after: want the big order's payload kept", bucket, len(before), len(after))
	}
}

// objects lists the keys in bucket.
func objects(t *testing.T, b *backend.Backend, bucket string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.S3(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}
