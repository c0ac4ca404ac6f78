package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// coalesceQueue makes a queue on mem and returns its URL and the bodies
// stored in it, in the order stored.
func coalesceQueue(t *testing.T, mem *memaws.Server, name string) (string, func() []string) {
	t.Helper()
	attrs := map[string]string{}
	if strings.HasSuffix(name, ".fifo") {
		attrs = map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"}
	}
	q, err := mem.SQS().CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(q.QueueUrl)
	return url, func() []string {
		var out []string
		for _, m := range mem.Messages(url) {
			out = append(out, m.Body)
		}
		return out
	}
}

// countCalls counts the first attempts of op and applies fault to each.
func countCalls(op string, n *atomic.Int32, fault func(memaws.Call) memaws.Fault) memaws.Injector {
	return memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
		if c.Operation != op {
			return memaws.Fault{}
		}
		if c.Attempt == 1 {
			n.Add(1)
		}
		return fault(c)
	})
}

func delay(d time.Duration) func(memaws.Call) memaws.Fault {
	return func(memaws.Call) memaws.Fault { return memaws.Fault{Delay: d} }
}

// Sixty-four goroutines each sending one message share batches: the first
// goes alone, the others gather while it is in flight. One request per
// message before coalescing.
func TestProducerCoalescesConcurrentSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		url, stored := coalesceQueue(t, mem, "jobs")
		var requests atomic.Int32
		p, err := patterns.NewProducer(mem.SQS(memaws.WithFaults(countCalls("SendMessageBatch", &requests, delay(100*time.Millisecond)))), url)
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]*patterns.Message, 64)
		var wg sync.WaitGroup
		for i := range msgs {
			msgs[i] = &patterns.Message{Body: []byte(fmt.Sprintf("m%02d", i))}
			wg.Go(func() {
				if err := p.Send(context.Background(), msgs[i]); err != nil {
					t.Errorf("Send %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		for i, m := range msgs {
			if m.ID == "" {
				t.Errorf("message %d: no ID", i)
			}
		}
		if got := len(stored()); got != 64 {
			t.Errorf("stored %d messages, want 64", got)
		}
		// 1 alone, 3 full while it is in flight, 3 full and 1 of 3 after.
		if n := requests.Load(); n > 8 {
			t.Errorf("%d SendMessageBatch requests for 64 one-message Sends, want at most 8", n)
		}
	})
}

// Concurrent Publish calls share PublishBatch requests as Sends do.
func TestPublisherCoalescesConcurrentPublishes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		topic, err := mem.SNS().CreateTopic(context.Background(), &sns.CreateTopicInput{Name: aws.String("events")})
		if err != nil {
			t.Fatal(err)
		}
		var requests atomic.Int32
		pub, err := patterns.NewPublisher(mem.SNS(memaws.WithFaults(countCalls("PublishBatch", &requests, delay(100*time.Millisecond)))), aws.ToString(topic.TopicArn))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				m := &patterns.Message{Body: []byte(fmt.Sprint("e", i))}
				if err := pub.Publish(context.Background(), m); err != nil || m.ID == "" {
					t.Errorf("Publish %d: %v, ID %q", i, err, m.ID)
				}
			})
		}
		wg.Wait()
		if n := requests.Load(); n > 8 {
			t.Errorf("%d PublishBatch requests for 64 one-message Publishes, want at most 8", n)
		}
	})
}

// A Send with nothing else in flight goes at once: it takes one request's
// time, no linger. One that arrives while another is in flight waits for
// company at most the linger, not for the request in flight.
func TestSendAloneAddsNoLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		url, _ := coalesceQueue(t, mem, "jobs")
		const rtt = 50 * time.Millisecond
		var requests atomic.Int32
		p, err := patterns.NewProducer(mem.SQS(memaws.WithFaults(countCalls("SendMessageBatch", &requests, func(c memaws.Call) memaws.Fault {
			if strings.Contains(string(c.Body), "slow") {
				return memaws.Fault{Delay: time.Minute}
			}
			return memaws.Fault{Delay: rtt}
		}))), url)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.Send(context.Background(), &patterns.Message{Body: []byte("alone")}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != rtt {
			t.Errorf("a lone Send took %v, want one request (%v)", took, rtt)
		}

		slow := make(chan error)
		go func() { slow <- p.Send(context.Background(), &patterns.Message{Body: []byte("slow")}) }()
		synctest.Wait()
		start = time.Now()
		if err := p.Send(context.Background(), &patterns.Message{Body: []byte("behind")}); err != nil {
			t.Fatal(err)
		}
		if took, most := time.Since(start), rtt+10*time.Millisecond; took > most {
			t.Errorf("a Send while another was in flight took %v, want at most %v", took, most)
		}
		if err := <-slow; err != nil {
			t.Fatal(err)
		}
	})
}

