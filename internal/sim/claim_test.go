package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/check"
	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// claimScenario: every body goes through S3 (claim check, Always), S3 and
// SQS both faulty; consumers resolve the pointers and remove the objects
// after delete; the handler is wrapped in Idempotent keyed by the body, so
// its side effect happens once per message however often SQS delivers it.
// Promises checked: every message reported sent is handled, nothing
// handled twice, and no message stays on a queue (or reaches the DLQ)
// whose payload is gone.
type claimScenario struct{}

func (claimScenario) run(ctx context.Context, seed uint64) (check.Counts, []string) {
	r := Shape(seed)
	prof := draw(r)
	w := newWorld(seed, prof)
	attempts := 1 + r.IntN(3)
	vis := time.Duration(10+r.IntN(50)) * time.Second
	url, dlq, err := w.queue(ctx, "claims", false, vis, 10)
	if err != nil {
		return check.Counts{}, []string{"set-up: " + err.Error()}
	}
	admin3 := w.mem.S3()
	bucket := "sim-claims"
	if _, err := admin3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return check.Counts{}, []string{"set-up: " + err.Error()}
	}
	var found findings
	violate := found.add
	// uploaded maps each object's "bucket/key" to the message key its
	// payload carries, as the uploads reach S3 (also those of Sends that
	// were reported failed).
	var umu sync.Mutex
	uploaded := map[string]string{}
	s3For := func(name string) *s3.Client {
		in := NewInjector(seed, name, prof, &w.quiet)
		rec := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
			if c.Operation == "PutObject" {
				key, _, _ := strings.Cut(string(c.Body), "|")
				umu.Lock()
				uploaded[c.Resource] = key
				umu.Unlock()
			}
			return in.Inject(c)
		})
		return w.mem.S3(memaws.WithFaults(rec), func(o *memaws.ClientOptions) { o.RetryMaxAttempts = attempts })
	}
	ck := check.New()
	store, _ := patterns.NewMemoryIdempotencyStore()
	effects := map[string]int{}
	var emu sync.Mutex

	consumers := 1 + r.IntN(2)
	type running struct {
		cancel context.CancelFunc
		done   chan error
	}
	var live []running
	for i := range consumers {
		name := "consumer-" + strconv.Itoa(i)
		cc, err := patterns.NewClaimCheck(s3For(name+"-s3"), bucket, func(o *patterns.ClaimCheckOptions) { o.RemoveAfterDelete = true })
		if err != nil {
			return check.Counts{}, []string{"claim check: " + err.Error()}
		}
		client, _ := w.client(name, attempts)
		c, err := patterns.NewConsumer(client, url, func(o *patterns.ConsumerOptions) {
			o.Workers = 1 + r.IntN(4)
			o.ClaimCheck = cc
			o.Logger = debugLog(name)
			o.ShutdownTimeout = 5 * time.Second
			o.CallTimeout = 3 * time.Second
		})
		if err != nil {
			return check.Counts{}, []string{"consumer: " + err.Error()}
		}
		h, err := patterns.Idempotent(func(_ context.Context, m *patterns.Message) error {
			body := string(m.Body)
			key, _, _ := strings.Cut(body, "|")
			if decide(seed, key, m.ReceiveCount, "fail") < 0.1 {
				return errors.New("handler failed (injected)")
			}
			emu.Lock()
			effects[key]++
			emu.Unlock()
			if os.Getenv("COURIER_SIM_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "HANDLE %s id=%s ptr=%+v\n", key, m.ID, m.Offloaded)
			}
			ck.Handle(key)
			return nil
		}, store, func(o *patterns.IdempotencyOptions) {
			o.Key = patterns.BodyHashKey
			o.InProgressTTL = 2 * vis
			o.Logger = quietLog
		})
		if err != nil {
			return check.Counts{}, []string{"idempotent: " + err.Error()}
		}
		cctx, cancel := context.WithCancel(ctx)
		rn := running{cancel: cancel, done: make(chan error, 1)}
		go func() {
			err := c.Run(cctx, h)
			if cctx.Err() == nil {
				violate("consumer %s stopped by itself: %v", name, err)
			}
			rn.done <- err
		}()
		live = append(live, rn)
	}

	cc, err := patterns.NewClaimCheck(s3For("producer-s3"), bucket, func(o *patterns.ClaimCheckOptions) { o.Always = true })
	if err != nil {
		return check.Counts{}, []string{"claim check: " + err.Error()}
	}
	prodClient, _ := w.client("producer", attempts)
	p, err := patterns.NewProducer(prodClient, url, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
	if err != nil {
		return check.Counts{}, []string{"producer: " + err.Error()}
	}
	objects := map[string]string{} // S3 key -> message key
	total := 3 + r.IntN(25)
	batch := 1 + r.IntN(10)
	for i := 0; i < total; i += batch {
		var msgs []*patterns.Message
		for j := i; j < min(i+batch, total); j++ {
			msgs = append(msgs, &patterns.Message{Body: []byte("c-" + strconv.Itoa(j) + "|" + strings.Repeat("x", 100))})
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := p.Send(sctx, msgs...)
		cancel()
		if os.Getenv("COURIER_SIM_DEBUG") != "" {
			for _, m := range msgs {
				fmt.Fprintf(os.Stderr, "SENT %.5s id=%s ptr=%+v\n", m.Body, m.ID, m.Offloaded)
			}
			fmt.Fprintf(os.Stderr, "SEND ERR %v\n", err)
		}
		// The checker names messages by key.
		keyed := make([]*patterns.Message, len(msgs))
		for k, m := range msgs {
			key, _, _ := strings.Cut(string(m.Body), "|")
			keyed[k] = &patterns.Message{Body: []byte(key)}
			if m.Offloaded != nil {
				objects[m.Offloaded.Key] = key
			}
		}
		to := map[*patterns.Message]*patterns.Message{}
		for k, m := range msgs {
			to[m] = keyed[k]
		}
		ck.SendResult(keyed, mapSendError(err, to))
	}
	w.quiet.Store(true)
	for deadline := time.Now().Add(4 * time.Hour); time.Now().Before(deadline) && !ck.AllHandled(); {
		time.Sleep(10 * time.Second)
	}
	for _, rn := range live {
		rn.cancel()
		<-rn.done
	}
	// What is left on the queues must still have its payload.
	for _, u := range []string{url, dlq} {
		if os.Getenv("COURIER_SIM_DEBUG") != "" {
			a, _ := w.admin.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
			fmt.Fprintf(os.Stderr, "STATE %s %v\nNOW %v\n", u, a.Attributes, time.Now())
			for _, m := range w.mem.Messages(u) {
				fmt.Fprintf(os.Stderr, "MSG %+v\n", m)
			}
			w.mem.Advance(13 * time.Hour)
			out, _ := w.admin.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(u), MaxNumberOfMessages: 10, MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}})
			for _, m := range out.Messages {
				fmt.Fprintf(os.Stderr, "LEFT %s %v\n", aws.ToString(m.MessageId), m.Attributes)
			}
		}
		out, err := w.admin.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(u), MaxNumberOfMessages: 10, VisibilityTimeout: 3600})
		if err != nil {
			violate("inspect %s: %v", u, err)
			continue
		}
		for _, m := range out.Messages {
			if os.Getenv("COURIER_SIM_DEBUG") != "" {
				violate("debug: on %s: %.120s %v", u, aws.ToString(m.Body), m.Attributes)
			}
			ptr, ok := patterns.ParseS3Pointer([]byte(aws.ToString(m.Body)))
			if !ok {
				continue
			}
			if _, err := admin3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(ptr.Bucket), Key: aws.String(ptr.Key)}); err != nil {
				// A copy of a message already handled (an at-least-once
				// duplicate, or a send SQS stored twice) may point to an
				// object RemoveAfterDelete removed: nothing is lost. A
				// message never handled must still have its payload.
				// That holds also for a message whose Send was reported
				// failed but which SQS stored (an indeterminate send): its
				// payload must not be removed under it (issue 18 item 1).
				umu.Lock()
				key, known := uploaded[ptr.Bucket+"/"+ptr.Key]
				umu.Unlock()
				if known && !ck.WasHandled(key) {
					_, reported := objects[ptr.Key]
					violate("%s (reported sent: %v) on %s points to s3://%s/%s, which is gone, and was never handled: %v", key, reported, u, ptr.Bucket, ptr.Key, err)
				}
			}
		}
	}
	n, vs := ck.Check(check.Options{AllowDuplicates: true})
	emu.Lock()
	for k, c := range effects {
		if c > 1 {
			vs = append(vs, fmt.Sprintf("idempotent handler's effect ran %d times for %s", c, k))
		}
	}
	emu.Unlock()
	return n, append(found.all(), vs...)
}
