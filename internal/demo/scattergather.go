package demo

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// scatterGather: a buyer asks three suppliers for a price through an SNS
// topic fanned out to their queues; each answers on the buyer's response
// queue with the request's correlation id and its own name. The first
// request has a 2 s deadline and one supplier is slower than that: the
// aggregate completes with two quotes and names the missing supplier, whose
// late quote is then ignored. The second request waits long enough: all
// three answer and it completes before its deadline.
func scatterGather(ctx context.Context, env *Env) (Result, error) {
	topic, err := env.Topic(ctx, "rfq", false)
	if err != nil {
		return Result{}, err
	}
	responses, _, err := env.Queue(ctx, "quotes", QueueSpec{MaxReceiveCount: 3})
	if err != nil {
		return Result{}, err
	}
	suppliers := []struct {
		name  string
		price float64
		delay time.Duration
	}{{"acme", 12.50, 0}, {"globex", 11.90, 0}, {"initech", 10.75, 3 * time.Second}}
	var names []string
	for _, s := range suppliers {
		url, _, err := env.Queue(ctx, s.name, QueueSpec{MaxReceiveCount: 3})
		if err != nil {
			return Result{}, err
		}
		if _, err := patterns.Chain(ctx, env.SetupSNS(), env.SetupSQS(), topic, url, func(o *patterns.ChainOptions) { o.Raw = true }); err != nil {
			return Result{}, err
		}
		r, err := patterns.NewResponder(env.SQS, url, func(o *patterns.ResponderOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet
			o.Name = s.name
			o.AllowReplyTo = []string{responses}
		})
		if err != nil {
			return Result{}, err
		}
		stop := background(ctx, func(ctx context.Context) error {
			return r.Run(ctx, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
				env.Trail.Add(s.name+" queue", s.name, "request for quote cid="+short(req.CorrelationID))
				select {
				case <-time.After(s.delay):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				price := strconv.FormatFloat(s.price, 'f', 2, 64)
				env.Trail.AddReply(s.name, "quotes queue", "quote "+price+" cid="+short(req.CorrelationID))
				return &patterns.Message{Body: []byte(price)}, nil
			})
		})
		defer stop()
		names = append(names, s.name)
	}

	sg, err := patterns.NewScatterGather(env.SQS, env.SNS, responses, func(o *patterns.ScatterGatherOptions) {
		o.Consumer = patterns.ConsumerOptions{WaitTime: time.Second, Logger: quiet}
		o.Processor = func(_ context.Context, a *patterns.Aggregate) error {
			best, price := "", 0.0
			for _, r := range a.Responses {
				p, err := strconv.ParseFloat(string(r.Body), 64)
				if err == nil && (best == "" || p < price) {
					best, price = r.Responder, p
				}
			}
			note := fmt.Sprintf("%s: %d quotes, best %s %.2f", a.Reason, len(a.Responses), best, price)
			if len(a.Missing) > 0 {
				note += fmt.Sprintf("; missing %v", a.Missing)
			}
			env.Trail.Add("aggregator", "processor", note+" cid="+short(a.CorrelationID))
			return nil
		}
	})
	if err != nil {
		return Result{}, err
	}
	stopSG := background(ctx, sg.Run)
	defer stopSG()

	gather := func(deadline time.Duration) (*patterns.Aggregate, error) {
		env.Trail.Add("buyer", "rfq topic", fmt.Sprintf("scatter: 100 widgets, deadline %v", deadline))
		return sg.Gather(ctx, &patterns.Message{Body: []byte(`{"sku":"widget","qty":100}`)}, patterns.ScatterOptions{
			To:         []patterns.Destination{patterns.Destination(topic)},
			Completion: patterns.Completion{Expected: names, Deadline: deadline},
		})
	}

	// A deadline shorter than initech takes.
	a, err := gather(2 * time.Second)
	if err != nil {
		return Result{}, err
	}
	if got := responders(a); a.Reason != patterns.CompletedDeadline || !slices.Equal(got, []string{"acme", "globex"}) || !slices.Equal(a.Missing, []string{"initech"}) {
		return Result{}, fmt.Errorf("first gather: %s with quotes from %v, missing %v; want the deadline with acme and globex, initech missing", a.Reason, got, a.Missing)
	}
	if err := waitUntil(ctx, func() bool { return sg.Stats().Late == 1 }); err != nil {
		return Result{}, fmt.Errorf("initech's late quote was not counted as late: %+v", sg.Stats())
	}
	env.Trail.Add("quotes queue", "aggregator", "initech's quote after the deadline: ignored, counted late")

	// Time enough: all three answer before the deadline.
	a, err = gather(10 * time.Second)
	if err != nil {
		return Result{}, err
	}
	if got := responders(a); a.Reason != patterns.CompletedAll || !slices.Equal(got, names) {
		return Result{}, fmt.Errorf("second gather: %s with quotes from %v; want all three", a.Reason, got)
	}
	s := sg.Stats()
	return Result{
		Messages: 2 + 2*len(names) + int(s.Responses+s.Late),
		Summary:  "2 scatters to 3 suppliers: deadline with 2 quotes and initech named missing (its late quote ignored), then all 3 before the deadline",
	}, nil
}

func responders(a *patterns.Aggregate) []string {
	var out []string
	for _, r := range a.Responses {
		out = append(out, r.Responder)
	}
	slices.Sort(out)
	return out
}
