package patterns_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// replyPrefix is a reply queue name prefix unique to the test, so that its
// requesters, allowlists and sweeps never meet another test's queues.
func replyPrefix(t *testing.T) string {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "c-rr-" + hex.EncodeToString(r[:]) + "-"
}

// echo is the test responder's answer: derived from the request body and
// its correlation id, so that a reply handed to the wrong request shows.
func echo(req *patterns.Message) *patterns.Message {
	return &patterns.Message{Body: []byte("re:" + string(req.Body) + "|" + req.CorrelationID)}
}

// checkEcho fails unless reply answers the request with body.
func checkEcho(body string, reply *patterns.Message) error {
	want := "re:" + body + "|" + reply.CorrelationID
	if reply.CorrelationID == "" || string(reply.Body) != want {
		return fmt.Errorf("request %q got reply %q (correlation id %q)", body, reply.Body, reply.CorrelationID)
	}
	return nil
}

// startResponder runs a Responder on queueURL until the test ends.
func startResponder(t *testing.T, client patterns.SQSAPI, queueURL string, cfg patterns.ResponderOptions, h patterns.RequestHandler) *patterns.Responder {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	if cfg.WaitTime == 0 {
		cfg.WaitTime = time.Second
	}
	s, err := patterns.NewResponder(client, queueURL, func(o *patterns.ResponderOptions) { *o = cfg })
	if err != nil {
		t.Fatal(err)
	}
	runFor(t, func(ctx context.Context) error { return s.Run(ctx, h) })
	return s
}

// newRequester returns a Requester that is closed when the test ends.
func newRequester(t *testing.T, client patterns.SQSAPI, cfg patterns.RequesterOptions) *patterns.Requester {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	r, err := patterns.NewRequester(client, func(o *patterns.RequesterOptions) { *o = cfg })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("close requester: %v", err)
		}
	})
	return r
}

func queueExists(t *testing.T, client *sqs.Client, url string) bool {
	t.Helper()
	_, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)})
	var gone *types.QueueDoesNotExist
	switch {
	case err == nil:
		return true
	case errors.As(err, &gone), errors.Is(err, patterns.ErrNotFound):
		return false
	}
	t.Fatalf("GetQueueAttributes %s: %v", url, err)
	return false
}

// TestRequestReplyManyRequesters: three requesters with 300 concurrent
// requests each, two responders on one request queue. Every request gets
// its own reply (the reply is derived from the request and its correlation
// id), none is lost, none crosses over; Close deletes the reply queues.
func TestRequestReplyManyRequesters(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const requesters, perRequester = 3, 300
		q := b.CreateQueue(t, backend.QueueOptions{})
		var rc patterns.RequestCounter
		client := b.SQS(&rc)
		prefix := replyPrefix(t)

		var handled [2]atomic.Int64
		for i := range 2 {
			cfg := patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowNames: []string{prefix + "*"}}
			startResponder(t, client, q.URL, cfg, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
				handled[i].Add(1)
				return echo(req), nil
			})
		}
		rs := make([]*patterns.Requester, requesters)
		for i := range rs {
			rs[i] = newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: prefix})
			if err := rs[i].Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}

		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			failed []error
			ok     atomic.Int64
		)
		for i, r := range rs {
			for j := range perRequester {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := fmt.Sprintf("requester-%d-request-%03d", i, j)
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
					defer cancel()
					reply, err := r.Request(ctx, q.URL, &patterns.Message{Body: []byte(body)})
					if err == nil {
						err = checkEcho(body, reply)
					}
					if err != nil {
						mu.Lock()
						failed = append(failed, err)
						mu.Unlock()
						return
					}
					ok.Add(1)
				}()
			}
		}
		wg.Wait()
		for i, err := range failed {
			if i == 10 {
				t.Errorf("... and %d more", len(failed)-10)
				break
			}
			t.Error(err)
		}
		if ok.Load() != requesters*perRequester {
			t.Fatalf("%d of %d requests answered correctly", ok.Load(), requesters*perRequester)
		}
		for i, r := range rs {
			st := r.Stats()
			if st.Requests != perRequester || st.Replies != perRequester || st.Timeouts != 0 || st.QueuesCreated != 1 {
				t.Errorf("requester %d: %+v, want %d requests and replies, no timeouts, one queue", i, st, perRequester)
			}
		}
		calls := int64(requesters * perRequester)
		t.Logf("%s: handled per responder %d/%d; %.2f requests per call: %v", b.Name,
			handled[0].Load(), handled[1].Load(), float64(rc.Total())/float64(calls), rc.Counts())

		urls := make([]string, len(rs))
		for i, r := range rs {
			urls[i] = r.ReplyQueueURL()
			if err := r.Close(context.Background()); err != nil {
				t.Fatalf("close: %v", err)
			}
			if _, err := r.Request(context.Background(), q.URL, &patterns.Message{Body: []byte("after close")}); !errors.Is(err, patterns.ErrRequesterClosed) {
				t.Errorf("request after Close: %v, want ErrRequesterClosed", err)
			}
		}
		// AWS takes up to 60 s to delete a queue; the emulators do it at once.
		for _, u := range urls {
			waitFor(t, 90*time.Second, "reply queue "+u+" deleted", func() bool { return !queueExists(t, b.SQS(), u) })
		}
	})
}

