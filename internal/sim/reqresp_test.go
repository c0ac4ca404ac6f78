package sim

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courier-aws/courier/internal/check"
	"github.com/courier-aws/courier/patterns"
)

// reqRespScenario: a Requester makes concurrent calls to a Responder,
// both on faulty clients. Every call must get its own reply, an error
// reply it asked for, or an error (timeout, a send that failed): never
// another call's reply, and never a hang past its deadline.
type reqRespScenario struct{}

func (reqRespScenario) run(ctx context.Context, seed uint64) (check.Counts, []string) {
	r := Shape(seed)
	prof := draw(r)
	calm := prof == Profile{}
	prof.Hang = 0 // a hung request send would only test the deadline, which reqDeadline does
	w := newWorld(seed, prof)
	attempts := 1 + r.IntN(3)
	url, _, err := w.queue(ctx, "requests", false, 30*time.Second, 5)
	if err != nil {
		return check.Counts{}, []string{"set-up: " + err.Error()}
	}
	var found findings
	violate := found.add

	respClient, _ := w.client("responder", attempts)
	resp, err := patterns.NewResponder(respClient, url, func(o *patterns.ResponderOptions) {
		o.Workers = 1 + r.IntN(4)
		o.Logger = quietLog
		o.ShutdownTimeout = 5 * time.Second
		o.CallTimeout = 3 * time.Second
	})
	if err != nil {
		return check.Counts{}, []string{"responder: " + err.Error()}
	}
	errRate := r.Float64() * 0.2
	rctx, stopResponder := context.WithCancel(ctx)
	responderDone := make(chan error, 1)
	go func() {
		responderDone <- resp.Run(rctx, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
			body := string(req.Body)
			if decide(seed, body, req.ReceiveCount, "error") < errRate {
				return nil, errors.New("refused:" + body)
			}
			return &patterns.Message{Body: []byte("re:" + body)}, nil
		})
	}()

	reqClient, _ := w.client("requester", attempts)
	rq, err := patterns.NewRequester(reqClient, func(o *patterns.RequesterOptions) { o.Logger = quietLog })
	if err != nil {
		stopResponder()
		<-responderDone
		return check.Counts{}, []string{"requester: " + err.Error()}
	}
	calls := 1 + r.IntN(20)
	reqDeadline := time.Duration(20+r.IntN(100)) * time.Second
	var n check.Counts
	var nmu sync.Mutex
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			body := "call-" + strconv.Itoa(i)
			cctx, cancel := context.WithTimeout(ctx, reqDeadline)
			defer cancel()
			began := time.Now()
			reply, err := rq.Request(cctx, url, &patterns.Message{Body: []byte(body)})
			if took := time.Since(began); took > reqDeadline+5*time.Second {
				violate("%s: Request returned %v after it began, deadline %v", body, took, reqDeadline)
			}
			nmu.Lock()
			defer nmu.Unlock()
			n.Sent++
			var remote *patterns.RemoteError
			switch {
			case err == nil:
				n.Handled++
				if got := string(reply.Body); got != "re:"+body {
					violate("%s got another call's reply %q", body, got)
				}
			case errors.As(err, &remote):
				n.Handled++
				if !strings.Contains(remote.Error(), "refused:"+body) {
					violate("%s got another call's error reply: %v", body, remote)
				}
			case errors.Is(err, patterns.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
				n.Lost++ // a timeout is an answer, not a violation; counted apart
			default:
				n.Indeterminate++ // the request could not be sent
			}
		})
	}
	wg.Wait()
	w.quiet.Store(true)
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := rq.Close(closeCtx); err != nil {
		// Deleting the reply queue may fail under faults; not a promise.
		_ = err
	}
	cancel()
	stopResponder()
	<-responderDone
	// A timeout is an answer under faults; on a calm backend every call
	// must be answered.
	if calm && n.Lost > 0 {
		violate("%d of %d calls timed out on a backend without faults", n.Lost, calls)
	}
	n.Lost = 0
	return n, found.all()
}
