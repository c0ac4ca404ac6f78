package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// quietConfig is a consumer config for tests: short polls, and expected
// warnings (failing handlers) kept out of the output.
func quietConfig(url string) testConsumer {
	return testConsumer{url: url, ConsumerOptions: patterns.ConsumerOptions{WaitTime: time.Second, Logger: discardLogger()}}
}

// testConsumer is a queue and the options of a test's Consumer on it:
// patterns.NewConsumer(client, c.url, c.set).
type testConsumer struct {
	url string
	patterns.ConsumerOptions
}

func (c testConsumer) set(o *patterns.ConsumerOptions) { *o = c.ConsumerOptions }

// with is an option function that sets all options to v.
func with[T any](v T) func(*T) { return func(p *T) { *p = v } }

// quiet sets the options of quietConfig.
func quiet(o *patterns.ConsumerOptions) { o.WaitTime, o.Logger = time.Second, discardLogger() }

// quietOptions are quietConfig's options.
func quietOptions() patterns.ConsumerOptions { return quietConfig("").ConsumerOptions }

// runFor runs fn in the background and returns a stop function that cancels
// it and returns its error.
func runFor(t *testing.T, fn func(ctx context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				err = errors.New("consumer did not stop within 60s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCompetingConsumers(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const n = 2000
		q := b.CreateQueue(t, backend.QueueOptions{})
		var sendCount, recvCount patterns.RequestCounter
		ctx := context.Background()

		var mu sync.Mutex
		seen := map[string]int{}
		byConsumer := map[int]int{}
		group, err := patterns.NewCompetingConsumers(b.SQS(&recvCount), q.URL, 3, quiet)
		if err != nil {
			t.Fatal(err)
		}
		var handled, distinct atomic.Int64
		stop := runFor(t, func(ctx context.Context) error {
			return group.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				mu.Lock()
				if seen[string(m.Body)]++; seen[string(m.Body)] == 1 {
					distinct.Add(1)
				}
				mu.Unlock()
				handled.Add(1)
				return nil
			})
		})

		// Send while the consumers run, in chunks, as producers do: the queue
		// stays shallow (moto's receive slows down with queue depth).
		p, err := patterns.NewProducer(b.SQS(&sendCount), q.URL)
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]*patterns.Message, n)
		for i := range msgs {
			msgs[i] = &patterns.Message{Body: []byte(fmt.Sprintf("msg-%04d", i))}
		}
		for i := 0; i < n; i += 100 {
			if err := p.Send(ctx, msgs[i:i+100]...); err != nil {
				t.Fatalf("send: %v", err)
			}
			waitFor(t, 60*time.Second, "consumers to keep up", func() bool { return distinct.Load() >= int64(i-200) })
		}
		for i, m := range msgs {
			if m.ID == "" {
				t.Fatalf("message %d reported sent without an id", i)
			}
		}
		if got := sendCount.Get("SQS.SendMessageBatch"); got != n/10 {
			t.Errorf("SendMessageBatch calls = %d, want %d (full batches)", got, n/10)
		}
		waitFor(t, 120*time.Second, "every message handled", func() bool { return distinct.Load() >= n })
		if err := stop(); err != nil {
			t.Fatalf("run: %v", err)
		}
		for i := range n {
			if c := seen[fmt.Sprintf("msg-%04d", i)]; c == 0 {
				t.Errorf("msg-%04d lost", i)
			}
		}
		// At-least-once: a message may be delivered twice (a backend may
		// redeliver under load); every delivery handled must be deleted, and
		// none may be left.
		st := group.Stats()
		if st.Deleted != handled.Load() || st.DeleteErrors != 0 {
			t.Errorf("deleted %d (errors %d) of %d deliveries handled: every handled delivery must be deleted once", st.Deleted, st.DeleteErrors, handled.Load())
		}
		for i, c := range group.Consumers() {
			byConsumer[i] = int(c.Stats().Handled)
		}
		t.Logf("%s: handled per consumer %v, duplicates %d, requests %v", b.Name, byConsumer, handled.Load()-distinct.Load(), recvCount.Counts())
		if deletes := recvCount.Get("SQS.DeleteMessageBatch"); deletes > n/5 {
			t.Errorf("DeleteMessageBatch calls = %d for %d messages: deletes are not batched", deletes, n)
		}
		switch v, f := b.Counts(t, q.URL); {
		case v != 0:
			t.Errorf("queue still holds %d visible + %d in flight", v, f)
		case f != 0:
			// A receive whose answer the client gave up on under load (its
			// deadline, WaitTime + CallTimeout, passed) leaves what it took
			// in flight until the visibility timeout: at-least-once, not a
			// loss (every message was handled and deleted above).
			t.Logf("%d in flight after stop: a receive abandoned under load; SQS delivers them again after their visibility timeout", f)
		}
	})
}