// A Send whose context ends returns at once. Its message still waiting is
// withdrawn, never sent; one in a request shared with another caller is
// reported not sent (its outcome unknown) while the other caller gets its
// own result; a request no caller waits for any more is cancelled.
func TestSendHonoursItsOwnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		url, stored := coalesceQueue(t, mem, "jobs")
		var requests atomic.Int32
		p, err := patterns.NewProducer(mem.SQS(memaws.WithFaults(countCalls("SendMessageBatch", &requests, func(c memaws.Call) memaws.Fault {
			return memaws.Fault{Delay: 10 * time.Second}
		}))), url, func(o *patterns.ProducerOptions) { o.Concurrency = 1 })
		if err != nil {
			t.Fatal(err)
		}
		bg := context.Background()
		sendBy := func(d time.Duration, m *patterns.Message) (error, time.Duration) {
			ctx, cancel := context.WithTimeout(bg, d)
			defer cancel()
			start := time.Now()
			err := p.Send(ctx, m)
			return err, time.Since(start)
		}
		notSent := func(name string, err error, m *patterns.Message) {
			t.Helper()
			var se *patterns.SendError
			if !errors.As(err, &se) || len(se.Failed) != 1 || se.Failed[0].Message != m || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: %v, want a SendError naming it, context.DeadlineExceeded", name, err)
			}
			if m.ID != "" {
				t.Errorf("%s: reported not sent, yet has ID %q", name, m.ID)
			}
		}

		// Waiting behind a request in flight: withdrawn.
		first := &patterns.Message{Body: []byte("first")}
		firstDone := make(chan error)
		go func() { firstDone <- p.Send(bg, first) }()
		synctest.Wait()
		waiting := &patterns.Message{Body: []byte("waiting")}
		err, took := sendBy(time.Second, waiting)
		if took != time.Second {
			t.Errorf("waiting: Send returned after %v, want 1s (its deadline)", took)
		}
		notSent("waiting", err, waiting)

		// In a request with another caller's message: reported not sent;
		// the other caller gets its result when the request ends.
		shared := &patterns.Message{Body: []byte("shared")}
		other := &patterns.Message{Body: []byte("other")}
		var sharedErr, otherErr error
		var sharedTook time.Duration
		var wg sync.WaitGroup
		wg.Go(func() { sharedErr, sharedTook = sendBy(15*time.Second, shared) })
		wg.Go(func() { otherErr = p.Send(bg, other) })
		if err := <-firstDone; err != nil || first.ID == "" {
			t.Fatalf("first: %v", err)
		}
		wg.Wait()
		if sharedTook != 15*time.Second {
			t.Errorf("shared: Send returned after %v, want 15s (its deadline)", sharedTook)
		}
		notSent("shared", sharedErr, shared)
		if otherErr != nil || other.ID == "" {
			t.Errorf("other: %v, ID %q; want sent", otherErr, other.ID)
		}

		// Alone in a request: the request is cancelled with its caller.
		lone := &patterns.Message{Body: []byte("lone")}
		err, _ = sendBy(time.Second, lone)
		notSent("lone", err, lone)
		time.Sleep(time.Minute)
		got := stored()
		if slices.Contains(got, "waiting") || slices.Contains(got, "lone") {
			t.Errorf("stored %v: a withdrawn or cancelled message was sent", got)
		}
		if !slices.Contains(got, "other") || !slices.Contains(got, "first") {
			t.Errorf("stored %v: want first and other", got)
		}
		if n := requests.Load(); n != 3 {
			t.Errorf("%d requests, want 3 (first; shared with other; lone)", n)
		}
	})
}