// TestRequestTimeoutLateReply: a reply that comes after its request timed
// out is deleted and counted, and never handed to a later request.
func TestRequestTimeoutLateReply(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{})
		client := b.SQS()
		prefix := replyPrefix(t)
		startResponder(t, client, q.URL, patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowNames: []string{prefix + "*"}},
			func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
				if string(req.Body) == "slow" {
					time.Sleep(3 * time.Second)
				}
				return echo(req), nil
			})
		r := newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: prefix})

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		reply, err := r.Request(ctx, q.URL, &patterns.Message{Body: []byte("slow")})
		if !errors.Is(err, patterns.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow request: reply %v, err %v; want ErrTimeout and DeadlineExceeded", reply, err)
		}
		waitFor(t, 30*time.Second, "the late reply to be counted", func() bool { return r.Stats().LateReplies == 1 })

		reply, err = r.Request(context.Background(), q.URL, &patterns.Message{Body: []byte("fast")})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkEcho("fast", reply); err != nil {
			t.Fatal(err)
		}
		st := r.Stats()
		if st.Timeouts != 1 || st.Replies != 1 || st.LateReplies != 1 {
			t.Errorf("stats %+v, want 1 timeout, 1 reply, 1 late reply", st)
		}
		waitFor(t, 10*time.Second, "every reply deleted (the late one too)", func() bool {
			v, f := b.Counts(t, r.ReplyQueueURL())
			return v+f == 0
		})
	})
}

// TestDuplicateRepliesDeliveredOnce: a responder that answers every request
// twice (as a redelivered request may) gets each request one reply; the
// duplicate is deleted and counted, and never reaches the next request.
func TestDuplicateRepliesDeliveredOnce(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{})
		client := b.SQS()
		c, err := patterns.NewConsumer(client, q.URL, quiet)
		if err != nil {
			t.Fatal(err)
		}
		runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(ctx context.Context, req *patterns.Message) error {
				p, err := patterns.NewProducer(client, req.ReturnAddress)
				if err != nil {
					return err
				}
				first, second := echo(req), echo(req)
				first.CorrelationID, second.CorrelationID = req.CorrelationID, req.CorrelationID
				return p.Send(ctx, first, second)
			})
		})
		r := newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: replyPrefix(t)})
		for i := range 3 {
			body := "dup-" + strconv.Itoa(i)
			reply, err := r.Request(context.Background(), q.URL, &patterns.Message{Body: []byte(body)})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkEcho(body, reply); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 30*time.Second, "three duplicates counted", func() bool { return r.Stats().LateReplies == 3 })
		if st := r.Stats(); st.Replies != 3 {
			t.Errorf("stats %+v, want 3 replies delivered", st)
		}
	})
}

type calcRequest struct{ A, B int }
type calcReply struct{ Quotient int }

// TestRequestReplyErrors: handler errors and panics come back as a
// *RemoteError; the typed Call and HandleCall round trip.
func TestRequestReplyErrors(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		client := b.SQS()
		prefix := replyPrefix(t)
		calc := b.CreateQueue(t, backend.QueueOptions{})
		startResponder(t, client, calc.URL, patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowNames: []string{prefix + "*"}},
			patterns.HandleCall(func(ctx context.Context, req calcRequest) (calcReply, error) {
				if req.B == 0 {
					return calcReply{}, errors.New("division by zero")
				}
				return calcReply{Quotient: req.A / req.B}, nil
			}))
		raw := b.CreateQueue(t, backend.QueueOptions{})
		responder := startResponder(t, client, raw.URL, patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowNames: []string{prefix + "*"}},
			func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
				switch string(req.Body) {
				case "panic":
					panic("boom")
				case "nothing":
					return nil, nil
				}
				return echo(req), nil
			})
		r := newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: prefix})
		ctx := context.Background()

		got, err := patterns.Call[calcRequest, calcReply](ctx, r, calc.URL, calcRequest{A: 42, B: 6})
		if err != nil || got.Quotient != 7 {
			t.Fatalf("Call 42/6 = %+v, %v; want 7", got, err)
		}
		_, err = patterns.Call[calcRequest, calcReply](ctx, r, calc.URL, calcRequest{A: 1, B: 0})
		var re *patterns.RemoteError
		if !errors.As(err, &re) || re.Message != "division by zero" || re.Queue != calc.URL {
			t.Fatalf("Call 1/0: %v; want a RemoteError saying division by zero", err)
		}
		_, err = patterns.Call[string, calcReply](ctx, r, calc.URL, "not a calcRequest")
		if !errors.As(err, &re) || !strings.Contains(re.Message, "does not decode") {
			t.Fatalf("Call with a bad request: %v; want a RemoteError saying it does not decode", err)
		}

		for body, want := range map[string]string{"panic": "handler panicked: boom", "nothing": "the handler returned no reply"} {
			_, err := r.Request(ctx, raw.URL, &patterns.Message{Body: []byte(body)})
			if !errors.As(err, &re) || re.Message != want {
				t.Errorf("request %q: %v; want a RemoteError %q", body, err, want)
			}
		}
		// The responder counts a reply after its send returns, which may be
		// after the requester has it.
		waitFor(t, 10*time.Second, "2 error replies counted", func() bool {
			st := responder.Stats()
			return st.ErrorReplies == 2 && st.Replies == 2
		})
	})
}

