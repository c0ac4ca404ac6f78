package patterns

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// acker batches a consumer's deletes and visibility changes: up to ten per
// request, sent when a batch is full or AckInterval after its first entry.
// Requests run concurrently (bounded), so a slow one does not hold up the
// handlers. Each request may take CallTimeout, and close, CallTimeout in
// all: what is not answered by then is counted as not sent.
type acker struct {
	c       *Consumer
	vis     time.Duration
	mu      sync.Mutex
	deletes []pendingDelete
	changes map[int32][]string // visibility changes by timeout (0: release)
	timer   *time.Timer
	jobs    chan func(context.Context) // to the senders
	wg      sync.WaitGroup             // jobs not yet done
	senders sync.WaitGroup
	// gate is held (read) by whatever may send (a handler's decision, a
	// timer's flush); closed, set under it (write) by close, stops them
	// all: a handler abandoned at shutdown may return after Run did.
	gate   sync.RWMutex
	closed bool
	// closing is set when close begins; deletes and visibility changes
	// that fail from then on are counted: Run reports them.
	closing                      atomic.Bool
	unsentDeletes, unsentChanges atomic.Int64
	ctx                          context.Context // not cancelled by Run's context (acks must land); by close, CallTimeout after it began
	cancel                       context.CancelFunc
}

// pendingDelete is a handled message's receipt handle, and what to do once
// SQS confirmed its deletion (nil: nothing).
type pendingDelete struct {
	handle string
	after  func(context.Context)
}

// ackSenders is how many requests an acker has in flight at most. They
// are long-lived goroutines rather than one per request: an SDK call runs
// deep, and a fresh goroutine's stack would grow (and be copied) on each.
const ackSenders = 4

func newAcker(c *Consumer, vis time.Duration) *acker {
	ctx, cancel := context.WithCancel(context.Background())
	a := &acker{c: c, vis: vis, jobs: make(chan func(context.Context)), ctx: ctx, cancel: cancel}
	for range ackSenders {
		a.senders.Go(func() {
			for fn := range a.jobs {
				fn(a.ctx)
				a.wg.Done()
			}
		})
	}
	return a
}

// delete schedules the deletion of a handled message; after, if not nil,
// runs once SQS confirmed it.
func (a *acker) delete(handle string, after func(context.Context)) {
	a.gate.RLock()
	defer a.gate.RUnlock()
	if a.closed {
		a.late()
		return
	}
	a.mu.Lock()
	a.deletes = append(a.deletes, pendingDelete{handle, after})
	full := len(a.deletes) >= MaxBatchEntries
	var batch []pendingDelete
	if full {
		batch, a.deletes = a.deletes, nil
	} else {
		a.armLocked()
	}
	a.mu.Unlock()
	if full {
		a.send(func(ctx context.Context) { a.deleteBatch(ctx, batch) })
	}
}

// release schedules making an unstarted message visible again at once.
func (a *acker) release(handle string) { a.setVisibility(handle, 0) }

// setVisibility schedules a visibility change to secs: 0 releases a
// message, more delays its next delivery (retry backoff).
func (a *acker) setVisibility(handle string, secs int32) {
	a.gate.RLock()
	defer a.gate.RUnlock()
	if a.closed {
		a.late()
		return
	}
	a.mu.Lock()
	if a.changes == nil {
		a.changes = make(map[int32][]string)
	}
	a.changes[secs] = append(a.changes[secs], handle)
	var batch []string
	if len(a.changes[secs]) >= MaxBatchEntries {
		batch = a.changes[secs]
		delete(a.changes, secs)
	} else {
		a.armLocked()
	}
	a.mu.Unlock()
	if batch != nil {
		a.send(func(ctx context.Context) { a.changeBatch(ctx, batch, secs) })
	}
}

// late drops the decision of a handler that returned after Run abandoned
// it (Run counted its message then).
func (a *acker) late() {
	a.c.cfg.Logger.Warn("courier: a handler abandoned at shutdown returned; its message will be delivered again", "queue", a.c.queue.URL)
}

func (a *acker) armLocked() {
	if a.timer == nil {
		a.timer = time.AfterFunc(a.c.cfg.AckInterval, a.timerFlush)
	}
}

// timerFlush is flush from the timer: it runs under gate, so that
// close can wait for one that already fired, and not at all once closed.
func (a *acker) timerFlush() {
	a.gate.RLock()
	defer a.gate.RUnlock()
	if !a.closed {
		a.flush()
	}
}

// flush sends whatever is pending.
func (a *acker) flush() {
	a.mu.Lock()
	deletes, changes := a.deletes, a.changes
	a.deletes, a.changes = nil, nil
	a.timer = nil
	a.mu.Unlock()
	for len(deletes) > 0 {
		n := min(len(deletes), MaxBatchEntries)
		batch := deletes[:n]
		deletes = deletes[n:]
		a.send(func(ctx context.Context) { a.deleteBatch(ctx, batch) })
	}
	for secs, handles := range changes {
		for len(handles) > 0 {
			n := min(len(handles), MaxBatchEntries)
			batch := handles[:n]
			handles = handles[n:]
			a.send(func(ctx context.Context) { a.changeBatch(ctx, batch, secs) })
		}
	}
}

