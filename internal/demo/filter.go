package demo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/filter"
)

// messageFilter: one fruit topic, three subscribers that each want only
// some fruit: orange ones (attribute policy), heavy ones (body policy),
// and orange-or-large ones ("$or"). The local evaluator predicts each
// subscriber's share; the backend's deliveries must equal it. A policy SNS
// would refuse is caught before any request.
func messageFilter(ctx context.Context, env *Env) (Result, error) {
	topic, err := env.Topic(ctx, "fruit", false)
	if err != nil {
		return Result{}, err
	}
	subs := []struct {
		name string
		b    *filter.Builder
	}{
		{"orange-only", filter.Attrs().Key("color", "orange")},
		{"heavy", filter.OnBody().Key("weight", filter.Numeric(">=", 200))},
		{"orange-or-large", filter.Attrs().Or(filter.Attrs().Key("color", "orange"), filter.Attrs().Key("size", "large"))},
	}
	policies := map[string]*filter.Policy{}
	urls := map[string]string{}
	for _, s := range subs {
		p, err := s.b.Build()
		if err != nil {
			return Result{}, err
		}
		url, _, err := env.Queue(ctx, s.name, QueueSpec{MaxReceiveCount: 3})
		if err != nil {
			return Result{}, err
		}
		if _, err := patterns.Chain(ctx, env.SetupSNS(), env.SetupSQS(), topic, url, func(o *patterns.ChainOptions) {
			o.Raw = true
			o.Filter = p
		}); err != nil {
			return Result{}, err
		}
		policies[s.name], urls[s.name] = p, url
		env.Trail.Add("fruit topic", s.name+" queue", "filter "+p.JSON())
	}
	if _, err := filter.Attrs().Key("color", filter.Numeric(">", 2e9)).Build(); !errors.Is(err, patterns.ErrInvalidFilterPolicy) {
		return Result{}, fmt.Errorf("an out-of-range policy was not refused: %v", err)
	}
	env.Trail.Add("demo", "demo", "invalid policy refused before any request")

	fruit := []struct {
		name, color, size string
		weight            int
	}{{"orange", "orange", "small", 150}, {"grapefruit", "orange", "large", 300}, {"apple", "red", "small", 120},
		{"melon", "green", "large", 900}, {"cherry", "red", "small", 5}, {"mango", "orange", "medium", 250}}
	want := map[string][]string{}
	var msgs []*patterns.Message
	for _, f := range fruit {
		m := &patterns.Message{Body: []byte(fmt.Sprintf(`{"fruit":%q,"weight":%d}`, f.name, f.weight))}
		m.SetAttr("color", f.color)
		m.SetAttr("size", f.size)
		msgs = append(msgs, m)
		for _, s := range subs {
			if policies[s.name].Match(patterns.FilterAttrs(m.Attributes), m.Body) {
				want[s.name] = append(want[s.name], f.name)
			}
		}
	}
	pub, err := patterns.NewPublisher(env.SNS, topic)
	if err != nil {
		return Result{}, err
	}
	if err := pub.Publish(ctx, msgs...); err != nil {
		return Result{}, err
	}
	env.Trail.Add("grocer", "fruit topic", fmt.Sprintf("PublishBatch of %d fruit", len(msgs)))

	var wg sync.WaitGroup
	errs := make([]error, len(subs))
	copies := 0
	var mu sync.Mutex
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := patterns.NewConsumer(env.SQS, urls[s.name], func(o *patterns.ConsumerOptions) {
				o.WaitTime = time.Second
				o.Logger = quiet
			})
			if err != nil {
				errs[i] = err
				return
			}
			var gmu sync.Mutex
			var got []string
			stop := consume(ctx, c, func(_ context.Context, m *patterns.Message) error {
				name := strings.SplitN(strings.TrimPrefix(string(m.Body), `{"fruit":"`), `"`, 2)[0]
				gmu.Lock()
				got = append(got, name)
				gmu.Unlock()
				return nil
			})
			werr := waitUntil(ctx, func() bool { gmu.Lock(); defer gmu.Unlock(); return len(got) >= len(want[s.name]) })
			time.Sleep(time.Second) // what should not come would come now
			_ = stop()
			gmu.Lock()
			defer gmu.Unlock()
			sort.Strings(got)
			w := append([]string(nil), want[s.name]...)
			sort.Strings(w)
			if werr != nil || strings.Join(got, ",") != strings.Join(w, ",") {
				errs[i] = fmt.Errorf("%s received %v, the policy admits %v", s.name, got, w)
				return
			}
			env.Trail.Add(s.name+" queue", s.name, strings.Join(got, ", "))
			mu.Lock()
			copies += len(got)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	return Result{Messages: copies, Summary: fmt.Sprintf("%d fruit published once; each of 3 subscribers got exactly what its policy admits (attribute, body and $or), as filter.Match predicted", len(msgs))}, nil
}
