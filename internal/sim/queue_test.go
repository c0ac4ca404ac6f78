package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/check"
	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// debugLog logs to stderr when COURIER_SIM_DEBUG is set (a replayed seed).
func debugLog(name string) *slog.Logger {
	if os.Getenv("COURIER_SIM_DEBUG") == "" {
		return quietLog
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("client", name)
}

// world is one scenario's backend: a memaws Server, the switch that ends
// the faults, and the clients made so far.
type world struct {
	seed  uint64
	prof  Profile
	mem   *memaws.Server
	quiet atomic.Bool
	admin *sqs.Client // no faults: set-up and inspection
	n     int
}

func newWorld(seed uint64, prof Profile) *world {
	w := &world{seed: seed, prof: prof, mem: memaws.New()}
	w.admin = w.mem.SQS()
	return w
}

// client returns an SQS client with its own injector; retries 1..3 as the
// shape says.
func (w *world) client(name string, attempts int) (*sqs.Client, *Injector) {
	in := NewInjector(w.seed, name, w.prof, &w.quiet)
	return w.mem.SQS(memaws.WithFaults(in), func(o *memaws.ClientOptions) { o.RetryMaxAttempts = attempts }), in
}

// queue makes a queue (and its DLQ) with the given attributes.
func (w *world) queue(ctx context.Context, name string, fifo bool, vis time.Duration, maxReceive int) (url, dlqURL string, err error) {
	suffix := ""
	if fifo {
		suffix = ".fifo"
	}
	attrs := map[string]string{}
	if fifo {
		attrs["FifoQueue"] = "true"
		attrs["ContentBasedDeduplication"] = "true"
	}
	d, err := w.admin.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq" + suffix), Attributes: attrs})
	if err != nil {
		return "", "", err
	}
	qa, err := w.admin.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: d.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", err
	}
	main := map[string]string{"VisibilityTimeout": strconv.Itoa(int(vis / time.Second))}
	for k, v := range attrs {
		main[k] = v
	}
	rp, _ := json.Marshal(map[string]any{"deadLetterTargetArn": qa.Attributes["QueueArn"], "maxReceiveCount": maxReceive})
	main["RedrivePolicy"] = string(rp)
	q, err := w.admin.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + suffix), Attributes: main})
	if err != nil {
		return "", "", err
	}
	return *q.QueueUrl, *d.QueueUrl, nil
}

// drainDead marks every message in the DLQ as dead-lettered.
func (w *world) drainDead(ctx context.Context, dlq string, ck *check.Checker) error {
	for {
		out, err := w.admin.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 600})
		if err != nil {
			return err
		}
		if len(out.Messages) == 0 {
			return nil
		}
		for _, m := range out.Messages {
			ck.Dead(aws.ToString(m.Body))
			// Deleted, so that a FIFO DLQ's next group comes up.
			if _, err := w.admin.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(dlq), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
		}
	}
}

// decide is a deterministic coin for a handler: the same message on the
// same receive gets the same answer.
func decide(seed uint64, body string, receive int, salt string) float64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%d\x00%s", seed, body, receive, salt)
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// queueScenario is one-way (one consumer), competing consumers (several)
// or FIFO groups: senders send, consumers handle, some consumers die, and
// the checker judges.
type queueScenario struct {
	kind string // "oneway", "competing", "fifo"
}

