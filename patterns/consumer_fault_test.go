package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// These tests drive a Consumer against an in-memory fake of the four SQS
// calls it makes, inside a synctest bubble: timeouts run on a fake clock,
// so they are exact and take no real time.

const fakeQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/fault"

// landed is one call as the fake queue applied it, in order.
type landed struct {
	op     string // "receive", "delete", "visibility"
	handle string
	secs   int32 // visibility calls: the timeout set
}

// fakeSQS answers like an idle SQS queue holding msgs: a receive hands out
// what is left, or long-polls (until its wait or its context ends) when
// nothing is. The hooks, when set, run before a call lands; one returning
// an error refuses the call.
type fakeSQS struct {
	vis  string // the queue's VisibilityTimeout attribute
	msgs []types.Message

	onReceive    func(ctx context.Context, in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error)
	onDelete     func(ctx context.Context, in *sqs.DeleteMessageBatchInput) error
	onVisibility func(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput) error

	mu          sync.Mutex
	landed      []landed
	waits       []int32  // WaitTimeSeconds of each receive
	noDeadline  []string // calls made with a context without a deadline
	longestCall map[string]time.Duration
}

func (f *fakeSQS) called(ctx context.Context, op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := ctx.Deadline()
	if !ok {
		f.noDeadline = append(f.noDeadline, op)
		return
	}
	if f.longestCall == nil {
		f.longestCall = map[string]time.Duration{}
	}
	f.longestCall[op] = max(f.longestCall[op], time.Until(d))
}

func (f *fakeSQS) land(l ...landed) {
	f.mu.Lock()
	f.landed = append(f.landed, l...)
	f.mu.Unlock()
}

func (f *fakeSQS) history() []landed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]landed(nil), f.landed...)
}

func (f *fakeSQS) GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	f.called(ctx, "GetQueueAttributes")
	vis := f.vis
	if vis == "" {
		vis = "30"
	}
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"VisibilityTimeout": vis}}, nil
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.called(ctx, "ReceiveMessage")
	f.mu.Lock()
	f.waits = append(f.waits, in.WaitTimeSeconds)
	f.mu.Unlock()
	if f.onReceive != nil {
		return f.onReceive(ctx, in)
	}
	f.mu.Lock()
	n := min(len(f.msgs), int(in.MaxNumberOfMessages))
	got := f.msgs[:n]
	f.msgs = f.msgs[n:]
	f.mu.Unlock()
	if n == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(in.WaitTimeSeconds) * time.Second):
		}
	}
	f.land(landed{op: "receive"})
	return &sqs.ReceiveMessageOutput{Messages: got}, nil
}