func (a *acker) send(fn func(context.Context)) {
	a.wg.Add(1)
	a.jobs <- fn
}

// close flushes everything pending and waits for it, CallTimeout at
// most, and returns how many deletes and visibility changes were not sent
// since it began.
func (a *acker) close() (deletes, changes int64) {
	a.closing.Store(true)
	// One bounded flush: requests under way or queued (a timer's flush
	// may be waiting for a sender) end CallTimeout from now.
	deadline := time.AfterFunc(a.c.cfg.CallTimeout, a.cancel)
	defer deadline.Stop()
	a.mu.Lock()
	if a.timer != nil {
		a.timer.Stop()
	}
	a.mu.Unlock()
	// Wait for senders under way (a timer's flush, a full batch) and keep
	// anyone from sending after the senders are gone.
	a.gate.Lock()
	a.closed = true
	a.gate.Unlock()
	a.flush()
	a.wg.Wait()
	close(a.jobs)
	a.senders.Wait()
	a.cancel()
	return a.unsentDeletes.Load(), a.unsentChanges.Load()
}

func (a *acker) deleteBatch(ctx context.Context, handles []pendingDelete) {
	ctx, cancel := context.WithTimeout(ctx, a.c.cfg.CallTimeout)
	defer cancel()
	entries := make([]types.DeleteMessageBatchRequestEntry, len(handles))
	for i, h := range handles {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(entryID(i)), ReceiptHandle: aws.String(h.handle)}
	}
	q := a.c.queue.URL
	out, err := a.c.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q), Entries: entries})
	if m := a.c.cfg.Metrics; m != nil {
		recordDeletes(ctx, m, q, len(handles), out, err)
	}
	if err != nil {
		a.c.stats.deleteErrors.Add(int64(len(handles)))
		a.unsent(&a.unsentDeletes, len(handles))
		a.c.cfg.Logger.Warn("courier: delete failed; the messages will be delivered again", "queue", q, "count", len(handles), "err", err)
		return
	}
	a.c.stats.deleted.Add(int64(len(out.Successful)))
	for _, s := range out.Successful {
		if i, ok := entryIndex(s.Id, len(handles)); ok && handles[i].after != nil {
			actx, cancel := context.WithTimeout(a.ctx, a.c.cfg.CallTimeout)
			handles[i].after(actx)
			cancel()
		}
	}
	if len(out.Failed) > 0 {
		a.c.stats.deleteErrors.Add(int64(len(out.Failed)))
		a.unsent(&a.unsentDeletes, len(out.Failed))
		f := out.Failed[0]
		a.c.cfg.Logger.Warn("courier: delete refused; the messages will be delivered again", "queue", q,
			"count", len(out.Failed), "code", aws.ToString(f.Code), "err", aws.ToString(f.Message))
	}
}

// changeBatch sends a batch of decided visibility changes (release, backoff).
func (a *acker) changeBatch(ctx context.Context, handles []string, secs int32) {
	failed := 0
	for _, ok := range a.visibilityBatch(ctx, handles, secs) {
		if !ok {
			failed++
		}
	}
	a.unsent(&a.unsentChanges, failed)
}

// unsent counts n entries that failed once close began.
func (a *acker) unsent(counter *atomic.Int64, n int) {
	if n > 0 && a.closing.Load() {
		counter.Add(int64(n))
	}
}

func (a *acker) visibilityBatch(ctx context.Context, handles []string, secs int32) []bool {
	ctx, cancel := context.WithTimeout(ctx, a.c.cfg.CallTimeout)
	defer cancel()
	ok := make([]bool, len(handles))
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(handles))
	for i, h := range handles {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(entryID(i)), ReceiptHandle: aws.String(h), VisibilityTimeout: secs}
	}
	q := a.c.queue.URL
	out, err := a.c.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q), Entries: entries})
	if err != nil {
		a.c.cfg.Logger.Warn("courier: visibility change failed", "queue", q, "count", len(handles), "visibility", secs, "err", err)
		return ok
	}
	for _, s := range out.Successful {
		if i, found := entryIndex(s.Id, len(handles)); found {
			ok[i] = true
		}
	}
	for _, f := range out.Failed {
		a.c.cfg.Logger.Warn("courier: visibility change refused", "queue", q, "visibility", secs,
			"code", aws.ToString(f.Code), "err", aws.ToString(f.Message))
	}
	return ok
}

// extendNow extends visibility at once (heartbeat) and reports which worked.
func (a *acker) extendNow(ctx context.Context, handles []string, vis time.Duration) []bool {
	ok := make([]bool, 0, len(handles))
	secs := int32(vis / time.Second)
	for len(handles) > 0 {
		n := min(len(handles), MaxBatchEntries)
		r := a.visibilityBatch(ctx, handles[:n], secs)
		for _, v := range r {
			if v {
				a.c.stats.extended.Add(1)
			}
		}
		ok = append(ok, r...)
		handles = handles[n:]
	}
	return ok
}