func (s queueScenario) run(ctx context.Context, seed uint64) (check.Counts, []string) {
	r := Shape(seed)
	prof := draw(r)
	w := newWorld(seed, prof)
	fifo := s.kind == "fifo"
	vis := time.Duration(5+r.IntN(56)) * time.Second
	maxReceive := 4 + r.IntN(7)
	url, dlq, err := w.queue(ctx, "sim", fifo, vis, maxReceive)
	if err != nil {
		return check.Counts{}, []string{"set-up: " + err.Error()}
	}
	ck := check.New()
	var found findings
	violate := found.add

	// Shape.
	consumers := 1
	if s.kind == "competing" || (fifo && r.IntN(2) == 0) {
		consumers = 2 + r.IntN(2)
	}
	senders := 1 + r.IntN(3)
	perSender := 3 + r.IntN(25)
	failRate := r.Float64() * 0.25
	slowRate := r.Float64() * 0.15
	workers := 1 + r.IntN(4)
	attempts := 1 + r.IntN(3)
	deaths := r.IntN(3) // consumers that die during the run
	var deathAt []time.Duration
	for range deaths {
		deathAt = append(deathAt, time.Duration(r.IntN(120))*time.Second)
	}
	var backoff func(int) time.Duration
	if r.IntN(3) == 0 {
		backoff = patterns.ExponentialBackoff(time.Second, 2*vis)
	}

	handler := func(name string, in *Injector) patterns.Handler {
		return func(hctx context.Context, m *patterns.Message) error {
			body := string(m.Body)
			if decide(seed, body, m.ReceiveCount, "slow") < slowRate {
				// Slower than the visibility timeout: the heartbeat must keep it.
				t := time.NewTimer(vis + time.Duration(decide(seed, body, m.ReceiveCount, "d")*float64(vis)))
				select {
				case <-t.C:
				case <-hctx.Done():
					t.Stop()
					return hctx.Err()
				}
			}
			if in.Dead() {
				return errors.New("process died")
			}
			if decide(seed, body, m.ReceiveCount, "fail") < failRate {
				return errors.New("handler failed (injected)")
			}
			ck.Handle(body)
			return nil
		}
	}

	type running struct {
		in     *Injector
		cancel context.CancelFunc
		done   chan error
	}
	var mu sync.Mutex
	var live []*running
	start := func(name string) {
		client, in := w.client(name, attempts)
		log := debugLog(name)
		c, err := patterns.NewConsumer(client, url, func(o *patterns.ConsumerOptions) {
			o.Workers = workers
			o.Logger = log
			o.Backoff = backoff
			o.ShutdownTimeout = 5 * time.Second
			o.CallTimeout = 3 * time.Second
		})
		if err != nil {
			violate("consumer config: %v", err)
			return
		}
		cctx, cancel := context.WithCancel(ctx)
		rn := &running{in: in, cancel: cancel, done: make(chan error, 1)}
		go func() {
			err := c.Run(cctx, handler(name, in))
			if cctx.Err() == nil {
				violate("consumer %s stopped by itself: %v", name, err)
			}
			rn.done <- err
		}()
		mu.Lock()
		live = append(live, rn)
		mu.Unlock()
	}
	for i := range consumers {
		start("consumer-" + strconv.Itoa(i))
	}

	// Deaths: at each time, the oldest live consumer dies (its calls hang,
	// its handlers stop short), and a new one takes its place.
	var deathsDone sync.WaitGroup
	for i, at := range deathAt {
		deathsDone.Go(func() {
			time.Sleep(at)
			mu.Lock()
			if len(live) == 0 {
				mu.Unlock()
				return
			}
			victim := live[0]
			live = live[1:]
			mu.Unlock()
			victim.in.Kill()
			victim.cancel()
			<-victim.done
			start("replacement-" + strconv.Itoa(i))
		})
	}

	// Senders. In half the scenarios (drawn apart from the shape, so that
	// the other draws of a seed stay as they were) many goroutines each
	// Send one message at a time, back to back: the Producer coalesces
	// them into shared batches, under the same faults.
	oneByOne := decide(seed, "", 0, "one-by-one") < 0.5
	concurrency := 4
	if oneByOne {
		senders += 3 + int(decide(seed, "", 0, "senders")*6)
		concurrency = 1 + int(decide(seed, "", 0, "concurrency")*4)
	}
	prodClient, _ := w.client("producer", attempts)
	p, err := patterns.NewProducer(prodClient, url, func(o *patterns.ProducerOptions) { o.Logger, o.Concurrency = quietLog, concurrency })
	if err != nil {
		return check.Counts{}, []string{"producer: " + err.Error()}
	}
	var sent sync.WaitGroup
	for sIdx := range senders {
		batch := 1 + r.IntN(10)
		pause := time.Duration(r.IntN(3000)) * time.Millisecond
		if oneByOne {
			batch, pause = 1, 0
		}
		sent.Go(func() {
			for i := 0; i < perSender; i += batch {
				var msgs []*patterns.Message
				for j := i; j < min(i+batch, perSender); j++ {
					m := &patterns.Message{Body: []byte(fmt.Sprintf("s%d-%d", sIdx, j))}
					if fifo {
						g := fmt.Sprintf("g%d", sIdx)
						m.Body, m.GroupID = []byte(fmt.Sprintf("%s:%d", g, j)), g
					}
					msgs = append(msgs, m)
				}
				sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := p.Send(sctx, msgs...)
				cancel()
				ck.SendResult(msgs, err)
				time.Sleep(pause)
			}
		})
	}
	sent.Wait()
	deathsDone.Wait()
	w.quiet.Store(true)

	// Let the queue settle: everything sent is handled or dead-lettered
	// within maxReceive visibility timeouts (and backoffs) once calm.
	// Virtual time is cheap: allow for a backlog of slow handlers on one
	// worker (each up to two visibility timeouts) on top of the retries.
	settle := time.Duration(maxReceive+2)*(2*vis+45*time.Second) + time.Duration(senders*perSender)*2*vis + 5*time.Minute
	deadline := time.Now().Add(settle)
	for time.Now().Before(deadline) {
		if err := w.drainDead(ctx, dlq, ck); err != nil {
			violate("drain DLQ: %v", err)
			break
		}
		if ck.AllHandled() {
			break
		}
		time.Sleep(5 * time.Second)
	}

	if os.Getenv("COURIER_SIM_DEBUG") == "stacks" && !ck.AllHandled() {
		buf := make([]byte, 1<<20)
		os.Stderr.Write(buf[:runtime.Stack(buf, true)])
	}
	// Stop: Run must return within ShutdownTimeout + 1s + CallTimeout.
	mu.Lock()
	rest := live
	live = nil
	mu.Unlock()
	for _, rn := range rest {
		stopped := time.Now()
		rn.cancel()
		<-rn.done
		if took := time.Since(stopped); took > 5*time.Second+time.Second+3*time.Second+time.Second {
			violate("shutdown: Run returned %v after its context ended (bound 9s)", took)
		}
	}
	if err := w.drainDead(ctx, dlq, ck); err != nil {
		violate("drain DLQ: %v", err)
	}
	n, vs := ck.Check(check.Options{FIFO: fifo, AllowDuplicates: true})
	if len(vs) > 0 {
		// Say where the missing messages are: the queue's own counts.
		for _, u := range []string{url, dlq} {
			a, err := w.admin.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
			if err == nil {
				found.add("state of %s: visible=%s in-flight=%s delayed=%s", u,
					a.Attributes["ApproximateNumberOfMessages"], a.Attributes["ApproximateNumberOfMessagesNotVisible"], a.Attributes["ApproximateNumberOfMessagesDelayed"])
			}
			if os.Getenv("COURIER_SIM_DEBUG") != "" {
				out, err := w.admin.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(u), MaxNumberOfMessages: 10, MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}})
				if err != nil {
					found.add("debug receive: %v", err)
				} else {
					for _, m := range out.Messages {
						found.add("debug: %s %v", aws.ToString(m.Body), m.Attributes)
					}
				}
			}
		}
	}
	return n, append(found.all(), vs...)
}

// mapSendError rewrites a Send error for another set of messages: a
// *patterns.SendError keeps the entries of the messages to maps, each
// named by what it maps to (nil when none is left); any other error
// stands for all.
func mapSendError(err error, to map[*patterns.Message]*patterns.Message) error {
	var se *patterns.SendError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	out := &patterns.SendError{Op: se.Op, Resource: se.Resource}
	for _, f := range se.Failed {
		if m, ok := to[f.Message]; ok {
			f.Message = m
			out.Failed = append(out.Failed, f)
		}
	}
	if len(out.Failed) == 0 {
		return nil
	}
	return out
}

// identity maps each message to itself.
func identity(msgs []*patterns.Message) map[*patterns.Message]*patterns.Message {
	to := make(map[*patterns.Message]*patterns.Message, len(msgs))
	for _, m := range msgs {
		to[m] = m
	}
	return to
}