func (f *fakeSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.called(ctx, "DeleteMessageBatch")
	if f.onDelete != nil {
		if err := f.onDelete(ctx, in); err != nil {
			return nil, err
		}
	}
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		f.land(landed{op: "delete", handle: aws.ToString(e.ReceiptHandle)})
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (f *fakeSQS) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.called(ctx, "ChangeMessageVisibilityBatch")
	if f.onVisibility != nil {
		if err := f.onVisibility(ctx, in); err != nil {
			return nil, err
		}
	}
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		f.land(landed{op: "visibility", handle: aws.ToString(e.ReceiptHandle), secs: e.VisibilityTimeout})
		out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func fakeMessages(n int) []types.Message {
	out := make([]types.Message, n)
	for i := range out {
		out[i] = types.Message{
			MessageId:     aws.String(fmt.Sprintf("id-%d", i)),
			ReceiptHandle: aws.String(fmt.Sprintf("m%d", i)),
			Body:          aws.String(fmt.Sprintf("body %d", i)),
			Attributes:    map[string]string{"ApproximateReceiveCount": "1"},
		}
	}
	return out
}

// A decision on a message (delete, or a retry backoff) taken while the
// heartbeat's extension of it is under way must land after the extension:
// landed before it, the extension would hide a failed message for a whole
// visibility timeout instead of its backoff.
func TestHeartbeatExtensionNeverOvertakesADecision(t *testing.T) {
	const vis = 3 // seconds; the heartbeat extends after 2 s
	for _, tt := range []struct {
		name       string
		handlerErr error
		want       landed // the last call on the message
	}{
		{"backoff", errors.New("try again later"), landed{op: "visibility", handle: "m0", secs: 7}},
		{"delete", nil, landed{op: "delete", handle: "m0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				extending := make(chan struct{}) // the extension reached SQS
				decided := make(chan struct{})   // the decision reached SQS
				var once sync.Once
				f := &fakeSQS{vis: "3", msgs: fakeMessages(1)}
				f.onVisibility = func(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput) error {
					if in.Entries[0].VisibilityTimeout != vis {
						once.Do(func() { close(decided) })
						return nil
					}
					// The extension is slow: it lands when the decision
					// has reached SQS, or 10 s later if it waits for it.
					close(extending)
					select {
					case <-decided:
					case <-time.After(10 * time.Second):
					case <-ctx.Done():
						return ctx.Err()
					}
					return nil
				}
				f.onDelete = func(context.Context, *sqs.DeleteMessageBatchInput) error {
					once.Do(func() { close(decided) })
					return nil
				}
				c, err := patterns.NewConsumer(f, fakeQueueURL, func(o *patterns.ConsumerOptions) {
					o.WaitTime = time.Second
					o.Logger = discardLogger()
					o.CallTimeout = 30 * time.Second
					o.Backoff = func(int) time.Duration { return 7 * time.Second }
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() {
					done <- c.Run(ctx, func(context.Context, *patterns.Message) error {
						<-extending
						return tt.handlerErr
					})
				}()
				<-decided
				time.Sleep(time.Second)
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				var last landed
				var calls []landed
				for _, l := range f.history() {
					if l.handle == "m0" {
						last = l
						calls = append(calls, l)
					}
				}
				if last != tt.want {
					t.Errorf("calls on the message, in the order they landed: %+v; the last must be %+v", calls, tt.want)
				}
			})
		})
	}
}

func TestConsumerWaitTimeWholeSeconds(t *testing.T) {
	for _, tt := range []struct {
		wait     time.Duration
		ok       bool
		sentSecs int32
	}{
		{0, true, 20},
		{time.Millisecond, false, 0},
		{500 * time.Millisecond, false, 0},
		{999 * time.Millisecond, false, 0},
		{time.Second, true, 1},
		{1500 * time.Millisecond, true, 2}, // rounded up, never down
		{20 * time.Second, true, 20},
		{21 * time.Second, false, 0},
		{-time.Second, false, 0},
	} {
		t.Run(tt.wait.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeSQS{}
				c, err := patterns.NewConsumer(f, fakeQueueURL, func(o *patterns.ConsumerOptions) {
					o.WaitTime = tt.wait
					o.Logger = discardLogger()
				})
				if !tt.ok {
					if !errors.Is(err, patterns.ErrInvalidConfig) {
						t.Fatalf("WaitTime %v: got %v, want ErrInvalidConfig", tt.wait, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				if err := c.Run(ctx, func(context.Context, *patterns.Message) error { return nil }); err != nil {
					t.Fatal(err)
				}
				if len(f.waits) == 0 || f.waits[0] != tt.sentSecs {
					t.Errorf("WaitTimeSeconds sent %v, want %d", f.waits, tt.sentSecs)
				}
			})
		})
	}
}

// A receive that comes back empty at once (an emulator or fake that does
// not long-poll, or a queue whose ReceiveMessageWaitTimeSeconds is 0 under
// one) must not make the consumer spin.
func TestConsumerPausesBetweenEmptyShortPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var receives int
		f := &fakeSQS{}
		f.onReceive = func(context.Context, *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			receives++ // one poller: no race
			if receives == 1000 {
				cancel() // spinning: stop it, the count below fails the test
			}
			return &sqs.ReceiveMessageOutput{}, nil
		}
		c, err := patterns.NewConsumer(f, fakeQueueURL, func(o *patterns.ConsumerOptions) {
			o.WaitTime = time.Second
			o.Logger = discardLogger()
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(ctx, func(context.Context, *patterns.Message) error { return nil }); err != nil {
			t.Fatal(err)
		}
		// Pauses of 50 ms doubling to 1 s: about 15 receives in 10 s.
		if receives > 20 || receives < 5 {
			t.Errorf("%d empty receives in 10 s, want 5..20 (paused, but still polling)", receives)
		}
	})
}

