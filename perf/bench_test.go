package perf

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/awssnssqs"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

func benchEnabled(t *testing.T) {
	if os.Getenv("COURIER_BENCH") != "1" {
		t.Skip("benchmark: run with make bench (COURIER_BENCH=1)")
	}
}

// cannedSQS answers SQS's JSON protocol from memory: SendMessageBatch
// accepts every entry, ReceiveMessage returns ten messages, DeleteMessageBatch
// deletes every entry. It measures the client's own cost, with no network
// and no emulator.
type cannedSQS struct{ n atomic.Int64 }

const cannedBody = `{"order":42,"pad":"0123456789012345678901234567890123456789"}`

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func (c *cannedSQS) RoundTrip(r *http.Request) (*http.Response, error) {
	var in struct {
		Entries []struct {
			ID          string `json:"Id"`
			MessageBody string
		}
	}
	body, _ := io.ReadAll(r.Body)
	_ = r.Body.Close()
	_ = json.Unmarshal(body, &in)
	var out any
	switch target := r.Header.Get("X-Amz-Target"); target {
	case "AmazonSQS.SendMessageBatch":
		var ok []map[string]string
		for _, e := range in.Entries {
			ok = append(ok, map[string]string{"Id": e.ID, "MessageId": fmt.Sprint("m-", c.n.Add(1)), "MD5OfMessageBody": md5hex(e.MessageBody)})
		}
		out = map[string]any{"Successful": ok}
	case "AmazonSQS.ReceiveMessage":
		var msgs []map[string]any
		for range 10 {
			id := c.n.Add(1)
			msgs = append(msgs, map[string]any{"MessageId": fmt.Sprint("m-", id), "ReceiptHandle": fmt.Sprint("rh-", id),
				"Body": cannedBody, "MD5OfBody": md5hex(cannedBody), "Attributes": map[string]string{"ApproximateReceiveCount": "1"}})
		}
		out = map[string]any{"Messages": msgs}
	case "AmazonSQS.DeleteMessageBatch":
		var ok []map[string]string
		for _, e := range in.Entries {
			ok = append(ok, map[string]string{"Id": e.ID})
		}
		out = map[string]any{"Successful": ok}
	case "AmazonSQS.GetQueueAttributes":
		out = map[string]any{"Attributes": map[string]string{"VisibilityTimeout": "30"}}
	default:
		out = map[string]any{}
	}
	b, _ := json.Marshal(out)
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b))}, nil
}

const cannedQueue = "https://sqs.us-east-1.amazonaws.com/123456789012/bench"

func cannedClient() *sqs.Client {
	return sqs.New(sqs.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient: &http.Client{Transport: &cannedSQS{}}, BaseEndpoint: aws.String("https://sqs.us-east-1.amazonaws.com"),
	})
}

// courierRoundTrip sends n messages with a Producer and handles n with a
// Consumer, against the canned transport.
func courierRoundTrip(n int) {
	client := cannedClient()
	p, _ := patterns.NewProducer(client, cannedQueue)
	msgs := make([]*patterns.Message, 10)
	for i := 0; i < n; i += 10 {
		for j := range msgs {
			msgs[j] = &patterns.Message{Body: []byte(cannedBody)}
		}
		if err := p.Send(context.Background(), msgs...); err != nil {
			panic(err)
		}
	}
	c, _ := patterns.NewConsumer(client, cannedQueue, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet()
	})
	ctx, cancel := context.WithCancel(context.Background())
	var handled atomic.Int64
	_ = c.Run(ctx, func(context.Context, *patterns.Message) error {
		if handled.Add(1) == int64(n) {
			cancel()
		}
		return nil
	})
}