func TestPoisonMessageGoesToDLQ(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: time.Second, MaxReceiveCount: 2})
		ctx := context.Background()
		p, _ := patterns.NewProducer(b.SQS(), q.URL)
		var msgs []*patterns.Message
		for i := range 5 {
			msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf("good-%d", i))})
		}
		msgs = append(msgs, &patterns.Message{Body: []byte("poison")})
		if err := p.Send(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		c, _ := patterns.NewConsumer(b.SQS(), q.URL, quiet)
		var good, poisonTries atomic.Int64
		stop := runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				if string(m.Body) == "poison" {
					poisonTries.Add(1)
					return errors.New("cannot handle poison")
				}
				good.Add(1)
				return nil
			})
		})
		var dlq []string
		waitFor(t, 60*time.Second, "poison message in the DLQ", func() bool {
			for _, m := range b.Drain(t, q.DLQURL, 100*time.Millisecond) {
				dlq = append(dlq, aws.ToString(m.Body))
			}
			return len(dlq) > 0
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(dlq) != 1 || dlq[0] != "poison" {
			t.Errorf("DLQ holds %q, want just the poison message", dlq)
		}
		if good.Load() != 5 {
			t.Errorf("good messages handled %d, want 5", good.Load())
		}
		if poisonTries.Load() != 2 {
			t.Errorf("poison handled %d times, want maxReceiveCount=2", poisonTries.Load())
		}
	})
}

func TestHeartbeatKeepsSlowMessageInvisible(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const vis = 2 * time.Second
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: vis})
		ctx := context.Background()
		p, _ := patterns.NewProducer(b.SQS(), q.URL)
		if err := p.Send(ctx, &patterns.Message{Body: []byte("slow")}); err != nil {
			t.Fatal(err)
		}
		// Two consumers: if the heartbeat failed, the other one would get
		// the message when its visibility ran out.
		group, _ := patterns.NewCompetingConsumers(b.SQS(), q.URL, 2, quiet)
		var calls atomic.Int64
		var finished atomic.Bool
		stop := runFor(t, func(ctx context.Context) error {
			return group.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				calls.Add(1)
				time.Sleep(3 * vis)
				finished.Store(true)
				return nil
			})
		})
		waitFor(t, 30*time.Second, "slow handler done", finished.Load)
		time.Sleep(vis) // a redelivery would show up now
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 1 {
			t.Errorf("handler called %d times, want 1 (no redelivery while the handler ran)", calls.Load())
		}
		st := group.Stats()
		if st.Extended == 0 || st.Deleted != 1 {
			t.Errorf("stats %+v: want visibility extended and the message deleted once", st)
		}
	})
}

