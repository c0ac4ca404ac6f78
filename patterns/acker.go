package patterns

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// acker batches a consumer's deletes and visibility changes: up to ten per
// request, sent when a batch is full or AckInterval after its first entry.
// Requests run concurrently (bounded), so a slow one does not hold up the
// handlers.
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
	// flushing is held (read) by a timer's flush; closed, set under it
	// (write) by close, stops later timer flushes.
	flushing sync.RWMutex
	closed   bool
	ctx      context.Context // not cancelled by Run's context: acks must land
	cancel   context.CancelFunc
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
		a.send(func(ctx context.Context) { a.visibilityBatch(ctx, batch, secs) })
	}
}

func (a *acker) armLocked() {
	if a.timer == nil {
		a.timer = time.AfterFunc(a.c.cfg.AckInterval, a.timerFlush)
	}
}

// timerFlush is flush from the timer: it runs under flushing, so that
// close can wait for one that already fired, and not at all once closed.
func (a *acker) timerFlush() {
	a.flushing.RLock()
	defer a.flushing.RUnlock()
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
			a.send(func(ctx context.Context) { a.visibilityBatch(ctx, batch, secs) })
		}
	}
}

func (a *acker) send(fn func(context.Context)) {
	a.wg.Add(1)
	a.jobs <- fn
}

// close flushes everything pending and waits for it.
func (a *acker) close() {
	a.mu.Lock()
	if a.timer != nil {
		a.timer.Stop()
	}
	a.mu.Unlock()
	// A timer that fired before Stop may be flushing: wait for it, and
	// keep any later one from sending after the senders are gone.
	a.flushing.Lock()
	a.closed = true
	a.flushing.Unlock()
	a.flush()
	a.wg.Wait()
	close(a.jobs)
	a.senders.Wait()
	a.cancel()
}

func (a *acker) deleteBatch(ctx context.Context, handles []pendingDelete) {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(handles))
	for i, h := range handles {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(entryID(i)), ReceiptHandle: aws.String(h.handle)}
	}
	q := a.c.queue.URL
	out, err := a.c.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q), Entries: entries})
	if err != nil {
		a.c.stats.deleteErrors.Add(int64(len(handles)))
		a.c.cfg.Logger.Warn("courier: delete failed; the messages will be delivered again", "queue", q, "count", len(handles), "err", err)
		return
	}
	a.c.stats.deleted.Add(int64(len(out.Successful)))
	for _, s := range out.Successful {
		if i, ok := entryIndex(s.Id, len(handles)); ok && handles[i].after != nil {
			handles[i].after(ctx)
		}
	}
	if len(out.Failed) > 0 {
		a.c.stats.deleteErrors.Add(int64(len(out.Failed)))
		f := out.Failed[0]
		a.c.cfg.Logger.Warn("courier: delete refused; the messages will be delivered again", "queue", q,
			"count", len(out.Failed), "code", aws.ToString(f.Code), "err", aws.ToString(f.Message))
	}
}

func (a *acker) visibilityBatch(ctx context.Context, handles []string, secs int32) []bool {
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