// sdkRoundTrip is the plain aws-sdk-go-v2 batched loop doing the same work.
func sdkRoundTrip(n int) {
	client := cannedClient()
	ctx := context.Background()
	for i := 0; i < n; i += 10 {
		entries := make([]types.SendMessageBatchRequestEntry, 10)
		for j := range entries {
			entries[j] = types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(cannedBody)}
		}
		if _, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(cannedQueue), Entries: entries}); err != nil {
			panic(err)
		}
	}
	for handled := 0; handled < n; {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(cannedQueue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			panic(err)
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
		for j, m := range out.Messages {
			entries[j] = types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), ReceiptHandle: m.ReceiptHandle}
		}
		if _, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(cannedQueue), Entries: entries}); err != nil {
			panic(err)
		}
		handled += len(out.Messages)
	}
}

func BenchmarkClientCourier(b *testing.B) {
	b.ReportAllocs()
	courierRoundTrip(max(b.N/10*10, 10))
}

func BenchmarkClientSDK(b *testing.B) {
	b.ReportAllocs()
	sdkRoundTrip(max(b.N/10*10, 10))
}

// cpuCost runs fn and returns the process CPU time (user+system) and
// allocations it took per message.
func cpuCost(n int, fn func(int)) (time.Duration, float64) {
	runtime.GC()
	var before, after syscall.Rusage
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	fn(n)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	runtime.ReadMemStats(&m1)
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	return cpu / time.Duration(n), float64(m1.Mallocs-m0.Mallocs) / float64(n)
}

// TestBenchClientCost: courier's Producer+Consumer vs the plain SDK
// batched loop, per message sent, received and deleted, on the canned
// transport. The best of five runs each.
func TestBenchClientCost(t *testing.T) {
	benchEnabled(t)
	const n = 20000
	// Best of five each, interleaved, so that a slow spell of the machine
	// (another process, a frequency change) hits both sides alike.
	var courierCPU, sdkCPU time.Duration
	var courierAllocs, sdkAllocs float64
	for i := range 5 {
		c, ca := cpuCost(n, courierRoundTrip)
		s, sa := cpuCost(n, sdkRoundTrip)
		if i == 0 || c < courierCPU {
			courierCPU, courierAllocs = c, ca
		}
		if i == 0 || s < sdkCPU {
			sdkCPU, sdkAllocs = s, sa
		}
	}
	t.Logf("courier %v/msg %.0f allocs; sdk %v/msg %.0f allocs", courierCPU, courierAllocs, sdkCPU, sdkAllocs)
	fmt.Printf("BENCH client_cpu_ratio_vs_sdk %.2f x\n", float64(courierCPU)/float64(sdkCPU))
	fmt.Printf("BENCH client_ns_per_message %d ns\n", courierCPU.Nanoseconds())
	fmt.Printf("BENCH client_sdk_ns_per_message %d ns\n", sdkCPU.Nanoseconds())
	fmt.Printf("BENCH client_allocs_per_message %.0f allocs\n", courierAllocs)
	fmt.Printf("BENCH client_sdk_allocs_per_message %.0f allocs\n", sdkAllocs)
}

// opCounter counts operations by name, with their start times.
type opCounter struct {
	mu    sync.Mutex
	count int
	at    []time.Time
}

func (c *opCounter) install(o *sqs.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("courier-perf-count",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.count++
				c.at = append(c.at, time.Now())
				c.mu.Unlock()
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}

// TestBenchIdle: an idle Consumer on an empty queue, long polling: the
// requests it makes per minute, from the spacing of its requests over 41 s
// (receives at 0, 20 and 40 s: 3 a minute).
func TestBenchIdle(t *testing.T) {
	benchEnabled(t)
	b := backend.Require(t, "localstack")
	q := b.CreateQueue(t, backend.QueueOptions{})
	var oc opCounter
	client := sqs.NewFromConfig(b.Config(), oc.install)
	c, err := patterns.NewConsumer(client, q.URL, func(o *patterns.ConsumerOptions) { o.Logger = quiet() })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 41*time.Second)
	defer cancel()
	_ = c.Run(ctx, func(context.Context, *patterns.Message) error { return nil })
	oc.mu.Lock()
	defer oc.mu.Unlock()
	at := oc.at[1:] // the first is GetQueueAttributes at start-up
	if len(at) < 2 {
		t.Fatalf("%d requests in 41 s", len(at))
	}
	perMinute := float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Minutes()
	t.Logf("%d requests after start-up, spaced over %v", len(at), at[len(at)-1].Sub(at[0]))
	fmt.Printf("BENCH idle_requests_per_minute %.2f req/min\n", perMinute)
}

