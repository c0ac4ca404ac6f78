package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
)

// syncBuffer is a Buffer a test can read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the buffer holds sub.
func (s *syncBuffer) waitFor(t *testing.T, sub string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(s.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v in:\n%s", sub, d, s.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type result struct {
	code     int
	out, err string
}

// courier runs the command in-process against cfg.
func courier(t *testing.T, cfg aws.Config, stdin string, args ...string) result {
	t.Helper()
	var out, errb syncBuffer
	return courierEnv(t, cfg, stdin, false, &out, &errb, args...)
}

func courierEnv(t *testing.T, cfg aws.Config, stdin string, tty bool, out, errb *syncBuffer, args ...string) result {
	t.Helper()
	e := &env{
		in: strings.NewReader(stdin), out: out, err: errb, tty: tty,
		load: func(context.Context, globals) (aws.Config, error) { return cfg, nil },
	}
	code := run(context.Background(), args, e)
	return result{code, out.String(), errb.String()}
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if r.code != 0 {
		t.Fatalf("exit %d: %s%s", r.code, r.out, r.err)
	}
	if err := json.Unmarshal([]byte(r.out), &v); err != nil {
		t.Fatalf("output is no %T: %v\n%s", v, err, r.out)
	}
	return v
}

func TestUsageAndExitCodes(t *testing.T) {
	mem := backend.Memory()
	cfg := mem.Config()
	missing := "http://sqs.us-east-1.localhost/123456789012/courier-no-such-queue"
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, "usage: courier COMMAND"},
		{[]string{"-h"}, 0, ""},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"send"}, 2, "missing arguments"},
		{[]string{"send", "not a queue", "x"}, 2, "not a queue URL"},
		{[]string{"send", "http://host/q", "x"}, 2, "invalid queue URL"},
		{[]string{"send", missing, "x", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"send", missing, "x", "y", "z"}, 2, "too many arguments"},
		{[]string{"send", "-attr", "novalue", missing, "x"}, 2, "want name=value"},
		{[]string{"send", missing, "x"}, 1, "courier send:"},
		{[]string{"peek", "-n", "0", missing}, 2, "-n 0"},
		{[]string{"dlq"}, 2, "want show or redrive"},
		{[]string{"dlq", "purge", missing}, 2, `unknown dlq command "purge"`},
		{[]string{"dlq", "redrive", "-method", "teleport", missing}, 2, "-method"},
		{[]string{"dlq", "redrive", "-method", "move-task", "-rate", "501", missing}, 2, "-rate 501"},
		{[]string{"tail", "-filter", `{"a":["b"]}`, missing}, 2, "-filter applies to a topic"},
		{[]string{"filter"}, 2, "missing arguments"},
		{[]string{"filter", "-scope", "headers", "{}"}, 2, "-scope"},
		{[]string{"filter", `{"a":["b"]}`, "testdata/none.json"}, 2, "no such file"},
		{[]string{"stats"}, 2, "missing arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := courier(t, cfg, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.err, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr %q, want it to hold %q", r.code, tc.code, r.err, tc.stderr)
			}
		})
	}
}

func TestSendPeekStats(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		cfg := b.Config()
		q := b.CreateQueue(t, backend.QueueOptions{MaxReceiveCount: 5})
		sent := decode[map[string]string](t, courier(t, cfg, "", "send", q.URL, `{"hello":"world"}`, "-attr", "color=red", "-attr", "size:Number=3", "-json"))
		if sent["messageId"] == "" {
			t.Fatalf("send: %v", sent)
		}
		// moto sometimes answers a receive with HTTP 500 after it took the
		// message (its MD5 of attributes fails under load); the SDK's retry
		// then finds the queue empty and the message stays in flight for
		// the hold. A short hold and a second peek see it again.
		peeked := decode[[]peekedJSON](t, courier(t, cfg, "", "peek", "-json", "-hold", "2s", q.URL))
		if len(peeked) == 0 {
			time.Sleep(3 * time.Second)
			peeked = decode[[]peekedJSON](t, courier(t, cfg, "", "peek", "-json", "-hold", "2s", q.URL))
		}
		wantCount := 1
		if len(peeked) == 1 && peeked[0].ReceiveCount == 2 {
			wantCount = 2 // the lost receive counted too
		}
		if len(peeked) != 1 || peeked[0].ID != sent["messageId"] || peeked[0].Body != `{"hello":"world"}` ||
			peeked[0].Attributes["color"] != "red" || peeked[0].Attributes["size"] != "3" || peeked[0].ReceiveCount != wantCount {
			t.Errorf("peek: %+v", peeked)
		}
		r := courier(t, cfg, "", "peek", q.URL)
		if !strings.Contains(r.out, sent["messageId"]) || !strings.Contains(r.out, "RECEIVES") || !strings.Contains(r.err, "a peek is a receive") {
			t.Errorf("peek table: %+v", r)
		}
		st := decode[[]stats](t, courier(t, cfg, "", "stats", "-json", q.URL))
		if len(st) != 1 || st[0].Visible+st[0].InFlight != 1 || st[0].DLQ == nil || st[0].DLQ.URL != q.DLQURL {
			t.Errorf("stats: %+v", st)
		}
		r = courier(t, cfg, "", "stats", q.URL, "-sample", "5")
		if r.code != 0 || !strings.Contains(r.out, "IN FLIGHT") || !strings.Contains(r.out, "(of 1)") {
			t.Errorf("stats table: %+v", r)
		}

		fifo := b.CreateQueue(t, backend.QueueOptions{FIFO: true})
		decode[map[string]string](t, courier(t, cfg, "body from stdin", "send", "-group", "g1", "-dedup", "d1", "-json", fifo.URL))
		peeked = decode[[]peekedJSON](t, courier(t, cfg, "", "peek", "-json", fifo.URL))
		if len(peeked) != 1 || peeked[0].Body != "body from stdin" || peeked[0].GroupID != "g1" || peeked[0].DeduplicationID != "d1" {
			t.Errorf("FIFO peek: %+v", peeked)
		}
	})
}

