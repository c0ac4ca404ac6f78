package sim

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courier-aws/courier/internal/check"
	"github.com/courier-aws/courier/patterns"
)

// scatterScenario: concurrent Gathers to a few responders (some down),
// every client faulty. Each aggregate must complete once, hold only
// responses to its own request, name as missing exactly the expected
// responders that did not answer, and Gather must return within its
// deadline (plus the bounded time a completion takes).
type scatterScenario struct{}

func (scatterScenario) run(ctx context.Context, seed uint64) (check.Counts, []string) {
	r := Shape(seed)
	prof := draw(r)
	prof.Hang = 0 // a hung Send is bounded by Gather's context; covered by request-response
	w := newWorld(seed, prof)
	attempts := 1 + r.IntN(3)
	var found findings
	violate := found.add
	responses, _, err := w.queue(ctx, "responses", false, 30*time.Second, 5)
	if err != nil {
		return check.Counts{}, []string{"set-up: " + err.Error()}
	}
	rctx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	defer func() { stop(); running.Wait() }()

	n := 2 + r.IntN(3)
	var names []string
	var dests []patterns.Destination
	for i := range n {
		name := "responder-" + strconv.Itoa(i)
		url, _, err := w.queue(ctx, name, false, 30*time.Second, 5)
		if err != nil {
			return check.Counts{}, []string{"set-up: " + err.Error()}
		}
		names, dests = append(names, name), append(dests, patterns.Destination(url))
		if i > 0 && r.IntN(4) == 0 {
			continue // down
		}
		client, _ := w.client(name, attempts)
		resp, err := patterns.NewResponder(client, url, func(o *patterns.ResponderOptions) {
			o.Logger = quietLog
			o.ShutdownTimeout = 5 * time.Second
			o.CallTimeout = 3 * time.Second
			o.Name = name
			o.AllowReplyTo = []string{responses}
		})
		if err != nil {
			return check.Counts{}, []string{"responder: " + err.Error()}
		}
		running.Go(func() {
			_ = resp.Run(rctx, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
				return &patterns.Message{Body: []byte(name + ":" + string(req.Body))}, nil
			})
		})
	}

	var mu sync.Mutex
	processed := map[string]int{}
	sgClient, _ := w.client("gatherer", attempts)
	sg, err := patterns.NewScatterGather(sgClient, nil, responses, func(o *patterns.ScatterGatherOptions) {
		o.Consumer = patterns.ConsumerOptions{Logger: quietLog, ShutdownTimeout: 5 * time.Second, CallTimeout: 3 * time.Second}
		o.Processor = func(_ context.Context, a *patterns.Aggregate) error {
			mu.Lock()
			processed[a.CorrelationID]++
			mu.Unlock()
			return nil
		}
	})
	if err != nil {
		return check.Counts{}, []string{"scatter-gather: " + err.Error()}
	}
	running.Go(func() { _ = sg.Run(rctx) })

	gathers := 1 + r.IntN(8)
	deadline := time.Duration(5+r.IntN(60)) * time.Second
	var cnt check.Counts
	var wg sync.WaitGroup
	for g := range gathers {
		wg.Go(func() {
			body := "req-" + strconv.Itoa(g)
			gctx, cancel := context.WithTimeout(ctx, deadline+time.Minute)
			defer cancel()
			began := time.Now()
			agg, err := sg.Gather(gctx, &patterns.Message{Body: []byte(body)}, patterns.ScatterOptions{
				To:         dests,
				Completion: patterns.Completion{Expected: names, Deadline: deadline},
			})
			if took := time.Since(began); took > deadline+time.Minute+5*time.Second {
				violate("%s: Gather returned after %v (deadline %v)", body, took, deadline)
			}
			mu.Lock()
			defer mu.Unlock()
			cnt.Sent++
			if err != nil {
				// The scatter could not be sent, or faults outlasted the
				// deadline: an answer, not a broken promise.
				cnt.Indeterminate++
				return
			}
			cnt.Handled++
			got := map[string]bool{}
			for _, resp := range agg.Responses {
				if !strings.HasSuffix(string(resp.Body), ":"+body) {
					violate("%s: aggregate holds another request's response %q", body, resp.Body)
				}
				got[resp.Responder] = true
			}
			for _, m := range agg.Missing {
				if got[m] {
					violate("%s: %s named missing but its response is in the aggregate", body, m)
				}
			}
			if len(agg.Responses)+len(agg.Missing) != len(names) && agg.Reason != patterns.CompletedAll {
				violate("%s: %d responses + %d missing of %d expected (%s)", body, len(agg.Responses), len(agg.Missing), len(names), agg.Reason)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	// Completion is once per aggregate; processing is at least once (a
	// crash or a lost delete between the processor and MarkProcessed runs
	// it again: IdempotentProcessor dedups), so a second run is counted,
	// not a violation.
	for _, k := range processed {
		cnt.Duplicates += k - 1
	}
	mu.Unlock()
	return cnt, found.all()
}