// e2e sends n messages and handles them, returning the time taken and the
// requests made.
type e2eResult struct {
	took     time.Duration
	requests int
}

func runCourierE2E(t *testing.T, b *backend.Backend, n int) e2eResult {
	q := b.CreateQueue(t, backend.QueueOptions{})
	var oc opCounter
	client := sqs.NewFromConfig(b.Config(), oc.install)
	start := time.Now()
	p, _ := patterns.NewProducer(client, q.URL)
	msgs := make([]*patterns.Message, n)
	for i := range msgs {
		msgs[i] = &patterns.Message{Body: []byte(cannedBody)}
	}
	if err := p.Send(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	c, _ := patterns.NewConsumer(client, q.URL, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet()
	})
	ctx, cancel := context.WithCancel(context.Background())
	var handled atomic.Int64
	var took time.Duration
	_ = c.Run(ctx, func(context.Context, *patterns.Message) error {
		if handled.Add(1) == int64(n) {
			took = time.Since(start)
			cancel()
		}
		return nil
	})
	return e2eResult{took, oc.count}
}

func runGocloudE2E(t *testing.T, b *backend.Backend, n int) e2eResult {
	q := b.CreateQueue(t, backend.QueueOptions{})
	var oc opCounter
	client := sqs.NewFromConfig(b.Config(), oc.install)
	ctx := context.Background()
	start := time.Now()
	topic := awssnssqs.OpenSQSTopicV2(ctx, client, q.URL, &awssnssqs.TopicOptions{BodyBase64Encoding: awssnssqs.Never})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100) // gocloud batches concurrent sends
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := topic.Send(ctx, &pubsub.Message{Body: []byte(cannedBody)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	_ = topic.Shutdown(ctx)
	took := gocloudReceive(t, client, q.URL, n, start)
	return e2eResult{took, oc.count}
}

func runNaiveE2E(t *testing.T, b *backend.Backend, n int) e2eResult {
	q := b.CreateQueue(t, backend.QueueOptions{})
	var oc opCounter
	client := sqs.NewFromConfig(b.Config(), oc.install)
	ctx := context.Background()
	start := time.Now()
	for range n {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(cannedBody)}); err != nil {
			t.Fatal(err)
		}
	}
	for handled := 0; handled < n; {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
			handled++
		}
	}
	return e2eResult{time.Since(start), oc.count}
}

// TestBenchE2E: the same 1,000 messages sent and handled on the emulator
// by courier, by gocloud.dev/pubsub (awssnssqs) and by a naive SDK loop
// (one message per request), in the same run.
func TestBenchE2E(t *testing.T) {
	benchEnabled(t)
	b := backend.Require(t, "localstack")
	const n = 1000
	results := map[string]e2eResult{
		"courier": runCourierE2E(t, b, n),
		"gocloud": runGocloudE2E(t, b, n),
		"naive":   runNaiveE2E(t, b, n),
	}
	for _, name := range []string{"courier", "gocloud", "naive"} {
		r := results[name]
		t.Logf("%s: %d messages in %v, %d requests", name, n, r.took, r.requests)
		fmt.Printf("BENCH e2e_messages_per_second_%s %.0f msg/s\n", name, n/r.took.Seconds())
		fmt.Printf("BENCH e2e_requests_per_message_%s %.3f req/msg\n", name, float64(r.requests)/n)
	}
	fmt.Printf("BENCH e2e_throughput_ratio_vs_gocloud %.2f x\n", results["gocloud"].took.Seconds()/results["courier"].took.Seconds())
}