// FIFO: concurrent Sends of one group are stored in the order they were
// made, one request in flight per group; when a message of the group is
// not sent, the group's messages waiting behind it are not sent either
// (ErrGroupStopped), other groups go on, and a Send made after the failure
// was reported is sent.
func TestFIFOConcurrentSendsKeepGroupOrder(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprint("first fails=", fail), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := memaws.New()
				url, stored := coalesceQueue(t, mem, "orders.fifo")
				var requests atomic.Int32
				p, err := patterns.NewProducer(mem.SQS(memaws.WithFaults(countCalls("SendMessageBatch", &requests, func(c memaws.Call) memaws.Fault {
					if !strings.Contains(string(c.Body), `"g-1"`) {
						return memaws.Fault{}
					}
					f := memaws.Fault{Delay: time.Second}
					if fail {
						f.FailEntries = map[int]memaws.EntryError{0: {Code: "InvalidParameterValue", SenderFault: true, Message: "injected"}}
					}
					return f
				}))), url)
				if err != nil {
					t.Fatal(err)
				}
				bodies := []string{"g-1", "g-2", "g-3", "h-1"}
				errs := make([]error, len(bodies))
				var wg sync.WaitGroup
				for i, b := range bodies {
					wg.Go(func() {
						errs[i] = p.Send(context.Background(), &patterns.Message{Body: []byte(b), GroupID: b[:1]})
					})
					synctest.Wait() // the order of the calls
				}
				wg.Wait()
				after := p.Send(context.Background(), &patterns.Message{Body: []byte("g-4"), GroupID: "g"})
				got := stored()
				if !fail {
					for i, err := range errs {
						if err != nil {
							t.Errorf("%s: %v", bodies[i], err)
						}
					}
					if want := []string{"h-1", "g-1", "g-2", "g-3", "g-4"}; !slices.Equal(got, want) {
						t.Errorf("stored %v, want %v", got, want)
					}
					return
				}
				if errs[0] == nil || errors.Is(errs[0], patterns.ErrGroupStopped) {
					t.Errorf("g-1: %v, want its refusal", errs[0])
				}
				for i := 1; i <= 2; i++ {
					if !errors.Is(errs[i], patterns.ErrGroupStopped) {
						t.Errorf("%s: %v, want ErrGroupStopped", bodies[i], errs[i])
					}
				}
				if errs[3] != nil || after != nil {
					t.Errorf("h-1: %v; g-4 after the failure: %v; want both sent", errs[3], after)
				}
				if want := []string{"h-1", "g-4"}; !slices.Equal(got, want) {
					t.Errorf("stored %v, want %v", got, want)
				}
			})
		})
	}
}

// A Send whose context ends while it sends its first batch itself sends
// no more: the rest of its messages are withdrawn, certainly not sent, so
// a claim check removes their objects at once; the objects of the
// messages in the request, whose outcome is unknown, stay.
func TestSendStopsWhenItsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		url, stored := coalesceQueue(t, mem, "jobs")
		bg := context.Background()
		if _, err := mem.S3().CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("claims")}); err != nil {
			t.Fatal(err)
		}
		cc, err := patterns.NewClaimCheck(mem.S3(), "claims", func(o *patterns.ClaimCheckOptions) { o.Always = true })
		if err != nil {
			t.Fatal(err)
		}
		var requests atomic.Int32
		p, err := patterns.NewProducer(mem.SQS(memaws.WithFaults(countCalls("SendMessageBatch", &requests, delay(10*time.Second)))), url,
			func(o *patterns.ProducerOptions) { o.Concurrency, o.ClaimCheck = 1, cc })
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]*patterns.Message, 25)
		for i := range msgs {
			msgs[i] = &patterns.Message{Body: []byte(fmt.Sprint("m", i))}
		}
		ctx, cancel := context.WithTimeout(bg, time.Second)
		defer cancel()
		start := time.Now()
		err = p.Send(ctx, msgs...)
		if took := time.Since(start); took != time.Second {
			t.Errorf("Send returned after %v, want 1s (its deadline)", took)
		}
		var se *patterns.SendError
		if !errors.As(err, &se) || len(se.Failed) != len(msgs) {
			t.Fatalf("Send: %v, want all %d reported not sent", err, len(msgs))
		}
		time.Sleep(time.Minute)
		if n := requests.Load(); n != 1 {
			t.Errorf("%d requests, want 1 (none after the context ended)", n)
		}
		if got := stored(); len(got) != 0 {
			t.Errorf("stored %v", got)
		}
		objs, err := mem.S3().ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("claims")})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(objs.Contents); n != 10 {
			t.Errorf("%d objects left, want 10 (those of the request in flight; the 15 withdrawn removed)", n)
		}
	})
}
