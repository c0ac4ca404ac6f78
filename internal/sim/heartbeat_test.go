package sim

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/internal/check"
	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// heartbeatScenario aims at the race between the heartbeat and a
// handler's decision: a slow handler fails while the heartbeat's
// extension of its message is under way (the extension is slowed down on
// purpose), and the consumer's Backoff asks for the message back in a
// second. The last decision must win: the message is received again
// within its backoff (plus slack), not a whole visibility timeout later
// because the extension landed after the backoff (issue 18 item 3).
type heartbeatScenario struct{}

func (heartbeatScenario) run(ctx context.Context, seed uint64) (check.Counts, []string) {
	r := Shape(seed)
	w := newWorld(seed, Profile{})
	const vis = 30 * time.Second
	url, _, err := w.queue(ctx, "slow", false, vis, 10)
	if err != nil {
		return check.Counts{}, []string{"set-up: " + err.Error()}
	}
	var found findings
	// The heartbeat extends to the full visibility timeout; slow those
	// requests down so that the handler's failure falls while one is
	// under way.
	extendDelay := time.Duration(1000+r.IntN(4000)) * time.Millisecond
	slowExtensions := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
		if c.Operation == "ChangeMessageVisibilityBatch" && bytes.Contains(c.Body, []byte(`"VisibilityTimeout":30`)) {
			return memaws.Fault{Delay: extendDelay}
		}
		return memaws.Fault{}
	})
	c, err := patterns.NewConsumer(w.mem.SQS(memaws.WithFaults(slowExtensions)), url, func(o *patterns.ConsumerOptions) {
		o.Workers = 1
		o.Logger = quietLog
		o.ShutdownTimeout = 5 * time.Second
		o.Backoff = func(int) time.Duration { return time.Second }
	})
	if err != nil {
		return check.Counts{}, []string{"consumer: " + err.Error()}
	}
	if _, err := w.admin.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("slow-job")}); err != nil {
		return check.Counts{}, []string{"send: " + err.Error()}
	}
	// The heartbeat runs every vis/3 and extends what ends within two of
	// its intervals: the first extension goes about 20 s after the
	// receive. Fail just after it was sent.
	work := 20*time.Second + time.Duration(r.IntN(int(extendDelay/time.Millisecond)))*time.Millisecond
	var mu sync.Mutex
	var failedAt time.Time
	var n check.Counts
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(cctx, func(hctx context.Context, m *patterns.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if m.ReceiveCount == 1 {
				mu.Unlock()
				t := time.NewTimer(work)
				select {
				case <-t.C:
				case <-hctx.Done():
				}
				mu.Lock()
				failedAt = time.Now()
				return errors.New("failed after long work (injected)")
			}
			// The decision waits for the extension under way (at most
			// extendDelay), then asks for 1 s: a whole visibility timeout
			// (30 s) means the extension landed last.
			if gap := time.Since(failedAt); gap > extendDelay+3*time.Second {
				found.add("slow-job came back %v after its handler failed with a 1 s backoff (worked %v, extension delayed %v): an extension overtook the decision", gap.Round(time.Millisecond), work, extendDelay)
			}
			n.Handled++
			cancel()
			return nil
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		cancel()
		<-done
	}
	n.Sent = 1
	if n.Handled == 0 {
		found.add("slow-job never handled again within 10 minutes")
	}
	return n, found.all()
}