// lockedBuffer is a log sink for tests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestResponderRejectsReturnAddress: a request naming a return address
// outside the allowlist (or none) gets no reply, a log line and a count,
// and is left to the dead-letter queue; the queue it named receives
// nothing.
func TestResponderRejectsReturnAddress(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		client := b.SQS()
		q := b.CreateQueue(t, backend.QueueOptions{MaxReceiveCount: 1, VisibilityTimeout: 2 * time.Second})
		victim := b.CreateQueue(t, backend.QueueOptions{})
		var logs lockedBuffer
		cfg := patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowNames: []string{"only-these-*"}}
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		var handled atomic.Int64
		s := startResponder(t, client, q.URL, cfg, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
			handled.Add(1)
			return echo(req), nil
		})

		// A Requester whose queue is not allowed: no reply, so a timeout.
		r := newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: replyPrefix(t)})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := r.Request(ctx, q.URL, &patterns.Message{Body: []byte("hello")}); !errors.Is(err, patterns.ErrTimeout) {
			t.Fatalf("request with a disallowed return address: %v, want ErrTimeout", err)
		}
		// A forged request naming someone else's queue, and one naming none.
		p, _ := patterns.NewProducer(client, q.URL)
		forged := &patterns.Message{Body: []byte("write to the victim"), CorrelationID: "forged", ReturnAddress: victim.URL}
		if err := p.Send(context.Background(), forged, &patterns.Message{Body: []byte("no address"), CorrelationID: "none"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "three rejections", func() bool { return s.Stats().Rejected >= 3 })
		if got := b.Drain(t, victim.URL, 2*time.Second); len(got) != 0 {
			t.Errorf("the victim queue received %d messages", len(got))
		}
		if handled.Load() != 0 || s.Stats().Replies != 0 {
			t.Errorf("handler ran %d times, %d replies; want none", handled.Load(), s.Stats().Replies)
		}
		out := logs.String()
		for _, want := range []string{"request rejected", "return address not allowed", victim.URL, r.ReplyQueueURL(), "no return address"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		waitFor(t, 30*time.Second, "the rejected requests in the dead-letter queue", func() bool {
			v, f := b.Counts(t, q.DLQURL)
			return v+f == 3
		})
	})
}

// TestRequesterQueueLifecycle: a created reply queue carries the sweeper's
// tags and is deleted on Close; a given queue is used as is, untagged, and
// survives Close.
func TestRequesterQueueLifecycle(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		client := b.SQS()
		ctx := context.Background()
		prefix := replyPrefix(t)
		r := newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: prefix, Owner: "test-owner", Tags: map[string]string{"team": "payments"}})
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		url := r.ReplyQueueURL()
		if ref, err := patterns.ParseQueueURL(url); err != nil || !strings.HasPrefix(ref.Name, prefix) {
			t.Fatalf("reply queue %q (%v): want a name starting %q", url, err, prefix)
		}
		tags, err := client.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
		if err != nil {
			t.Fatal(err)
		}
		hb, _ := strconv.ParseInt(tags.Tags[patterns.TagHeartbeat], 10, 64)
		if tags.Tags[patterns.TagReplyQueue] != "true" || tags.Tags[patterns.TagOwner] != "test-owner" || tags.Tags["team"] != "payments" ||
			time.Since(time.Unix(hb, 0)) > time.Minute {
			t.Errorf("reply queue tags %v", tags.Tags)
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 90*time.Second, "reply queue deleted by Close", func() bool { return !queueExists(t, client, url) })

		// A given queue.
		given := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 5 * time.Second})
		q := b.CreateQueue(t, backend.QueueOptions{})
		startResponder(t, client, q.URL, patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowReplyTo: []string{given.URL}},
			func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) { return echo(req), nil })
		g := newRequester(t, client, patterns.RequesterOptions{ReplyQueueURL: given.URL})
		reply, err := g.Request(ctx, q.URL, &patterns.Message{Body: []byte("via a given queue")})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkEcho("via a given queue", reply); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if !queueExists(t, client, given.URL) {
			t.Fatal("Close deleted the given reply queue")
		}
		tags, err = client.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(given.URL)})
		if err != nil || len(tags.Tags) != 0 {
			t.Errorf("given queue tags %v (%v), want none", tags.Tags, err)
		}
		if st := g.Stats(); st.QueuesCreated != 0 {
			t.Errorf("stats %+v: a given queue must not be created", st)
		}
	})
}