// The shapes of TestBenchShapes: how a service hands its messages over.
// Every shape sends shapeN messages of 200 bytes and handles them; the
// clock runs from the first send to the last message handled.
const (
	shapeSenders = 64 // goroutines of the concurrent shapes
	shapeBulk    = 100
)

var shapeBody = bytes.Repeat([]byte("x"), 200)

// shapeResult is one run of one shape.
type shapeResult struct {
	took     time.Duration
	requests int
	cpu      time.Duration // this process's CPU (user+system): the client's, the emulator runs apart
}

// measureShape runs fn with a fresh queue and a counting client.
func measureShape(t *testing.T, b *backend.Backend, n int, fn func(client *sqs.Client, url string, n int) time.Duration) shapeResult {
	q := b.CreateQueue(t, backend.QueueOptions{})
	var oc opCounter
	client := sqs.NewFromConfig(b.Config(), oc.install)
	runtime.GC()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	took := fn(client, q.URL, n)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	oc.mu.Lock()
	defer oc.mu.Unlock()
	return shapeResult{took: took, requests: oc.count, cpu: cpu}
}

// concurrently runs send from shapeSenders goroutines until n calls were
// made, one message each.
func concurrently(n int, send func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range shapeSenders {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				send(int(i))
			}
		})
	}
	wg.Wait()
}

// rawShape is the plain aws-sdk-go-v2 batched loop: SendMessageBatch of
// ten, one after the other, then ReceiveMessage of ten and
// DeleteMessageBatch until all are handled.
func rawShape(t *testing.T) func(*sqs.Client, string, int) time.Duration {
	return func(client *sqs.Client, url string, n int) time.Duration {
		ctx := context.Background()
		start := time.Now()
		for i := 0; i < n; i += 10 {
			entries := make([]types.SendMessageBatchRequestEntry, min(10, n-i))
			for j := range entries {
				entries[j] = types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(string(shapeBody))}
			}
			out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
			if err != nil || len(out.Failed) > 0 {
				t.Fatalf("raw send: %v %v", err, out)
			}
		}
		for handled := 0; handled < n; {
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) == 0 {
				continue
			}
			entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
			for j, m := range out.Messages {
				entries[j] = types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), ReceiptHandle: m.ReceiptHandle}
			}
			if _, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err != nil {
				t.Fatal(err)
			}
			handled += len(out.Messages)
		}
		return time.Since(start)
	}
}

// courierShape sends with a Producer, in Sends of shapeBulk messages
// (concurrent false) or from shapeSenders goroutines one message per Send,
// and handles with a Consumer.
func courierShape(t *testing.T, concurrent bool) func(*sqs.Client, string, int) time.Duration {
	return func(client *sqs.Client, url string, n int) time.Duration {
		ctx := context.Background()
		start := time.Now()
		p, err := patterns.NewProducer(client, url)
		if err != nil {
			t.Fatal(err)
		}
		if concurrent {
			concurrently(n, func(int) {
				if err := p.Send(ctx, &patterns.Message{Body: shapeBody}); err != nil {
					t.Error(err)
				}
			})
		} else {
			for i := 0; i < n; i += shapeBulk {
				msgs := make([]*patterns.Message, min(shapeBulk, n-i))
				for j := range msgs {
					msgs[j] = &patterns.Message{Body: shapeBody}
				}
				if err := p.Send(ctx, msgs...); err != nil {
					t.Fatal(err)
				}
			}
		}
		t.Logf("courier sent %d (concurrent %v) in %v", n, concurrent, time.Since(start))
		c, err := patterns.NewConsumer(client, url, func(o *patterns.ConsumerOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet()
		})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var handled atomic.Int64
		var took time.Duration
		_ = c.Run(rctx, func(context.Context, *patterns.Message) error {
			if handled.Add(1) == int64(n) {
				took = time.Since(start)
				cancel()
			}
			return nil
		})
		return took
	}
}