// stalled makes every call wait until its context ends, as an endpoint
// that accepts connections and never answers does with the SDK's default
// HTTP client (which has no timeout). unstall ends the waits of calls
// made without a deadline, so that a failing test can end.
func stalled(unstall <-chan struct{}) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-unstall:
			return errors.New("unstalled by the test")
		}
	}
}

// With an endpoint that stops answering while handlers run, and a handler
// that ignores its cancelled context, Run returns within ShutdownTimeout,
// the grace of a second and one CallTimeout-long flush, and says what it
// could not finish.
func TestConsumerShutdownBoundedWhenEndpointStalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		unstall := make(chan struct{})
		stuck := make(chan struct{}) // the handler that ignores its context
		stall := stalled(unstall)
		f := &fakeSQS{}
		first := true
		f.onReceive = func(ctx context.Context, in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			if first { // one poller: no race
				first = false
				return &sqs.ReceiveMessageOutput{Messages: fakeMessages(3)}, nil
			}
			return nil, stall(ctx)
		}
		f.onDelete = func(ctx context.Context, _ *sqs.DeleteMessageBatchInput) error { return stall(ctx) }
		f.onVisibility = func(ctx context.Context, _ *sqs.ChangeMessageVisibilityBatchInput) error { return stall(ctx) }
		cfg := testConsumer{url: fakeQueueURL, ConsumerOptions: patterns.ConsumerOptions{
			WaitTime: 20 * time.Second, Logger: discardLogger(),
			ShutdownTimeout: 2 * time.Second,
			AckInterval:     time.Minute, // the acks wait for the final flush
			Backoff:         func(int) time.Duration { return 5 * time.Second },
		}}
		c, err := patterns.NewConsumer(f, cfg.url, cfg.set)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- c.Run(ctx, func(_ context.Context, m *patterns.Message) error {
				switch m.ReceiptHandle {
				case "m0":
					return nil // to delete
				case "m1":
					return errors.New("failed") // to back off
				}
				<-stuck
				return nil
			})
		}()
		defer func() {
			close(unstall)
			close(stuck)
			<-done
		}()
		time.Sleep(time.Second)
		cancel()
		began := time.Now()
		bound := cfg.ShutdownTimeout + time.Second + 15*time.Second // + grace + the default CallTimeout
		select {
		case err = <-done:
			done <- err // for the deferred wait
		case <-time.After(time.Minute):
			t.Fatalf("Run still running %v after its context was cancelled (ShutdownTimeout %v)", time.Since(began), cfg.ShutdownTimeout)
		}
		if took := time.Since(began); took > bound {
			t.Errorf("Run returned %v after its context was cancelled, want at most %v", took, bound)
		}
		if !errors.Is(err, patterns.ErrShutdownIncomplete) {
			t.Fatalf("Run returned %v, want ErrShutdownIncomplete", err)
		}
		for _, want := range []string{"1 messages abandoned", "1 deletes and 1 visibility changes not sent"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Run's error %q does not say %q", err, want)
			}
		}
	})
}

// Every SQS call of a consumer carries a deadline: a stalled endpoint
// cannot hold a delete, a visibility change or the heartbeat for ever.
func TestConsumerEverySQSCallHasADeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSQS{vis: "3", msgs: fakeMessages(3)}
		cfg := testConsumer{url: fakeQueueURL, ConsumerOptions: patterns.ConsumerOptions{
			WaitTime: 2 * time.Second, Logger: discardLogger(),
			CallTimeout: 4 * time.Second,
			Backoff:     func(int) time.Duration { return 5 * time.Second },
		}}
		c, err := patterns.NewConsumer(f, cfg.url, cfg.set)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err = c.Run(ctx, func(_ context.Context, m *patterns.Message) error {
			switch m.ReceiptHandle {
			case "m0":
				return nil
			case "m1":
				return errors.New("failed")
			}
			time.Sleep(5 * time.Second) // long enough for a heartbeat
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if st := c.Stats(); st.Extended == 0 || st.Deleted != 2 {
			t.Fatalf("stats %+v: want an extension and two deletes", st)
		}
		if len(f.noDeadline) > 0 {
			t.Errorf("calls without a deadline: %v", f.noDeadline)
		}
		for op, d := range f.longestCall {
			limit := cfg.CallTimeout
			if op == "ReceiveMessage" {
				limit += cfg.WaitTime
			}
			if d > limit {
				t.Errorf("%s had %v to run, want at most %v", op, d, limit)
			}
		}
	})
}
