package patterns_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// TestBenchScatterGather measures what gathering costs on top of the
// responders: per scatter to three responders (taking 0, 20 and 40 ms),
// the time from the slowest responder's handler returning to Gather
// returning the completed aggregate (the reply's send and receive, the
// store, the processor). BENCH scatter_gather_overhead_ms is the median of
// 50 sequential gathers.
func TestBenchScatterGather(t *testing.T) {
	benchEnabled(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const n = 50
		replies := b.CreateQueue(t, backend.QueueOptions{})
		var (
			mu   sync.Mutex
			last = map[string]time.Time{} // correlation id -> the latest handler return
			to   []patterns.Destination
		)
		var rc patterns.RequestCounter
		client := b.SQS(&rc)
		for i := range 3 {
			q := b.CreateQueue(t, backend.QueueOptions{}).URL
			to = append(to, patterns.Destination(q))
			delay := time.Duration(i) * 20 * time.Millisecond
			cfg := patterns.ResponderOptions{ConsumerOptions: quietOptions(), AllowReplyTo: []string{replies.URL}}
			startResponder(t, client, q, cfg, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
				time.Sleep(delay)
				mu.Lock()
				if now := time.Now(); now.After(last[req.CorrelationID]) {
					last[req.CorrelationID] = now
				}
				mu.Unlock()
				return &patterns.Message{Body: []byte("quote")}, nil
			})
		}
		sg := startScatterGather(t, b, replies.URL, patterns.ScatterGatherOptions{})
		rc.Reset()
		overhead := make([]time.Duration, 0, n)
		total := make([]time.Duration, 0, n)
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			start := time.Now()
			a, err := sg.Gather(ctx, &patterns.Message{Body: []byte("rfq")}, patterns.ScatterOptions{To: to})
			done := time.Now()
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if a.Reason != patterns.CompletedAll || len(a.Responses) != 3 {
				t.Fatalf("aggregate %s with %d responses", a.Reason, len(a.Responses))
			}
			mu.Lock()
			overhead = append(overhead, done.Sub(last[a.CorrelationID]))
			mu.Unlock()
			total = append(total, done.Sub(start))
		}
		slices.Sort(overhead)
		slices.Sort(total)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		t.Logf("%s: overhead p50 %v p90 %v; gather p50 %v; requests %v", b.Name, overhead[n/2], overhead[n*9/10], total[n/2], rc.Counts())
		fmt.Printf("BENCH scatter_gather_overhead_ms %.2f ms\n", ms(overhead[n/2]))
		fmt.Printf("BENCH scatter_gather_overhead_p90_ms %.2f ms\n", ms(overhead[n*9/10]))
		fmt.Printf("BENCH scatter_gather_completion_p50_ms %.2f ms\n", ms(total[n/2]))
	})
}