func TestTailQueue(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		cfg := b.Config()
		q := b.CreateQueue(t, backend.QueueOptions{})
		for i := range 3 {
			courier(t, cfg, "", "send", q.URL, fmt.Sprintf("m%d", i))
		}
		r := courier(t, cfg, "", "tail", q.URL, "-n", "3", "-delete", "-json", "-timeout", "20s")
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if r.code != 0 || len(lines) != 3 {
			t.Fatalf("tail: %+v", r)
		}
		for _, l := range lines {
			var m tailedJSON
			if err := json.Unmarshal([]byte(l), &m); err != nil || !strings.HasPrefix(m.Body, "m") {
				t.Errorf("line %q: %v", l, err)
			}
		}
		if visible, inflight := b.Counts(t, q.URL); visible+inflight != 0 {
			t.Errorf("tail -delete left %d+%d", visible, inflight)
		}
	})
}

func TestTailTopic(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		cfg := b.Config()
		topic := b.CreateTopic(t, false, nil)
		var out, errb syncBuffer
		done := make(chan result, 1)
		go func() {
			done <- courierEnv(t, cfg, "", false, &out, &errb, "tail", topic, "-n", "1", "-timeout", "30s", "-filter", `{"color":["red"]}`)
		}()
		errb.waitFor(t, "removed on exit", 15*time.Second)
		courier(t, cfg, "", "send", topic, "blue one", "-attr", "color=blue")
		courier(t, cfg, "", "send", topic, "red one", "-attr", "color=red")
		var r result
		select {
		case r = <-done:
		case <-time.After(40 * time.Second):
			t.Fatal("tail did not end")
		}
		if r.code != 0 || !strings.Contains(r.out, "red one") || strings.Contains(r.out, "blue one") || strings.Contains(r.out, "TopicArn") ||
			!strings.Contains(r.out, "color=red") {
			t.Fatalf("tail of a topic (unwrapped, filtered): %+v", r)
		}
		// The temporary queue is gone.
		_, name, _ := strings.Cut(r.err, "through ")
		url, _, _ := strings.Cut(name, " ")
		_, err := sqs.NewFromConfig(cfg).GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)})
		if err == nil {
			t.Errorf("temporary queue %s still there", url)
		}
	})
}

// failToDLQ sends n messages (FIFO: in groups g0, g1) and fails them into
// the dead-letter queue.
func failToDLQ(t *testing.T, b *backend.Backend, q backend.Queue, fifo bool, n int) map[string][]string {
	t.Helper()
	sent := map[string][]string{}
	for i := range n {
		group := fmt.Sprintf("g%d", i%2)
		body := fmt.Sprintf("%s-m%d", group, i)
		args := []string{"send", q.URL, body, "-attr", "i:Number=" + fmt.Sprint(i)}
		if fifo {
			args = append(args, "-group", group, "-dedup", body)
		}
		if r := courier(t, b.Config(), "", args...); r.code != 0 {
			t.Fatalf("send: %+v", r)
		}
		sent[group] = append(sent[group], body)
	}
	b.FailToDLQ(t, q, n)
	return sent
}

// drainInOrder receives everything from url: every body once, FIFO in
// group order.
func drainInOrder(t *testing.T, b *backend.Backend, url string, sent map[string][]string, fifo bool) {
	t.Helper()
	want := 0
	for _, v := range sent {
		want += len(v)
	}
	client := b.SQS()
	got := map[string][]string{}
	seen := map[string]bool{}
	deadline := time.Now().Add(15 * time.Second)
	for len(seen) < want && time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			body := aws.ToString(m.Body)
			if m.MessageAttributes["i"].StringValue == nil {
				t.Errorf("%s lost its attribute", body)
			}
			_, _ = client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
			if seen[body] {
				continue
			}
			seen[body] = true
			got[m.Attributes["MessageGroupId"]] = append(got[m.Attributes["MessageGroupId"]], body)
		}
	}
	if len(seen) != want {
		t.Fatalf("%d of %d came back", len(seen), want)
	}
	if fifo {
		for g, bodies := range sent {
			if fmt.Sprint(got[g]) != fmt.Sprint(bodies) {
				t.Errorf("group %s: %v, want %v", g, got[g], bodies)
			}
		}
	}
}