func TestShutdownFinishesInFlightAndReleasesTheRest(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const n = 30
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 60 * time.Second})
		ctx := context.Background()
		p, _ := patterns.NewProducer(b.SQS(), q.URL)
		var msgs []*patterns.Message
		for i := range n {
			msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf("m%d", i))})
		}
		if err := p.Send(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		cfg := quietConfig(q.URL)
		cfg.Workers = 2
		cfg.MaxInFlight = 12 // some received messages wait for a worker
		c, _ := patterns.NewConsumer(b.SQS(), cfg.url, cfg.set)
		var started, completed atomic.Int64
		release := make(chan struct{})
		stop := runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
				started.Add(1)
				<-release
				time.Sleep(200 * time.Millisecond)
				completed.Add(1)
				return nil
			})
		})
		waitFor(t, 20*time.Second, "two handlers running", func() bool { return started.Load() == 2 })
		// Cancel while two handlers are in flight and more are waiting.
		go func() { time.Sleep(300 * time.Millisecond); close(release) }()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		if completed.Load() != started.Load() {
			t.Errorf("started %d handlers but %d completed: in-flight handlers must finish", started.Load(), completed.Load())
		}
		if st.Deleted != completed.Load() {
			t.Errorf("deleted %d, completed %d: every finished message must be deleted", st.Deleted, completed.Load())
		}
		if st.Released == 0 {
			t.Errorf("no unstarted message was released: %+v", st)
		}
		// Released messages are visible again at once, not after 60 s.
		rest := b.Drain(t, q.URL, 3*time.Second)
		if got, want := len(rest)+int(st.Deleted), n; got != want {
			t.Errorf("after shutdown: %d drained + %d deleted = %d, want %d (nothing lost, nothing hidden)", len(rest), st.Deleted, got, want)
		}
	})
}

func TestBadInputFailsClearly(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: time.Second, MaxReceiveCount: 1})
		var rc patterns.RequestCounter
		p, err := patterns.NewProducer(b.SQS(&rc), q.URL)
		if err != nil {
			t.Fatal(err)
		}
		big := &patterns.Message{Body: []byte(strings.Repeat("x", patterns.MaxSQSMessageBytes+1))}
		err = p.Send(ctx, big, &patterns.Message{Body: []byte("fine")})
		if !errors.Is(err, patterns.ErrMessageTooLarge) {
			t.Errorf("oversize: got %v, want ErrMessageTooLarge", err)
		}
		if rc.Total() != 0 {
			t.Errorf("oversize send made %d requests, want none", rc.Total())
		}

		if _, err := patterns.NewProducer(b.SQS(), "not a url"); !errors.Is(err, patterns.ErrInvalidQueueURL) {
			t.Errorf("invalid queue URL: got %v", err)
		}
		missing := strings.TrimSuffix(q.URL, "/"+q.URL[strings.LastIndex(q.URL, "/")+1:]) + "/no-such-queue-" + backend.UniqueName(t)[len(backend.UniqueName(t))-8:]
		c, err := patterns.NewConsumer(b.SQS(), missing, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(ctx, func(context.Context, *patterns.Message) error { return nil }); !errors.Is(err, patterns.ErrNotFound) {
			t.Errorf("missing queue: Run returned %v, want ErrNotFound", err)
		}

		// A body that claims to be an SNS notification but is broken is not
		// handed to the handler as payload: it fails and ends in the DLQ.
		raw := b.SQS()
		broken := `{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:000000000000:t","MessageId":"x","MessageAttributes":{"a":{"Type":"Binary","Value":"%%%"}},"Message":"hi"}`
		if _, err := raw.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(broken)}); err != nil {
			t.Fatal(err)
		}
		c2, _ := patterns.NewConsumer(b.SQS(), q.URL, quiet)
		var calls atomic.Int64
		stop := runFor(t, func(ctx context.Context) error {
			return c2.Run(ctx, func(context.Context, *patterns.Message) error { calls.Add(1); return nil })
		})
		var dlq int
		waitFor(t, 30*time.Second, "malformed envelope in DLQ", func() bool {
			dlq += len(b.Drain(t, q.DLQURL, 100*time.Millisecond))
			return dlq > 0
		})
		_ = stop()
		if calls.Load() != 0 {
			t.Errorf("handler called %d times with a malformed envelope", calls.Load())
		}
		if st := c2.Stats(); st.Failed == 0 {
			t.Errorf("malformed envelope not counted as failed: %+v", st)
		}
	})
}