// gocloudShape sends with gocloud.dev/pubsub (awssnssqs): shapeBulk
// concurrent Sends at a time (it has no call taking many messages), or
// shapeSenders goroutines one Send after another; 10 receivers handle.
func gocloudShape(t *testing.T, concurrent bool) func(*sqs.Client, string, int) time.Duration {
	return func(client *sqs.Client, url string, n int) time.Duration {
		ctx := context.Background()
		start := time.Now()
		topic := awssnssqs.OpenSQSTopicV2(ctx, client, url, &awssnssqs.TopicOptions{BodyBase64Encoding: awssnssqs.Never})
		send := func(int) {
			if err := topic.Send(ctx, &pubsub.Message{Body: shapeBody}); err != nil {
				t.Error(err)
			}
		}
		if concurrent {
			concurrently(n, send)
		} else {
			for i := 0; i < n; i += shapeBulk {
				var wg sync.WaitGroup
				for j := i; j < min(i+shapeBulk, n); j++ {
					wg.Go(func() { send(j) })
				}
				wg.Wait()
			}
		}
		_ = topic.Shutdown(ctx)
		return gocloudReceive(t, client, url, n, start)
	}
}

// gocloudReceive receives n messages from url with gocloud.dev/pubsub,
// 10 receivers acking each (as many handlers as courier's Consumer runs by
// default), and returns the time from start to the n-th; 0 when it stopped
// short (a receive failed, which it logs).
func gocloudReceive(t *testing.T, client *sqs.Client, url string, n int, start time.Time) time.Duration {
	ctx := context.Background()
	sub := awssnssqs.OpenSubscriptionV2(ctx, client, url, &awssnssqs.SubscriptionOptions{Raw: true, WaitTime: time.Second})
	var handled atomic.Int64
	var took time.Duration
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var rg sync.WaitGroup
	for range 10 {
		rg.Go(func() {
			for {
				m, err := sub.Receive(rctx)
				if err != nil {
					if rctx.Err() == nil {
						t.Logf("gocloud receive: %v", err)
						cancel()
					}
					return
				}
				m.Ack()
				if handled.Add(1) == int64(n) {
					took = time.Since(start)
					cancel()
				}
			}
		})
	}
	rg.Wait()
	_ = sub.Shutdown(ctx)
	return took
}

// idleLatency returns the median time of one send with nothing else
// sending: a courier Send of one message, and, for the round trip it is
// measured against, a SendMessageBatch of one entry.
func idleLatency(t *testing.T, b *backend.Backend, rounds int) (courierP50, rawP50 time.Duration) {
	q := b.CreateQueue(t, backend.QueueOptions{})
	client := sqs.NewFromConfig(b.Config())
	p, err := patterns.NewProducer(client, q.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var cs, rs []time.Duration
	for range rounds {
		start := time.Now()
		if err := p.Send(ctx, &patterns.Message{Body: shapeBody}); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, time.Since(start))
		start = time.Now()
		if _, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL),
			Entries: []types.SendMessageBatchRequestEntry{{Id: aws.String("0"), MessageBody: aws.String(string(shapeBody))}}}); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, time.Since(start))
	}
	return median(cs), median(rs)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestBenchShapes: the ways a service sends, side by side on the emulator