// TestSweep: the sweeper deletes an orphaned reply queue (tagged, heartbeat
// older than idle) and leaves alone fresh ones, a live Requester's,
// untagged ones, unreadable heartbeats, and other prefixes.
func TestSweep(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		client := b.SQS()
		ctx := context.Background()
		prefix := replyPrefix(t)
		old := strconv.FormatInt(time.Now().Add(-2*time.Hour).Unix(), 10)
		fresh := strconv.FormatInt(time.Now().Unix(), 10)
		mk := func(name string, tags map[string]string) string {
			out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Tags: tags})
			if err != nil {
				t.Fatal(err)
			}
			url := aws.ToString(out.QueueUrl)
			t.Cleanup(func() {
				_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
			})
			return url
		}
		orphan := mk(prefix+"orphan", map[string]string{patterns.TagReplyQueue: "true", patterns.TagHeartbeat: old})
		keep := map[string]string{
			"fresh":       mk(prefix+"fresh", map[string]string{patterns.TagReplyQueue: "true", patterns.TagHeartbeat: fresh}),
			"untagged":    mk(prefix+"untagged", nil),
			"not a reply": mk(prefix+"other", map[string]string{"team": "x", patterns.TagHeartbeat: old}),
			"unreadable":  mk(prefix+"unreadable", map[string]string{patterns.TagReplyQueue: "true", patterns.TagHeartbeat: "yesterday"}),
			"prefix":      mk("x"+prefix+"orphan", map[string]string{patterns.TagReplyQueue: "true", patterns.TagHeartbeat: old}),
		}
		live := newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: prefix})
		if err := live.Start(ctx); err != nil {
			t.Fatal(err)
		}
		keep["live requester"] = live.ReplyQueueURL()

		// ListQueues is eventually consistent on AWS: sweep until the
		// orphan is listed and gone.
		deleted := map[string]bool{}
		waitFor(t, 90*time.Second, "the orphan swept", func() bool {
			d, err := patterns.Sweep(ctx, client, prefix, time.Hour)
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			for _, u := range d {
				deleted[u] = true
			}
			return !queueExists(t, client, orphan)
		})
		if len(deleted) != 1 || !deleted[orphan] {
			t.Errorf("swept %v, want just %s", deleted, orphan)
		}
		for what, url := range keep {
			if !queueExists(t, client, url) {
				t.Errorf("the sweeper deleted the %s queue %s", what, url)
			}
		}
		if _, err := patterns.Sweep(ctx, client, prefix, 0); !errors.Is(err, patterns.ErrInvalidConfig) {
			t.Errorf("Sweep with idle 0: %v, want ErrInvalidConfig", err)
		}
	})
}

// TestRequesterReplacesLostQueue: when its reply queue is deleted behind
// its back (swept while a Lambda environment was frozen), the Requester
// creates a new one and goes on answering.
func TestRequesterReplacesLostQueue(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		client := b.SQS()
		ctx := context.Background()
		prefix := replyPrefix(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		startResponder(t, client, q.URL, patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowNames: []string{prefix + "*"}},
			func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) { return echo(req), nil })
		r := newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: prefix, HeartbeatInterval: time.Second})
		if _, err := r.Request(ctx, q.URL, &patterns.Message{Body: []byte("before")}); err != nil {
			t.Fatal(err)
		}
		lost := r.ReplyQueueURL()
		if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(lost)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 90*time.Second, "a new reply queue", func() bool { return r.Stats().QueuesCreated == 2 })
		if now := r.ReplyQueueURL(); now == lost {
			t.Fatalf("reply queue still %s", now)
		}
		reply, err := r.Request(ctx, q.URL, &patterns.Message{Body: []byte("after")})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkEcho("after", reply); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(lost)})
		})
	})
}
