package sim

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/courier-aws/courier/internal/check"
	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// fanOutScenario: a Publisher publishes to a topic chained to three queues
// (one filtered by an attribute value, one by a numeric range, one
// unfiltered; raw or enveloped as the seed says), a consumer on each. Each
// queue must get exactly the published messages its filter matches (the
// expectation is computed here by hand, not by patterns/filter), at least
// once, and nothing else.
type fanOutScenario struct{}

type subscriber struct {
	name    string
	policy  string
	matches func(kind string, n int) bool
}

var subscribers = []subscriber{
	{"kind-a", `{"kind":["a"]}`, func(kind string, _ int) bool { return kind == "a" }},
	{"n-over-5", `{"n":[{"numeric":[">",5]}]}`, func(_ string, n int) bool { return n > 5 }},
	{"all", "", func(string, int) bool { return true }},
}

func (fanOutScenario) run(ctx context.Context, seed uint64) (check.Counts, []string) {
	r := Shape(seed)
	prof := draw(r)
	w := newWorld(seed, prof)
	attempts := 1 + r.IntN(3)
	topic, err := w.mem.SNS().CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("sim-topic")})
	if err != nil {
		return check.Counts{}, []string{"set-up: " + err.Error()}
	}
	topicARN := aws.ToString(topic.TopicArn)
	var found findings
	violate := found.add

	type queue struct {
		sub  subscriber
		url  string
		dlq  string
		ck   *check.Checker
		stop context.CancelFunc
		done chan error
	}
	var queues []*queue
	for _, sub := range subscribers {
		url, dlq, err := w.queue(ctx, "sim-"+sub.name, false, 30*time.Second, 6)
		if err != nil {
			return check.Counts{}, []string{"set-up: " + err.Error()}
		}
		if _, err := patterns.Chain(ctx, w.mem.SNS(), w.admin, topicARN, url, func(o *patterns.ChainOptions) {
			o.Raw = r.IntN(2) == 0
			o.FilterPolicy = sub.policy
		}); err != nil {
			return check.Counts{}, []string{"chain: " + err.Error()}
		}
		queues = append(queues, &queue{sub: sub, url: url, dlq: dlq, ck: check.New()})
	}
	for _, q := range queues {
		client, _ := w.client("consumer-"+q.sub.name, attempts)
		c, err := patterns.NewConsumer(client, q.url, func(o *patterns.ConsumerOptions) {
			o.Workers = 1 + r.IntN(3)
			o.Logger = quietLog
			o.ShutdownTimeout = 5 * time.Second
			o.CallTimeout = 3 * time.Second
		})
		if err != nil {
			return check.Counts{}, []string{"consumer: " + err.Error()}
		}
		cctx, cancel := context.WithCancel(ctx)
		q.stop, q.done = cancel, make(chan error, 1)
		ck := q.ck
		go func() {
			q.done <- c.Run(cctx, func(_ context.Context, m *patterns.Message) error {
				if decide(seed, string(m.Body), m.ReceiveCount, q.sub.name) < 0.1 {
					return errors.New("handler failed (injected)")
				}
				ck.Handle(string(m.Body))
				return nil
			})
		}()
	}

	in := NewInjector(seed, "publisher", prof, &w.quiet)
	pubClient := w.mem.SNS(memaws.WithFaults(in), func(o *memaws.ClientOptions) { o.RetryMaxAttempts = attempts })
	pub, err := patterns.NewPublisher(pubClient, topicARN)
	if err != nil {
		return check.Counts{}, []string{"publisher: " + err.Error()}
	}
	total := 5 + r.IntN(40)
	batch := 1 + r.IntN(10)
	for i := 0; i < total; i += batch {
		var msgs []*patterns.Message
		type attrs struct {
			kind string
			n    int
		}
		var as []attrs
		for j := i; j < min(i+batch, total); j++ {
			a := attrs{kind: string(rune('a' + r.IntN(2))), n: r.IntN(11)}
			m := &patterns.Message{Body: []byte("m-" + strconv.Itoa(j)), Attributes: map[string]patterns.Attribute{
				"kind": patterns.StringAttr(a.kind), "n": patterns.NumberAttr(float64(a.n)),
			}}
			msgs, as = append(msgs, m), append(as, a)
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := pub.Publish(pctx, msgs...)
		cancel()
		for _, q := range queues {
			var mine []*patterns.Message
			for k, m := range msgs {
				if q.sub.matches(as[k].kind, as[k].n) {
					mine = append(mine, m)
				}
			}
			q.ck.SendResult(mine, mapSendError(err, identity(mine)))
		}
	}
	w.quiet.Store(true)
	deadline := time.Now().Add(15 * time.Minute)
	for _, q := range queues {
		for time.Now().Before(deadline) {
			if err := w.drainDead(ctx, q.dlq, q.ck); err != nil {
				violate("drain DLQ: %v", err)
				break
			}
			if q.ck.AllHandled() {
				break
			}
			time.Sleep(5 * time.Second)
		}
	}
	var total3 check.Counts
	for _, q := range queues {
		q.stop()
		<-q.done
		n, vs := q.ck.Check(check.Options{AllowDuplicates: true})
		for _, v := range vs {
			violate("queue %s: %s", q.sub.name, v)
		}
		total3.Sent += n.Sent
		total3.Handled += n.Handled
		total3.Duplicates += n.Duplicates
		total3.Indeterminate += n.Indeterminate
		total3.Dead += n.Dead
	}
	return total3, found.all()
}
