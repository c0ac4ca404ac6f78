package perf

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/internal/check"
	"github.com/courier-aws/courier/patterns"
)

// The fault suite: producers and consumers talk to the emulator through an
// in-process toxiproxy that adds latency with jitter, resets connections,
// stalls them, and goes down for seconds at a time. A total-queue checker
// (after Jepsen's) then holds them to what courier promises: every message
// a producer reported sent is handled at least once; nothing appears that
// no producer tried to send; duplicates are counted; FIFO groups keep
// their order. Sends that returned an error are indeterminate: they may or
// may not appear.

// faultProxy is a toxiproxy in front of the emulator.
type faultProxy struct {
	p *toxiproxy.Proxy
}

func newFaultProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	host := strings.TrimPrefix(strings.TrimPrefix(upstream, "http://"), "https://")
	p := toxiproxy.NewProxy(srv, "emulator", "127.0.0.1:0", host)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{p: p}
}

func (f *faultProxy) endpoint() string { return "http://" + f.p.Listen }

func (f *faultProxy) add(t *testing.T, name, typ, stream string, toxicity float64, attrs string) {
	t.Helper()
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":%g,"attributes":%s}`, name, typ, stream, toxicity, attrs)
	if _, err := f.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		t.Fatalf("toxic %s: %v", name, err)
	}
}

func (f *faultProxy) remove(name string) { _ = f.p.Toxics.RemoveToxic(context.Background(), name) }

// down takes the endpoint away for d: connections refused and cut.
func (f *faultProxy) down(d time.Duration) {
	f.p.Stop()
	time.Sleep(d)
	_ = f.p.Start()
}

// schedule runs the faults one after another while the workload runs:
// latency with jitter, connection resets, stalled connections (timeouts),
// the endpoint down for 3 s; then all clear.
func (f *faultProxy) schedule(t *testing.T, ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		step := func(d time.Duration) bool {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(d):
				return true
			}
		}
		f.add(t, "latency", "latency", "downstream", 1, `{"latency":80,"jitter":60}`)
		if !step(1500 * time.Millisecond) {
			return
		}
		f.add(t, "reset", "reset_peer", "upstream", 0.3, `{"timeout":20}`)
		if !step(1500 * time.Millisecond) {
			return
		}
		f.remove("reset")
		f.add(t, "stall", "timeout", "downstream", 0.3, `{"timeout":0}`)
		if !step(1500 * time.Millisecond) {
			return
		}
		f.remove("stall")
		f.down(3 * time.Second)
		f.remove("latency")
	}()
	return done
}

// throughProxy returns clients whose requests go through the proxy, with
// a client timeout (a stalled connection must fail, not hang) and the
// SDK's standard retryer.
// Keep-alive is off so that every request opens a connection, which the
// toxics then hit with their probability.
func throughProxy(b *backend.Backend, f *faultProxy, ct *countingTransport) (*sqs.Client, *sns.Client) {
	cfg := b.Config()
	ct.next = &http.Transport{DisableKeepAlives: true}
	cfg.HTTPClient = &http.Client{Timeout: 3 * time.Second, Transport: ct}
	// Set on the client's options: the loader's endpoint is a config
	// source that would win over cfg.BaseEndpoint.
	proxied := aws.String(f.endpoint())
	sq := sqs.NewFromConfig(cfg, ct.install, func(o *sqs.Options) { o.BaseEndpoint = proxied })
	sn := sns.NewFromConfig(cfg, func(o *sns.Options) {
		o.BaseEndpoint = proxied
		o.APIOptions = append(o.APIOptions, ct.countOps)
	})
	return sq, sn
}

// checker is the total-queue checker of internal/check, with the FAULTS
// line this suite prints.
type checker struct{ *check.Checker }

func newChecker() *checker { return &checker{check.New()} }

func (c *checker) sendResult(msgs []*patterns.Message, err error) { c.SendResult(msgs, err) }

// handle records a handling; for FIFO, body is "group:seq".
func (c *checker) handle(body string) { c.Handle(body) }

func (c *checker) allHandled() bool { return c.AllHandled() }

