package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// drainBodies empties a queue (SNS envelopes unwrapped) and returns the
// distinct bodies it held.
func drainBodies(t *testing.T, b *backend.Backend, url string, wait time.Duration) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range b.Drain(t, url, wait) {
		body := aws.ToString(m.Body)
		if env, err := patterns.ParseSNSEnvelope([]byte(body)); err == nil {
			body = string(env.Body)
		}
		seen[body] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// missingQueueURL is a well-formed URL of a queue that does not exist, in
// the account of q.
func missingQueueURL(t *testing.T, q string) string {
	name := backend.UniqueName(t)
	return q[:strings.LastIndex(q, "/")+1] + "gone-" + name[len(name)-8:]
}

// Orders routed by rules written in Go: every message reaches exactly the
// destinations its rules compute, queues and a topic alike, and a queue
// that no rule names gets nothing. Copies bound for one destination share
// batch requests.
func TestRecipientListRoutes(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		eu := b.CreateQueue(t, backend.QueueOptions{})
		us := b.CreateQueue(t, backend.QueueOptions{})
		audit := b.CreateQueue(t, backend.QueueOptions{})
		never := b.CreateQueue(t, backend.QueueOptions{}) // a candidate no message is routed to
		topic := b.CreateTopic(t, false, nil)
		onTopic := b.CreateQueue(t, backend.QueueOptions{})
		if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, onTopic.URL, func(o *patterns.ChainOptions) { o.Raw = true }); err != nil {
			t.Fatal(err)
		}
		var sqsCount, snsCount patterns.RequestCounter
		rl, err := patterns.NewRecipientList(b.SQS(&sqsCount), b.SNS(&snsCount), func(o *patterns.RecipientListOptions) {
			o.Route = func(m *patterns.Message) []patterns.Destination {
				switch m.Attr("region") {
				case "eu":
					return []patterns.Destination{patterns.Destination(eu.URL)}
				case "us":
					return []patterns.Destination{patterns.Destination(us.URL)}
				}
				return nil
			}
			o.Rules = []patterns.RecipientRule{
				{Name: "big orders are audited and announced", Match: func(m *patterns.Message) bool { return m.Attr("size") == "big" },
					To: []patterns.Destination{patterns.Destination(audit.URL), patterns.Destination(topic)}},
				{Name: "eu is audited too", Match: func(m *patterns.Message) bool { return m.Attr("region") == "eu" },
					To: []patterns.Destination{patterns.Destination(audit.URL)}},
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{}
		var msgs []*patterns.Message
		for i := range 24 {
			region := []string{"eu", "us", "none"}[i%3]
			size := []string{"big", "small"}[i%2]
			body := fmt.Sprintf("order-%02d-%s-%s", i, region, size)
			m := &patterns.Message{Body: []byte(body)}
			if region != "none" {
				m.SetAttr("region", region)
			}
			m.SetAttr("size", size)
			if region == "none" && size == "small" {
				continue // no recipient: tested in TestRecipientListChecksBeforeSending
			}
			msgs = append(msgs, m)
			switch region {
			case "eu":
				want[eu.URL] = append(want[eu.URL], body)
				want[audit.URL] = append(want[audit.URL], body)
			case "us":
				want[us.URL] = append(want[us.URL], body)
			}
			if size == "big" {
				if region != "eu" {
					want[audit.URL] = append(want[audit.URL], body)
				}
				want[onTopic.URL] = append(want[onTopic.URL], body)
			}
		}
		deliveries, err := rl.Send(ctx, msgs...)
		if err != nil {
			t.Fatal(err)
		}
		copies := 0
		for _, w := range want {
			copies += len(w)
		}
		if len(deliveries) != copies {
			t.Errorf("%d deliveries, want %d copies", len(deliveries), copies)
		}
		for _, d := range deliveries {
			if d.ID == "" {
				t.Errorf("delivery %+v has no message id", d)
			}
		}
		for _, m := range msgs {
			if m.ID != "" {
				t.Errorf("the message given was changed: ID %q", m.ID)
			}
		}
		for name, url := range map[string]string{"eu": eu.URL, "us": us.URL, "audit": audit.URL, "never": never.URL, "topic": onTopic.URL} {
			wait := time.Second
			if name == "topic" {
				wait = 2 * time.Second // SNS delivers after Publish returns
			}
			got := drainBodies(t, b, url, wait)
			slices.Sort(want[url])
			if !slices.Equal(got, want[url]) {
				t.Errorf("%s received %v\nwant %v", name, got, want[url])
			}
		}
		// Full batches: a destination's n copies take ceil(n/10) batch
		// requests, and nothing is sent alone.
		batches := func(urls ...string) int64 {
			n := 0
			for _, u := range urls {
				n += (len(want[u]) + 9) / 10
			}
			return int64(n)
		}
		if got, want := sqsCount.Get("SQS.SendMessageBatch"), batches(eu.URL, us.URL, audit.URL); got != want {
			t.Errorf("SendMessageBatch calls = %d, want %d: %v", got, want, sqsCount.Counts())
		}
		if got, want := snsCount.Get("SNS.PublishBatch"), batches(onTopic.URL); got != want {
			t.Errorf("PublishBatch calls = %d, want %d", got, want)
		}
		if got := sqsCount.Get("SQS.SendMessage") + snsCount.Get("SNS.Publish"); got != 0 {
			t.Errorf("%d single sends, want none", got)
		}
	})
}

// One unreachable queue and one nonexistent topic among the recipients:
// both are reported with every message they missed, errors.Is finds
// ErrNotFound, and the reachable destination still receives everything.
func TestRecipientListUnreachableDestination(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		good := b.CreateQueue(t, backend.QueueOptions{})
		goneQueue := patterns.Destination(missingQueueURL(t, good.URL))
		topic := b.CreateTopic(t, false, nil)
		goneTopic := patterns.Destination(topic[:strings.LastIndex(topic, ":")+1] + "gone-" + backend.UniqueName(t)[len(backend.UniqueName(t))-8:])
		rl, err := patterns.NewRecipientList(b.SQS(), b.SNS(), func(o *patterns.RecipientListOptions) {
			o.Route = func(*patterns.Message) []patterns.Destination {
				return []patterns.Destination{goneQueue, patterns.Destination(good.URL), goneTopic}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []*patterns.Message
		var want []string
		for i := range 13 {
			body := fmt.Sprintf("notice-%02d", i)
			msgs = append(msgs, &patterns.Message{Body: []byte(body)})
			want = append(want, body)
		}
		deliveries, err := rl.Send(ctx, msgs...)
		var re *patterns.RecipientError
		if !errors.As(err, &re) {
			t.Fatalf("Send returned %v, want a *RecipientError", err)
		}
		if !errors.Is(err, patterns.ErrNotFound) {
			t.Errorf("errors.Is(err, ErrNotFound) is false: %v", err)
		}
		wantFailed := []patterns.Destination{goneTopic, goneQueue}
		slices.Sort(wantFailed)
		if got := re.Destinations(); !slices.Equal(got, wantFailed) {
			t.Errorf("failed destinations %v, want %v", got, wantFailed)
		}
		for _, f := range re.Failed {
			if len(f.Failed) != len(msgs) {
				t.Errorf("%s: %d failed entries, want %d", f.Destination, len(f.Failed), len(msgs))
			}
			for i, e := range f.Failed {
				if e.Index != i || e.Message != msgs[i] || e.Err == nil {
					t.Errorf("%s: entry %d = {Index %d, Err %v}, want index %d and the message given", f.Destination, i, e.Index, e.Err, i)
				}
			}
		}
		if len(deliveries) != len(msgs) {
			t.Errorf("%d deliveries, want %d (the reachable queue)", len(deliveries), len(msgs))
		}
		for _, d := range deliveries {
			if d.Destination != patterns.Destination(good.URL) {
				t.Errorf("delivery to %s, which failed", d.Destination)
			}
		}
		if got := drainBodies(t, b, good.URL, 2*time.Second); !slices.Equal(got, want) {
			t.Errorf("the reachable queue received %v, want %v", got, want)
		}
	})
}

// Routes and messages are checked before any request: a destination
// that is neither a queue URL nor a topic ARN, a message with no
// recipient, a FIFO queue without a group id, a message too large for a
// topic. Then nothing at all is sent.
func TestRecipientListChecksBeforeSending(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		q := b.CreateQueue(t, backend.QueueOptions{})
		fifo := b.CreateQueue(t, backend.QueueOptions{FIFO: true, ContentDedup: true})
		topic := b.CreateTopic(t, false, nil)
		var rc patterns.RequestCounter
		route := map[string][]patterns.Destination{
			"bad":   {patterns.Destination(q.URL), "sqs://not-a-queue"},
			"fifo":  {patterns.Destination(q.URL), patterns.Destination(fifo.URL)},
			"topic": {patterns.Destination(q.URL), patterns.Destination(topic)},
			"fine":  {patterns.Destination(q.URL)},
		}
		rl, err := patterns.NewRecipientList(b.SQS(&rc), b.SNS(&rc), func(o *patterns.RecipientListOptions) {
			o.Route = func(m *patterns.Message) []patterns.Destination { return route[m.Attr("kind")] }
		})
		if err != nil {
			t.Fatal(err)
		}
		msg := func(kind string, size int) *patterns.Message {
			m := &patterns.Message{Body: []byte(strings.Repeat("x", size))}
			m.SetAttr("kind", kind)
			return m
		}
		for _, tc := range []struct {
			kind string
			size int
			want error
		}{
			{"bad", 10, patterns.ErrInvalidDestination},
			{"nobody", 10, patterns.ErrNoRecipients},
			{"fifo", 10, patterns.ErrInvalidGroupID},
			{"topic", patterns.MaxSNSMessageBytes + 1, patterns.ErrMessageTooLarge},
		} {
			_, err := rl.Send(ctx, msg("fine", 10), msg(tc.kind, tc.size))
			var se *patterns.SendError
			if !errors.Is(err, tc.want) || !errors.As(err, &se) || len(se.Failed) != 1 || se.Failed[0].Index != 1 {
				t.Errorf("%s: got %v, want a *SendError naming message 1 with %v", tc.kind, err, tc.want)
			}
		}
		if _, err := rl.SendTo(ctx, []patterns.Destination{patterns.Destination(q.URL), "arn:aws:sqs:us-east-1:1:q"}, msg("fine", 1)); !errors.Is(err, patterns.ErrInvalidDestination) {
			t.Errorf("SendTo an SQS ARN: got %v, want ErrInvalidDestination", err)
		}
		if rc.Total() != 0 {
			t.Errorf("%d requests made, want none: %v", rc.Total(), rc.Counts())
		}
		if got := b.Drain(t, q.URL, time.Second); len(got) != 0 {
			t.Errorf("%d messages sent, want none", len(got))
		}

		// Configuration mistakes are refused at construction.
		for _, cfg := range []patterns.RecipientListOptions{
			{Rules: []patterns.RecipientRule{{Name: "no match", To: []patterns.Destination{patterns.Destination(q.URL)}}}},
			{Rules: []patterns.RecipientRule{{Name: "bad to", Match: func(*patterns.Message) bool { return true }, To: []patterns.Destination{"queue"}}}},
			{Default: []patterns.Destination{"arn:aws:sns:us-east-1:1"}},
		} {
			if _, err := patterns.NewRecipientList(b.SQS(), b.SNS(), with(cfg)); !errors.Is(err, patterns.ErrInvalidConfig) {
				t.Errorf("config %+v: got %v, want ErrInvalidConfig", cfg, err)
			}
		}
		if _, err := patterns.NewRecipientList(b.SQS(), nil, func(o *patterns.RecipientListOptions) {
			o.Default = []patterns.Destination{patterns.Destination(topic)}
		}); !errors.Is(err, patterns.ErrInvalidDestination) {
			t.Errorf("a topic without an SNS client: got %v, want ErrInvalidDestination", err)
		}
	})
}
