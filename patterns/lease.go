package patterns

import (
	"context"
	"sync"
	"time"
)

// heartbeat extends the visibility of messages still in flight before it
// runs out, so a slow handler's message is not delivered to someone else.
func (c *Consumer) heartbeat(ctx context.Context, tr *tracker, a *acker, vis time.Duration) {
	every := c.cfg.HeartbeatInterval
	if every == 0 {
		every = vis / 3
	}
	if every < 100*time.Millisecond {
		every = 100 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Extend what would expire before the next tick or two. A
		// decision on one of them taken while its extension is under way
		// is sent after the extension is answered (tracker.finish).
		sent := time.Now()
		tr.expire(sent)
		due := tr.due(sent.Add(2 * every))
		if len(due) == 0 {
			continue
		}
		handles := make([]string, len(due))
		for i, f := range due {
			handles[i] = f.msg.ReceiptHandle
		}
		ok := a.extendNow(ctx, handles, vis)
		tr.extended(due, ok, sent.Add(vis))
		tr.expire(time.Now())
	}
}

// tracker knows the messages in flight and when their visibility ends.
type tracker struct {
	mu  sync.Mutex
	set map[*inflight]struct{}
	vis time.Duration
	// metrics, when set, counts the messages in flight on queue.
	metrics Metrics
	queue   string
}

func newTracker(vis time.Duration) *tracker {
	return &tracker{set: make(map[*inflight]struct{}), vis: vis}
}

// add puts f in flight; its visibility began when the receive took it,
// just before received (when the answer came: a long poll may have waited
// long before that, so the time it was sent would be far too early).
func (t *tracker) add(f *inflight, received time.Time) {
	f.deadline = received.Add(t.vis)
	t.mu.Lock()
	t.set[f] = struct{}{}
	f.counted = t.metrics != nil
	t.mu.Unlock()
	if f.counted {
		t.metrics.InFlight(context.Background(), t.queue, 1)
	}
}

// finish takes f out of flight; decide, if not nil, hands the acker its
// last decision (delete, release, backoff). It runs now, or, when the
// heartbeat has an extension of f under way, once that is answered: sent
// before it, the decision could be overtaken by the extension and the
// message hidden for a whole visibility timeout.
func (t *tracker) finish(f *inflight, decide func()) {
	t.mu.Lock()
	delete(t.set, f)
	counted := f.counted
	f.counted = false
	if f.extending {
		f.then = decide
		t.mu.Unlock()
		t.uncounted(counted)
		return
	}
	t.mu.Unlock()
	t.uncounted(counted)
	if decide != nil {
		decide()
	}
}

// start records that f's handler runs with cancel; false when f's
// visibility has already ended (lost).
func (t *tracker) start(f *inflight, cancel context.CancelCauseFunc) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f.lost || time.Now().After(f.deadline) {
		f.lost = true
		return false
	}
	f.cancel = cancel
	return true
}

// stop records that f's handler returned; it reports whether f's
// visibility ended meanwhile.
func (t *tracker) stop(f *inflight) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.cancel = nil
	return f.lost
}

// expire marks the messages whose visibility ended (no extension landed in
// time) as lost and cancels their handlers with ErrLeaseLost.
func (t *tracker) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for f := range t.set {
		if !f.lost && !f.extending && now.After(f.deadline) {
			f.lost = true
			if f.cancel != nil {
				f.cancel(ErrLeaseLost)
			}
		}
	}
}

// due marks the messages whose visibility ends before before as being
// extended and returns them; extended must follow.
func (t *tracker) due(before time.Time) []*inflight {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*inflight
	for f := range t.set {
		if f.deadline.Before(before) {
			f.extending = true
			out = append(out, f)
		}
	}
	return out
}

// extended records the answer to the extension of fs (ok[i]: fs[i] is
// now visible again at deadline) and sends the decisions taken meanwhile.
func (t *tracker) extended(fs []*inflight, ok []bool, deadline time.Time) {
	var then []func()
	t.mu.Lock()
	for i, f := range fs {
		f.extending = false
		if _, in := t.set[f]; in && ok[i] {
			f.deadline = deadline
		}
		if f.then != nil {
			then = append(then, f.then)
			f.then = nil
		}
	}
	t.mu.Unlock()
	for _, decide := range then {
		decide()
	}
}

func (t *tracker) uncounted(counted bool) {
	if counted {
		t.metrics.InFlight(context.Background(), t.queue, -1)
	}
}

// uncount takes the messages still in flight (those of abandoned
// handlers, when Run returns) out of the in-flight count, once: their
// finish, if it comes, does not count them again.
func (t *tracker) uncount() {
	if t.metrics == nil {
		return
	}
	n := 0
	t.mu.Lock()
	for f := range t.set {
		if f.counted {
			f.counted = false
			n++
		}
	}
	t.mu.Unlock()
	if n > 0 {
		t.metrics.InFlight(context.Background(), t.queue, -n)
	}
}

func (t *tracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.set)
}
