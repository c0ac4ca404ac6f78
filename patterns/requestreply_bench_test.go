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

// TestBenchRequestResponse measures request-response on the emulator, one
// Requester and one Responder with default settings (20 s long polls):
//
//   - round-trip time, one call at a time (p50 and p99 over 300 calls):
//     request send, the responder's receive, handler, reply send, the
//     requester's receive;
//   - API requests per call when 50 callers share the Requester (3,000
//     calls), everything counted: sends, receives, deletes, both sides.
//     Concurrent requests and replies share SendMessageBatch, receives and
//     deletes, so busy services pay less than the six requests a lone
//     call costs.
func TestBenchRequestResponse(t *testing.T) {
	benchEnabled(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		const (
			sequential = 300
			concurrent = 3000
			callers    = 50
		)
		q := b.CreateQueue(t, backend.QueueOptions{})
		var rc patterns.RequestCounter
		client := b.SQS(&rc)
		prefix := replyPrefix(t)
		startResponder(t, client, q.URL, patterns.ResponderOptions{
			ConsumerOptions: patterns.ConsumerOptions{Logger: discardLogger(), WaitTime: 20 * time.Second},
			AllowNames:      []string{prefix + "*"},
		}, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) { return echo(req), nil })
		r := newRequester(t, client, patterns.RequesterOptions{ReplyQueuePrefix: prefix})
		ctx := context.Background()
		call := func(i int) error {
			body := fmt.Sprintf(`{"call":%d}`, i)
			reply, err := r.Request(ctx, q.URL, &patterns.Message{Body: []byte(body)})
			if err != nil {
				return err
			}
			return checkEcho(body, reply)
		}
		for i := range 20 { // warm-up: queue creation, connections
			if err := call(i); err != nil {
				t.Fatal(err)
			}
		}

		rc.Reset()
		rtt := make([]time.Duration, sequential)
		for i := range rtt {
			start := time.Now()
			if err := call(i); err != nil {
				t.Fatal(err)
			}
			rtt[i] = time.Since(start)
		}
		seqRequests := rc.Total()
		slices.Sort(rtt)
		p50, p99 := rtt[sequential/2], rtt[sequential*99/100]

		rc.Reset()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; i < concurrent; i += callers {
					if err := call(i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		t.Logf("%s: sequential %v; concurrent %v", b.Name, seqRequests, rc.Counts())
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		fmt.Printf("BENCH reqresp_rtt_p50 %.2f ms\n", ms(p50))
		fmt.Printf("BENCH reqresp_rtt_p99 %.2f ms\n", ms(p99))
		fmt.Printf("BENCH reqresp_requests_per_call %.2f req/call\n", float64(rc.Total())/concurrent)
		fmt.Printf("BENCH reqresp_requests_per_call_sequential %.2f req/call\n", float64(seqRequests)/sequential)
		fmt.Printf("BENCH reqresp_calls_per_second %.0f call/s\n", concurrent/took.Seconds())
	})
}