// in one run, interleaved over three rounds (medians): the raw SDK batched
// loop, courier with Sends of 100 messages (bulk) and with 64 goroutines
// each sending one message per Send (concurrent), and gocloud.dev/pubsub
// in both shapes. COURIER_BENCH_SHAPE_N sets the messages per run
// (default 10,000).
func TestBenchShapes(t *testing.T) {
	benchEnabled(t)
	b := backend.Require(t, "localstack")
	n := 10000
	if s := os.Getenv("COURIER_BENCH_SHAPE_N"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil || n < 100 {
			t.Fatalf("COURIER_BENCH_SHAPE_N=%q: want a count of at least 100", s)
		}
	}
	shapes := []struct {
		name string
		fn   func(*sqs.Client, string, int) time.Duration
	}{
		{"raw", rawShape(t)},
		{"courier_bulk", courierShape(t, false)},
		{"courier_concurrent", courierShape(t, true)},
		{"gocloud_bulk", gocloudShape(t, false)},
		{"gocloud_concurrent", gocloudShape(t, true)},
	}
	// Ratios to the raw loop are taken within each round (the runs next to
	// each other) and their median reported: the machine's slow spells
	// move whole rounds, and would otherwise decide the ratio.
	runs := map[string][]shapeResult{}
	ratios := map[string][]float64{} // name/measure -> per round
	for round := range 3 {
		var raw shapeResult
		for _, s := range shapes {
			r := measureShape(t, b, n, s.fn)
			t.Logf("round %d %s: %v, %d requests, %v CPU", round, s.name, r.took, r.requests, r.cpu)
			if r.took == 0 {
				t.Logf("round %d %s stopped short: left out", round, s.name)
				continue
			}
			runs[s.name] = append(runs[s.name], r)
			if s.name == "raw" {
				raw = r
			} else if raw.took > 0 {
				ratios[s.name+"/throughput"] = append(ratios[s.name+"/throughput"], raw.took.Seconds()/r.took.Seconds())
				ratios[s.name+"/cpu"] = append(ratios[s.name+"/cpu"], float64(r.cpu)/float64(raw.cpu))
			}
		}
	}
	med := map[string]shapeResult{}
	for name, rs := range runs {
		var took, cpu, reqs []time.Duration
		for _, r := range rs {
			took, cpu, reqs = append(took, r.took), append(cpu, r.cpu), append(reqs, time.Duration(r.requests))
		}
		med[name] = shapeResult{took: median(took), cpu: median(cpu), requests: int(median(reqs))}
	}
	ratio := func(key string) float64 {
		v := slices.Clone(ratios[key])
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	for _, s := range shapes {
		r, ok := med[s.name]
		if !ok {
			t.Errorf("%s: no complete run", s.name)
			continue
		}
		fmt.Printf("BENCH e2e_shape_messages_per_second_%s %.0f msg/s\n", s.name, float64(n)/r.took.Seconds())
		fmt.Printf("BENCH e2e_shape_requests_per_message_%s %.3f req/msg\n", s.name, float64(r.requests)/float64(n))
		fmt.Printf("BENCH e2e_shape_client_cpu_per_message_%s %.0f us\n", s.name, float64(r.cpu.Microseconds())/float64(n))
		if s.name != "raw" {
			fmt.Printf("BENCH e2e_shape_throughput_ratio_vs_raw_%s %.2f x\n", s.name, ratio(s.name+"/throughput"))
			fmt.Printf("BENCH e2e_shape_client_cpu_ratio_vs_raw_%s %.2f x\n", s.name, ratio(s.name+"/cpu"))
		}
	}
	fmt.Printf("BENCH e2e_concurrent_throughput_ratio_vs_raw %.2f x\n", ratio("courier_concurrent/throughput"))
	fmt.Printf("BENCH e2e_bulk_throughput_ratio_vs_raw %.2f x\n", ratio("courier_bulk/throughput"))
	fmt.Printf("BENCH e2e_concurrent_requests_per_message %.3f req/msg\n", float64(med["courier_concurrent"].requests)/float64(n))
	courierP50, rawP50 := idleLatency(t, b, 101)
	fmt.Printf("BENCH send_latency_p50_idle_ms %.2f ms\n", float64(courierP50.Microseconds())/1000)
	fmt.Printf("BENCH send_latency_p50_idle_raw_round_trip_ms %.2f ms\n", float64(rawP50.Microseconds())/1000)
}
