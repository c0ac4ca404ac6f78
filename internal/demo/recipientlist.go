package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// recipientList: a router sends each order to the queues its rules pick
// (billing always; the warehouse for physical goods; fraud review above
// 1,000), then to a destination that does not exist next to one that does:
// the missing one is reported, the other still receives.
func recipientList(ctx context.Context, env *Env) (Result, error) {
	names := []string{"billing", "warehouse", "fraud"}
	urls := map[string]string{}
	for _, n := range names {
		url, _, err := env.Queue(ctx, n, QueueSpec{MaxReceiveCount: 3})
		if err != nil {
			return Result{}, err
		}
		urls[n] = url
	}
	dest := func(n string) patterns.Destination { return patterns.Destination(urls[n]) }
	rl, err := patterns.NewRecipientList(env.SQS, env.SNS, func(o *patterns.RecipientListOptions) {
		o.Route = func(*patterns.Message) []patterns.Destination { return []patterns.Destination{dest("billing")} }
		o.Rules = []patterns.RecipientRule{
			{Name: "physical goods", Match: func(m *patterns.Message) bool { return m.Attr("kind") == "physical" }, To: []patterns.Destination{dest("warehouse")}},
			{Name: "large order", Match: func(m *patterns.Message) bool { return len(m.Attr("total")) > 3 }, To: []patterns.Destination{dest("fraud")}},
		}
	})
	if err != nil {
		return Result{}, err
	}
	orders := []struct{ body, kind, total string }{
		{"order 1: book", "physical", "20"}, {"order 2: e-book", "digital", "9"},
		{"order 3: piano", "physical", "4200"}, {"order 4: licence", "digital", "1500"},
	}
	want := map[string][]string{}
	var msgs []*patterns.Message
	for _, o := range orders {
		m := &patterns.Message{Body: []byte(o.body)}
		m.SetAttr("kind", o.kind)
		m.SetAttr("total", o.total)
		msgs = append(msgs, m)
		to, err := rl.Recipients(m)
		if err != nil {
			return Result{}, err
		}
		var picked []string
		for _, n := range names {
			for _, d := range to {
				if d == dest(n) {
					picked = append(picked, n)
					want[n] = append(want[n], o.body)
				}
			}
		}
		env.Trail.Add("shop", "router", o.body+" → "+strings.Join(picked, ", "))
	}
	deliveries, err := rl.Send(ctx, msgs...)
	if err != nil {
		return Result{}, err
	}
	for _, d := range deliveries {
		for _, n := range names {
			if d.Destination == dest(n) {
				env.Trail.Add("router", n+" queue", string(msgs[d.Index].Body))
			}
		}
	}

	// A destination that does not exist, next to one that does.
	gone := patterns.Destination(urls["billing"][:strings.LastIndex(urls["billing"], "/")+1] + "courier-demo-no-such-queue")
	extra := &patterns.Message{Body: []byte("order 5: pen")}
	_, err = rl.SendTo(ctx, []patterns.Destination{dest("billing"), gone}, extra)
	var re *patterns.RecipientError
	if !errors.As(err, &re) || len(re.Destinations()) != 1 || re.Destinations()[0] != gone {
		return Result{}, fmt.Errorf("unreachable destination not reported as the only failure: %v", err)
	}
	env.Trail.Add("router", "no-such-queue", "order 5: pen: reported failed (queue does not exist)")
	env.Trail.Add("router", "billing queue", "order 5: pen")
	want["billing"] = append(want["billing"], "order 5: pen")

	// Each queue holds exactly what the rules computed.
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := patterns.NewConsumer(env.SQS, urls[n], func(o *patterns.ConsumerOptions) {
				o.WaitTime = time.Second
				o.Logger = quiet
			})
			if err != nil {
				errs[i] = err
				return
			}
			var mu sync.Mutex
			got := map[string]bool{}
			stop := consume(ctx, c, func(_ context.Context, m *patterns.Message) error {
				mu.Lock()
				got[string(m.Body)] = true
				mu.Unlock()
				return nil
			})
			werr := waitUntil(ctx, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want[n]) })
			time.Sleep(time.Second) // anything unexpected would arrive now
			_ = stop()
			mu.Lock()
			defer mu.Unlock()
			if werr != nil || len(got) != len(want[n]) {
				errs[i] = fmt.Errorf("%s queue holds %d messages, the rules computed %d", n, len(got), len(want[n]))
				return
			}
			for _, b := range want[n] {
				if !got[b] {
					errs[i] = fmt.Errorf("%s queue lacks %q", n, b)
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	total := len(want["billing"]) + len(want["warehouse"]) + len(want["fraud"])
	return Result{Messages: total, Summary: fmt.Sprintf("5 orders routed to exactly their computed queues (%d copies); the missing queue was reported, billing still received", total)}, nil
}