func TestDLQRedrive(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		for _, fifo := range []bool{false, true} {
			t.Run(map[bool]string{false: "standard", true: "fifo"}[fifo], func(t *testing.T) {
				cfg := b.Config()
				q := b.CreateQueue(t, backend.QueueOptions{FIFO: fifo, MaxReceiveCount: 1})
				sent := failToDLQ(t, b, q, fifo, 6)
				show := decode[map[string]any](t, courier(t, cfg, "", "dlq", "show", "-json", "-n", "0", q.URL))
				if show["visible"].(float64)+show["inFlight"].(float64) != 6 {
					t.Errorf("dlq show: %v", show)
				}
				res := decode[map[string]any](t, courier(t, cfg, "", "dlq", "redrive", "-json", "-rate", "100", q.URL))
				t.Logf("%s: courier dlq redrive ran %v (fallback: %v), moved %v", b.Name, res["method"], res["fallback"], res["moved"])
				if res["moved"].(float64) != 6 {
					t.Errorf("redrive: %v", res)
				}
				drainInOrder(t, b, q.URL, sent, fifo)
				if visible, inflight := b.Counts(t, q.DLQURL); visible+inflight != 0 {
					t.Errorf("dead-letter queue still holds %d+%d", visible, inflight)
				}
			})
		}
	})
}

func TestDLQShowAndProgress(t *testing.T) {
	b := backend.Require(t, "memory")
	cfg := b.Config()
	for _, tty := range []bool{true, false} {
		q := b.CreateQueue(t, backend.QueueOptions{MaxReceiveCount: 1})
		failToDLQ(t, b, q, false, 3)
		r := courier(t, cfg, "", "dlq", "show", q.DLQURL)
		if r.code != 0 || !strings.Contains(r.out, "maxReceiveCount    1") || !strings.Contains(r.out, q.URL) || strings.Count(r.out, "g0-m") != 2 {
			t.Errorf("dlq show: %+v", r)
		}
		var out, errb syncBuffer
		r = courierEnv(t, cfg, "", tty, &out, &errb, "dlq", "redrive", q.URL, "-method", "copy")
		want := "progress: moved 3 of 3"
		if tty {
			want = "\r[" + strings.Repeat("#", 30) + "] 3/3"
		}
		if r.code != 0 || !strings.Contains(r.out, want) || !strings.Contains(r.out, "moved 3 of 3 by receive-send-delete") {
			t.Errorf("tty %v: %q, want it to hold %q", tty, r.out, want)
		}
	}
}

func TestFilter(t *testing.T) {
	cfg := backend.Memory().Config() // filter makes no AWS call
	attrPolicy := `{"color":["red"],"size":[{"numeric":[">",5]}]}`
	r := courier(t, cfg, "", "filter", attrPolicy)
	if r.code != 0 || !strings.Contains(r.out, "valid filter policy (MessageAttributes)") {
		t.Errorf("valid policy: %+v", r)
	}
	got := decode[struct {
		Valid   bool        `json:"valid"`
		Results []matchJSON `json:"results"`
	}](t, courier(t, cfg, "", "filter", "-json", attrPolicy, "testdata/sns-notification.json", "testdata/sqs-messages.json", "testdata/sns-publish.json"))
	want := []matchJSON{
		{"testdata/sns-notification.json", 0, true},
		{"testdata/sqs-messages.json", 0, false}, // blue
		{"testdata/sqs-messages.json", 1, false}, // red, size 3
		{"testdata/sns-publish.json", 0, true},
	}
	if !got.Valid || fmt.Sprint(got.Results) != fmt.Sprint(want) {
		t.Errorf("matches %v, want %v", got.Results, want)
	}

	bodies, _ := readFile("testdata/bodies.json")
	r = courier(t, cfg, bodies, "filter", "-scope", "body", `{"order":{"total":[{"numeric":[">=",100]}]}}`, "-")
	if r.code != 0 || !strings.Contains(r.out, "1 of 2 match") {
		t.Errorf("body scope from stdin: %+v", r)
	}

	// A policy SNS would refuse: the PolicyError's fields.
	sixKeys := `{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}`
	r = courier(t, cfg, "", "filter", "-json", sixKeys)
	var bad struct {
		Valid bool            `json:"valid"`
		Error policyErrorJSON `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.out), &bad); err != nil || r.code != 1 || bad.Valid || bad.Error.Rule != "keys" || bad.Error.Limit != 5 || bad.Error.Got != 6 {
		t.Errorf("six keys: %+v %+v %v", r, bad, err)
	}
	r = courier(t, cfg, "", "filter", `{"color":[{"prefix":1}]}`)
	if r.code != 1 || !strings.Contains(r.out, "path    color") || !strings.Contains(r.out, "rule    operand") {
		t.Errorf("bad operand: %+v", r)
	}
	r = courier(t, cfg, "", "filter", "@testdata/none.json")
	if r.code != 2 {
		t.Errorf("missing policy file: %+v", r)
	}
}