// report checks the promises and prints the counts.
// orderHolds: whether the backend keeps a FIFO group's order when a
// receive is lost (its messages then come back after the visibility
// timeout): moto delivers the group's later messages meanwhile
// (Capabilities.FIFOOrderAfterVisibilityExpiry; localstack/FIDELITY.md).
func (c *checker) report(t *testing.T, scenario string, fifo bool, orderHolds ...bool) {
	t.Helper()
	mayBreak := len(orderHolds) > 0 && !orderHolds[0]
	n, violations := c.Check(check.Options{FIFO: fifo, AllowDuplicates: true, OrderMayBreak: mayBreak})
	fmt.Printf("FAULTS %s sent=%d indeterminate=%d handled=%d duplicates=%d unexpected=%d lost=%d\n",
		scenario, n.Sent, n.Indeterminate, n.Handled, n.Duplicates, n.Unexpected, n.Lost)
	recordFaults(scenario, n)
	for _, v := range violations {
		t.Errorf("%s: %s", scenario, v)
	}
	if n.Sent == 0 {
		t.Errorf("%s: nothing was reported sent: the faults left no workload", scenario)
	}
	if fifo && mayBreak {
		if _, strict := c.Check(check.Options{FIFO: true, AllowDuplicates: true}); len(strict) > 0 {
			t.Logf("%s: FIFO order broken, as this backend does after a lost receive (FIFOOrderAfterVisibilityExpiry): %v", scenario, strict)
		}
	}
}

// runFaultScenario sends n messages (batches of 10, from several senders)
// and consumes them, both through the proxy, while the faults run.
func runFaultScenario(t *testing.T, b *backend.Backend, scenario string, fifo bool) {
	f := newFaultProxy(t, aws.ToString(b.Config().BaseEndpoint))
	ct := &countingTransport{}
	sqsClient, _ := throughProxy(b, f, ct)
	q := b.CreateQueue(t, backend.QueueOptions{FIFO: fifo, ContentDedup: fifo, VisibilityTimeout: 5 * time.Second})
	ck := newChecker()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := patterns.NewConsumer(sqsClient, q.URL, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet()
		o.VisibilityTimeout = 5 * time.Second
	})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConsumer := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- c.Run(cctx, func(_ context.Context, m *patterns.Message) error { ck.handle(string(m.Body)); return nil })
	}()

	faults := f.schedule(t, ctx)
	p, err := patterns.NewProducer(sqsClient, q.URL)
	if err != nil {
		t.Fatal(err)
	}
	const senders, batches = 4, 12
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range batches {
				var msgs []*patterns.Message
				for j := range 10 {
					m := &patterns.Message{Body: []byte(fmt.Sprintf("s%d-%03d", s, i*10+j))}
					if fifo {
						m.Body = []byte(fmt.Sprintf("g%d:%d", s, i*10+j))
						m.GroupID = fmt.Sprint("g", s)
					}
					msgs = append(msgs, m)
				}
				err := p.Send(ctx, msgs...)
				ck.sendResult(msgs, err)
				if fifo && err != nil {
					return // a FIFO sender stops its group at the first failure, to keep order
				}
				time.Sleep(150 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	<-faults
	deadline := time.Now().Add(45 * time.Second)
	for !ck.allHandled() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stopConsumer()
	if err := <-consumed; err != nil && ctx.Err() == nil {
		t.Logf("consumer: %v", err)
	}
	ck.report(t, scenario+"/"+b.Name, fifo, b.Caps.FIFOOrderAfterVisibilityExpiry)
	ct.felt(t, scenario+"/"+b.Name)
}

func TestFaultsOneWay(t *testing.T) {
	t.Parallel()
	backend.Each(t, func(t *testing.T, b *backend.Backend) { b.NeedSocket(t); runFaultScenario(t, b, "oneway", false) })
}

func TestFaultsFIFO(t *testing.T) {
	t.Parallel()
	backend.Each(t, func(t *testing.T, b *backend.Backend) { b.NeedSocket(t); runFaultScenario(t, b, "fifo", true) })
}

// Fan-out: the publisher goes through the faults; each chained queue gets
// every message reported published.
func TestFaultsFanOut(t *testing.T) {
	t.Parallel()
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		f := newFaultProxy(t, aws.ToString(b.Config().BaseEndpoint))
		ct := &countingTransport{}
		_, snsClient := throughProxy(b, f, ct)
		topic := b.CreateTopic(t, false, nil)
		var queues []string
		for i := range 2 {
			q := b.CreateQueue(t, backend.QueueOptions{})
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = i == 0 }); err != nil {
				t.Fatal(err)
			}
			queues = append(queues, q.URL)
		}
		pub, err := patterns.NewPublisher(snsClient, topic)
		if err != nil {
			t.Fatal(err)
		}
		checkers := []*checker{newChecker(), newChecker()}
		faults := f.schedule(t, ctx)
		for i := range 30 {
			var msgs []*patterns.Message
			for j := range 10 {
				msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf("event-%03d", i*10+j))})
			}
			err := pub.Publish(ctx, msgs...)
			for _, ck := range checkers {
				ck.sendResult(msgs, err)
			}
			time.Sleep(150 * time.Millisecond)
		}
		<-faults
		for i, q := range queues {
			ck := checkers[i]
			c, err := patterns.NewConsumer(b.SQS(), q, func(o *patterns.ConsumerOptions) {
				o.WaitTime = time.Second
				o.Logger = quiet()
			})
			if err != nil {
				t.Fatal(err)
			}
			cctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- c.Run(cctx, func(_ context.Context, m *patterns.Message) error { ck.handle(string(m.Body)); return nil })
			}()
			for deadline := time.Now().Add(30 * time.Second); !ck.allHandled() && time.Now().Before(deadline); {
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(time.Second)
			stop()
			<-done
			ck.report(t, fmt.Sprintf("fanout-queue%d/%s", i, b.Name), false)
		}
		ct.felt(t, "fanout/"+b.Name)
	})
}

