package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// wireRig is a request queue with a dead-letter queue (maxReceiveCount
// 2) on memaws, and queues replies may or may not go to.
type wireRig struct {
	mem             *memaws.Server
	client          *sqs.Client
	requests, dlq   string
	allowed, victim string // courier-reply-a (allowed by default), victim (not)
	handled         atomic.Int64
	responder       *patterns.Responder
	stop            func()
}

func newWireRig(t *testing.T, cfg patterns.ResponderOptions, h patterns.RequestHandler) *wireRig {
	t.Helper()
	ctx := context.Background()
	r := &wireRig{mem: memaws.New()}
	r.client = r.mem.SQS()
	mk := func(name string, attrs map[string]string) string {
		out, err := r.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	r.dlq = mk("requests-dlq", nil)
	dlqARN, err := r.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(r.dlq), AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatal(err)
	}
	r.requests = mk("requests", map[string]string{
		"VisibilityTimeout": "5",
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"2"}`, dlqARN.Attributes["QueueArn"]),
	})
	r.allowed = mk("courier-reply-a", nil)
	r.victim = mk("victim", nil)
	cfg.WaitTime, cfg.Logger = time.Second, slog.New(slog.DiscardHandler)
	if h == nil {
		h = func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
			r.handled.Add(1)
			return &patterns.Message{Body: append([]byte("echo "), req.Body...), Attributes: req.Attributes}, nil
		}
	}
	r.responder, err = patterns.NewResponder(r.client, r.requests, with(cfg))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.responder.Run(rctx, h) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	return r
}

// send puts a hand-built request on the request queue.
func (r *wireRig) send(t *testing.T, body string, attrs map[string]string) {
	t.Helper()
	in := &sqs.SendMessageInput{QueueUrl: aws.String(r.requests), MessageBody: aws.String(body), MessageAttributes: map[string]sqstypes.MessageAttributeValue{}}
	for k, v := range attrs {
		in.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	if _, err := r.client.SendMessage(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// drain receives what a queue holds (bodies and attributes).
func (r *wireRig) drain(t *testing.T, url string) []sqstypes.Message {
	t.Helper()
	var all []sqstypes.Message
	for {
		out, err := r.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

func header(cid, ra string) string {
	v := map[string]string{}
	if cid != "" {
		v["cid"] = cid
	}
	if ra != "" {
		v["ra"] = ra
	}
	var parts []string
	for _, k := range []string{"cid", "ra"} {
		if v[k] != "" {
			parts = append(parts, k+"="+strings.NewReplacer(":", "%3A", "/", "%2F").Replace(v[k]))
		}
	}
	return strings.Join(parts, "&")
}

// A request whose return address is refused (not allowed, or none) does
// not vanish: it is not answered, not deleted, counted, and its redrive
// policy moves it to the dead-letter queue. One whose address is allowed
// but that has no correlation id is answered there with an error reply.
func TestResponderRefusedRequestGoesToDLQ(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newWireRig(t, patterns.ResponderOptions{}, nil)
		r.send(t, "forged", map[string]string{"courier": header("f1", r.victim)})
		r.send(t, "no address", map[string]string{"courier": header("n1", "")})
		r.send(t, "no cid", map[string]string{"courier": header("", r.allowed)})
		time.Sleep(time.Minute)
		r.stop()

		if n := r.handled.Load(); n != 0 {
			t.Errorf("handler ran %d times", n)
		}
		if got := r.drain(t, r.victim); len(got) != 0 {
			t.Errorf("the victim queue got %d messages", len(got))
		}
		dead := map[string]bool{}
		for _, m := range r.drain(t, r.dlq) {
			dead[aws.ToString(m.Body)] = true
		}
		if !dead["forged"] || !dead["no address"] || len(dead) != 2 {
			t.Errorf("dead-letter queue holds %v, want the two refused requests", dead)
		}
		replies := r.drain(t, r.allowed)
		if len(replies) != 1 || !strings.Contains(aws.ToString(replies[0].MessageAttributes["courier"].StringValue), "error=") ||
			!strings.Contains(aws.ToString(replies[0].Body), "no correlation id") {
			t.Errorf("allowed address without cid: replies %+v, want one error reply", replies)
		}
		if left := r.drain(t, r.requests); len(left) != 0 {
			t.Errorf("%d requests left on the request queue", len(left))
		}
		// Two refusals per refused request (maxReceiveCount 2), one for
		// the request without cid.
		if got := r.responder.Stats().Rejected; got != 5 {
			t.Errorf("Stats().Rejected = %d, want 5", got)
		}
	})
}

// javaQueues makes the queues of a temporary-queues client: one created
// for a request, and a host queue of virtual ones.
func (r *wireRig) javaQueue(t *testing.T, name string) string {
	t.Helper()
	out, err := r.client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// Requests of the AWS Java temporary-queues client (amazon-sqs-java-
// temporary-queues-client), built by hand as its AmazonSQSRequester sends
// them: a ResponseQueueUrl attribute naming a queue, or a virtual queue
// (HOST#NAME), and no correlation id. The Responder answers as its
// AmazonSQSResponder does, within the allowlist.
func TestResponderAnswersJavaTemporaryQueuesRequester(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := patterns.ResponderOptions{AllowNames: []string{"courier-reply-*", "__RequesterClientQueues__*"}}
		var r *wireRig
		r = newWireRig(t, cfg, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
			r.handled.Add(1)
			if string(req.Body) == "fail" {
				return nil, errors.New("no such sku")
			}
			return &patterns.Message{Body: append([]byte("echo "), req.Body...), Attributes: map[string]patterns.Attribute{"kind": patterns.StringAttr("quote")}}, nil
		})
		plain := r.javaQueue(t, "__RequesterClientQueues__5f0c-plain")
		host := r.javaQueue(t, "__RequesterClientQueues__5f0c-0")
		virtual := "__RequesterClientQueues__9a1d"
		notAllowed := r.javaQueue(t, "someone-elses")
		r.send(t, "ping", map[string]string{"ResponseQueueUrl": plain})
		r.send(t, "vping", map[string]string{"ResponseQueueUrl": host + "#" + virtual})
		r.send(t, "fail", map[string]string{"ResponseQueueUrl": plain + "#" + virtual})
		r.send(t, "elsewhere", map[string]string{"ResponseQueueUrl": notAllowed})
		r.send(t, "bad virtual name", map[string]string{"ResponseQueueUrl": host + "#no/slashes"})
		time.Sleep(time.Minute)
		r.stop()

		onPlain := map[string]sqstypes.Message{}
		for _, m := range r.drain(t, plain) {
			onPlain[aws.ToString(m.Body)] = m
		}
		if p, ok := onPlain["echo ping"]; !ok || aws.ToString(p.MessageAttributes["kind"].StringValue) != "quote" {
			t.Errorf("plain response queue: %v, want the reply to ping", onPlain)
		}
		// The failing request named a virtual queue hosted on the plain
		// queue: its error reply went there, with the virtual name.
		e, ok := onPlain["no such sku"]
		if !ok || aws.ToString(e.MessageAttributes["__AmazonSQSVirtualQueuesClient.QueueName"].StringValue) != virtual ||
			!strings.Contains(aws.ToString(e.MessageAttributes["courier"].StringValue), "error=no+such+sku") {
			t.Errorf("plain response queue: %v, want the error reply to fail", onPlain)
		}
		if len(onPlain) != 2 {
			t.Errorf("plain response queue holds %d messages, want 2", len(onPlain))
		}
		byBody := map[string]sqstypes.Message{}
		for _, m := range r.drain(t, host) {
			byBody[aws.ToString(m.Body)] = m
		}
		v, ok := byBody["echo vping"]
		if !ok || aws.ToString(v.MessageAttributes["__AmazonSQSVirtualQueuesClient.QueueName"].StringValue) != virtual {
			t.Errorf("host queue: %+v, want the reply to vping for virtual queue %s", byBody, virtual)
		}
		if len(byBody) != 1 {
			t.Errorf("host queue holds %d messages, want 1", len(byBody))
		}
		if got := r.drain(t, notAllowed); len(got) != 0 {
			t.Errorf("a queue outside the allowlist got %d messages", len(got))
		}
		dead := map[string]bool{}
		for _, m := range r.drain(t, r.dlq) {
			dead[aws.ToString(m.Body)] = true
		}
		if !dead["elsewhere"] || !dead["bad virtual name"] || len(dead) != 2 {
			t.Errorf("dead-letter queue holds %v, want the two refused requests", dead)
		}
		st := r.responder.Stats()
		if st.Requests != 3 || st.Replies != 3 || st.ErrorReplies != 1 {
			t.Errorf("stats %+v, want 3 requests, 3 replies, 1 error reply", st)
		}
	})
}
