package patterns_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// collect consumes url until want distinct bodies arrived (or the wait
// ends) and returns the deliveries in order.
func collect(t *testing.T, b *backend.Backend, url string, want int, raw bool) []*patterns.Message {
	t.Helper()
	cfg := quietConfig(url)
	cfg.Raw = raw
	c, err := patterns.NewConsumer(b.SQS(), cfg.url, cfg.set)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*patterns.Message
	distinct := map[string]bool{}
	stop := runFor(t, func(ctx context.Context) error {
		return c.Run(ctx, func(ctx context.Context, m *patterns.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m)
			distinct[string(m.Body)] = true
			return nil
		})
	})
	waitFor(t, 60*time.Second, fmt.Sprintf("%d messages on %s", want, url), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(distinct) >= want
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	return got
}

// One topic, three chained queues: each queue gets every message, with raw
// delivery on and off, attributes and courier headers intact.
func TestFanOut(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		for _, raw := range []bool{true, false} {
			t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
				const n = 30
				ctx := context.Background()
				topic := b.CreateTopic(t, false, nil)
				var queues []string
				for range 3 {
					q := b.CreateQueue(t, backend.QueueOptions{})
					if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = raw }); err != nil {
						t.Fatalf("chain: %v", err)
					}
					queues = append(queues, q.URL)
				}
				var rc patterns.RequestCounter
				pub, err := patterns.NewPublisher(b.SNS(&rc), topic)
				if err != nil {
					t.Fatal(err)
				}
				var msgs []*patterns.Message
				for i := range n {
					m := &patterns.Message{Body: []byte(fmt.Sprintf("event-%02d", i)), CorrelationID: fmt.Sprintf("c%02d", i)}
					m.SetAttr("color", "orange")
					msgs = append(msgs, m)
				}
				if err := pub.Publish(ctx, msgs...); err != nil {
					t.Fatal(err)
				}
				if got := rc.Get("SNS.PublishBatch"); got != n/10 {
					t.Errorf("PublishBatch calls = %d, want %d", got, n/10)
				}
				for _, url := range queues {
					got := collect(t, b, url, n, false)
					seen := map[string]int{}
					for _, m := range got {
						seen[string(m.Body)]++
						if m.Attr("color") != "orange" || m.CorrelationID != "c"+string(m.Body[6:]) {
							t.Errorf("attributes or headers lost (raw=%v): body %q attrs %v cid %q", raw, m.Body, m.Attributes, m.CorrelationID)
						}
						if !raw && m.TopicARN != topic {
							t.Errorf("enveloped delivery without topic ARN: %q", m.TopicARN)
						}
					}
					if len(seen) != n {
						t.Errorf("queue got %d distinct messages, want %d", len(seen), n)
					}
					t.Logf("%s raw=%v: %d deliveries, %d duplicates", b.Name, raw, len(got), len(got)-len(seen))
				}
			})
		}
	})
}

// A FIFO topic fanned out to two FIFO queues: each queue sees each group
// in order.
func TestFIFOTopicFanOut(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		topic := b.CreateTopic(t, true, nil)
		var queues []string
		for range 2 {
			q := b.CreateQueue(t, backend.QueueOptions{FIFO: true})
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = true }); err != nil {
				t.Fatalf("chain: %v", err)
			}
			queues = append(queues, q.URL)
		}
		pub, err := patterns.NewPublisher(b.SNS(), topic)
		if err != nil {
			t.Fatal(err)
		}
		const groups, per = 4, 15
		var msgs []*patterns.Message
		for i := range per {
			for g := range groups {
				body := fmt.Sprintf("g%d-%02d", g, i)
				msgs = append(msgs, &patterns.Message{Body: []byte(body), GroupID: fmt.Sprintf("g%d", g), DeduplicationID: body})
			}
		}
		if err := pub.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		for _, url := range queues {
			got := collect(t, b, url, groups*per, false)
			last := map[string]string{}
			for _, m := range got {
				if prev := last[m.GroupID]; prev != "" && string(m.Body) < prev {
					t.Errorf("group %s out of order: %s after %s", m.GroupID, m.Body, prev)
				}
				last[m.GroupID] = string(m.Body)
			}
		}
	})
}

// Chain scopes the queue policy to the topic and keeps existing statements.
func TestChainQueuePolicy(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		topic := b.CreateTopic(t, false, nil)
		q := b.CreateQueue(t, backend.QueueOptions{})
		existing := `{"Version":"2012-10-17","Statement":[{"Sid":"keep-me","Effect":"Deny","Principal":"*","Action":"sqs:*","Resource":"` + q.ARN + `","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
		if _, err := b.SQS().SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(q.URL), Attributes: map[string]string{"Policy": existing}}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // twice: the statement is replaced, not duplicated
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL); err != nil {
				t.Fatal(err)
			}
		}
		out, err := b.SQS().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL), AttributeNames: []types.QueueAttributeName{"Policy"}})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(out.Attributes["Policy"])); err != nil {
			t.Fatal(err)
		}
		p := buf.String()
		for _, want := range []string{`"keep-me"`, `"aws:SourceArn":"` + topic + `"`, `"sns.amazonaws.com"`} {
			if !contains(p, want) {
				t.Errorf("policy lacks %s: %s", want, p)
			}
		}
		if n := count(p, `"Sid":"courier-sns-`); n != 1 {
			t.Errorf("%d courier statements, want 1: %s", n, p)
		}
	})
}

func contains(s, sub string) bool { return count(s, sub) > 0 }

func count(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			n++
		}
	}
	return n
}