// countingTransport counts attempts at the transport and answers every
// n-th with a ThrottlingException, as SQS does when a queue's API rate is
// exceeded.
type countingTransport struct {
	next     http.RoundTripper
	attempts atomic.Int64 // HTTP requests
	failures atomic.Int64 // of those, refused, cut or timed out
	ops      atomic.Int64 // operations the SDK was asked for
	every    int64
	injected atomic.Int64
}

// install counts the operations of an SQS client (before its retries).
func (c *countingTransport) install(o *sqs.Options) { o.APIOptions = append(o.APIOptions, c.countOps) }

func (c *countingTransport) countOps(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("courier-perf-ops",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.ops.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// felt prints what the faults did to the requests, and fails a scenario
// whose faults never touched a request (it would prove nothing).
func (c *countingTransport) felt(t *testing.T, scenario string) {
	t.Helper()
	ops, attempts, failures := c.ops.Load(), c.attempts.Load(), c.failures.Load()
	fmt.Printf("FAULTS %s operations=%d attempts=%d failed_attempts=%d\n", scenario, ops, attempts, failures)
	if failures == 0 {
		t.Errorf("%s: no request failed: the faults were not felt", scenario)
	}
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.attempts.Add(1)
	if c.every > 0 && n%c.every == 0 {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		c.injected.Add(1)
		body := `{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded (injected)"}`
		return &http.Response{
			StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Query-Error": {"ThrottlingException;Sender"}},
			Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		}, nil
	}
	resp, err := c.next.RoundTrip(r)
	if err != nil || resp.StatusCode >= 500 {
		c.failures.Add(1)
	}
	return resp, err
}

// Throttling: every third request is refused with ThrottlingException. The
// SDK's retryer retries with backoff; nothing reported sent is lost, and
// the requests made stay within twice the operations asked for.
func TestFaultsThrottling(t *testing.T) {
	t.Parallel()
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		ct := &countingTransport{next: http.DefaultTransport, every: 3}
		cfg := b.Config()
		cfg.HTTPClient = &http.Client{Transport: ct, Timeout: 10 * time.Second}
		client := sqs.NewFromConfig(cfg, ct.install)
		q := b.CreateQueue(t, backend.QueueOptions{})
		ck := newChecker()
		p, err := patterns.NewProducer(client, q.URL)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			var msgs []*patterns.Message
			for j := range 10 {
				msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf("job-%03d", i*10+j))})
			}
			ck.sendResult(msgs, p.Send(context.Background(), msgs...))
		}
		c, err := patterns.NewConsumer(client, q.URL, func(o *patterns.ConsumerOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet()
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- c.Run(ctx, func(_ context.Context, m *patterns.Message) error { ck.handle(string(m.Body)); return nil })
		}()
		for deadline := time.Now().Add(45 * time.Second); !ck.allHandled() && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(time.Second)
		stop()
		<-done
		ck.report(t, "throttling/"+b.Name, false)
		attempts, asked := ct.attempts.Load(), ct.ops.Load()
		amp := float64(attempts) / float64(asked)
		fmt.Printf("FAULTS throttling/%s operations=%d attempts=%d injected=%d amplification=%.2f\n", b.Name, asked, attempts, ct.injected.Load(), amp)
		if ct.injected.Load() == 0 || attempts <= asked {
			t.Errorf("no throttling was injected or retried (%d attempts for %d operations)", attempts, asked)
		}
		if amp > 2 {
			t.Errorf("request amplification %.2f > 2 under one throttle in three", amp)
		}
	})
}
