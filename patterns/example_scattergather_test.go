package patterns_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// ScatterGather asks three suppliers for a price and gathers their quotes.
// One supplier is down: the deadline completes the aggregate with the two
// quotes that came and names the supplier that did not answer.
func ExampleScatterGather() {
	sqsClient, snsClient := exampleClients()
	quotes, done := exampleQueue(sqsClient, "quotes", nil)
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	// Each supplier is a request-response Responder on its own queue.
	prices := map[string]string{"acme": "12.50", "globex": "11.90", "initech": "13.00"}
	var suppliers []patterns.Destination
	for _, name := range []string{"acme", "globex", "initech"} {
		q, done := exampleQueue(sqsClient, name, nil)
		defer done()
		suppliers = append(suppliers, patterns.Destination(q))
		if name == "initech" {
			continue // down today
		}
		r, err := patterns.NewResponder(sqsClient, q, func(o *patterns.ResponderOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet
			o.Name = name
			o.AllowReplyTo = []string{quotes}
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		go r.Run(ctx, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
			return &patterns.Message{Body: []byte(prices[name])}, nil
		})
	}

	sg, err := patterns.NewScatterGather(sqsClient, snsClient, quotes, func(o *patterns.ScatterGatherOptions) {
		o.Consumer = patterns.ConsumerOptions{WaitTime: time.Second, Logger: quiet}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go sg.Run(ctx)

	agg, err := sg.Gather(ctx, &patterns.Message{Body: []byte("price of 100 widgets?")}, patterns.ScatterOptions{
		To: suppliers,
		Completion: patterns.Completion{
			Expected: []string{"acme", "globex", "initech"},
			Deadline: 3 * time.Second,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("completed by:", agg.Reason)
	for _, name := range []string{"acme", "globex"} {
		for _, r := range agg.Responses {
			if r.Responder == name {
				fmt.Println(name, "quotes", string(r.Body))
			}
		}
	}
	fmt.Println("missing:", strings.Join(agg.Missing, ", "))
	// Output:
	// completed by: deadline
	// acme quotes 12.50
	// globex quotes 11.90
	// missing: initech
}

// Scatterer and Aggregator apart, sharing a DynamoDB store: the scatterer
// opens each aggregate and sends the requests; any number of aggregators
// (processes, or concurrent Lambda invocations on the response queue)
// gather the responses, and the processor runs once per aggregate. Here
// the quorum is the first two of three answers.
func ExampleAggregator() {
	sqsClient, _ := exampleClients()
	ddb, table, dropTable := exampleTable()
	defer dropTable()
	quotes, done := exampleQueue(sqsClient, "quotes", nil)
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	var suppliers []patterns.Destination
	for i := range 3 {
		q, done := exampleQueue(sqsClient, fmt.Sprint("supplier-", i), nil)
		defer done()
		suppliers = append(suppliers, patterns.Destination(q))
		r, _ := patterns.NewResponder(sqsClient, q, func(o *patterns.ResponderOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet
			o.AllowReplyTo = []string{quotes}
		})
		go r.Run(ctx, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
			return &patterns.Message{Body: []byte("a quote")}, nil
		})
	}

	store, err := patterns.NewDynamoDBAggregateStore(ddb, table)
	if err != nil {
		fmt.Println(err)
		return
	}
	processed := make(chan *patterns.Aggregate, 10)
	for range 2 { // two aggregators on one response queue
		a, err := patterns.NewAggregator(sqsClient, quotes, store, func(_ context.Context, a *patterns.Aggregate) error {
			processed <- a
			return nil
		}, func(o *patterns.AggregatorOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		go a.Run(ctx)
	}

	sc, err := patterns.NewScatterer(sqsClient, nil, quotes, store)
	if err != nil {
		fmt.Println(err)
		return
	}
	cid, err := sc.Scatter(ctx, &patterns.Message{Body: []byte("price?")}, patterns.ScatterOptions{
		To: suppliers, Completion: patterns.Completion{Quorum: 2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	a := <-processed
	fmt.Println("same aggregate:", a.CorrelationID == cid)
	// A quorum of two, or all three when the third answer was counted
	// (by the other aggregator) before the completion was claimed.
	fmt.Println("quorum reached:", len(a.Responses) >= 2)
	select {
	case <-processed:
		fmt.Println("processed twice!")
	case <-time.After(3 * time.Second): // the third answer comes late: ignored
		fmt.Println("processed once")
	}
	// Output:
	// same aggregate: true
	// quorum reached: true
	// processed once
}

// A Scatterer whose destinations a RecipientList computes per request:
// every request goes to the two carriers, and a fragile parcel also to the
// specialist. With queues as destinations, every queue sent to is expected
// to answer; here an Aggregator in the same process shares the store.
func ExampleScatterer() {
	sqsClient, snsClient := exampleClients()
	quotes, done := exampleQueue(sqsClient, "quotes", nil)
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	carriers := map[string]patterns.Destination{}
	for _, name := range []string{"carrier-a", "carrier-b", "specialist"} {
		q, done := exampleQueue(sqsClient, name, nil)
		defer done()
		carriers[name] = patterns.Destination(q)
		r, _ := patterns.NewResponder(sqsClient, q, func(o *patterns.ResponderOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet
			o.Name = name
			o.AllowReplyTo = []string{quotes}
		})
		go r.Run(ctx, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
			return &patterns.Message{Body: []byte("ok")}, nil
		})
	}
	route, _ := patterns.NewRecipientList(sqsClient, snsClient, func(o *patterns.RecipientListOptions) {
		o.Route = func(*patterns.Message) []patterns.Destination {
			return []patterns.Destination{carriers["carrier-a"], carriers["carrier-b"]}
		}
		o.Rules = []patterns.RecipientRule{{
			Name: "fragile", Match: func(m *patterns.Message) bool { return m.Attr("fragile") == "yes" },
			To: []patterns.Destination{carriers["specialist"]},
		}}
	})

	store, _ := patterns.NewMemoryAggregateStore()
	completed := make(chan *patterns.Aggregate, 1)
	agg, _ := patterns.NewAggregator(sqsClient, quotes, store, func(_ context.Context, a *patterns.Aggregate) error { completed <- a; return nil }, func(o *patterns.AggregatorOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet
	})
	go agg.Run(ctx)

	sc, err := patterns.NewScatterer(sqsClient, snsClient, quotes, store, func(o *patterns.ScattererOptions) { o.Recipients = route })
	if err != nil {
		fmt.Println(err)
		return
	}
	vase := &patterns.Message{Body: []byte("ship a vase")}
	vase.SetAttr("fragile", "yes")
	if _, err := sc.Scatter(ctx, vase, patterns.ScatterOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	a := <-completed
	var names []string
	for _, r := range a.Responses {
		names = append(names, r.Responder)
	}
	slices.Sort(names)
	fmt.Println(a.Reason, names)
	// Output:
	// all [carrier-a carrier-b specialist]
}
