package patterns

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Coalescing: the batcher keeps one queue of the messages waiting to be
// sent, whichever Send call they came from, and cuts batches from it. A
// service that calls Send with one message from many goroutines gets full
// batches, as a caller sending a slice does:
//
//   - When no request is in flight, what waits goes at once, a partial
//     batch if need be: a lone Send adds no latency.
//   - While requests are in flight, full batches (ten entries, or the
//     request's byte limit) go as soon as a request slot is free; a partial
//     batch waits for more messages, at most linger, then goes too.
//   - At most concurrency requests are in flight for all Sends together.
//
// Each Send returns when all its messages were accepted or failed, with
// its own per-message results, or when its context ends: then its messages
// still waiting are withdrawn (not sent, certainly) and those in a request
// are reported not sent (their outcome unknown). A request carrying only
// one Send's messages runs in that Send's goroutine, under its context; a
// shared one runs in a goroutine of its own, carries on while any of its
// callers waits, and is cancelled when none does.
//
// FIFO: a group's messages are sent in the order they joined the queue,
// and a group has at most one request in flight, so that requests cannot
// overtake each other. When a message of a group is not sent, the group's
// messages waiting behind it are not sent either (ErrGroupStopped), from
// whichever Send they came; messages that join later are sent.

// linger bounds how long a partial batch waits for company while other
// requests are in flight (and a request slot is free).
const linger = 5 * time.Millisecond

// entry is one message of one Send call in the queue.
type entry struct {
	i    int // position in its Send
	m    *Message
	c    *call
	size int
	st   entryState
	// The request's outcome, written by the request's goroutine and read
	// under the coalescer's lock after it finished.
	id, seq string
	failed  bool
	fe      FailedEntry
}

type entryState uint8

const (
	waiting entryState = iota
	inRequest
	finished
)

// call is one Send waiting for its messages.
type call struct {
	ctx     context.Context
	entries []entry
	left    int // entries not finished
	failed  []FailedEntry
	done    chan struct{} // closed when left reaches 0
	gone    bool          // its caller returned before that
	reqs    []*request    // requests in flight carrying its entries
}

// request is one batch in flight.
type request struct {
	entries []*entry
	ctx     context.Context
	cancel  context.CancelFunc
	callers int  // distinct calls still waiting on it
	inline  bool // runs in its only caller's goroutine, under its context
}

// coalescer is a batcher's queue and its requests in flight.
type coalescer struct {
	mu       sync.Mutex
	pending  []*entry
	inFlight int
	busy     map[string]bool // FIFO: groups with a request in flight
	lingerT  *time.Timer
	armed    bool
}

// sendValid sends msgs, which validateAll accepted, through the queue.
func (b *batcher) sendValid(ctx context.Context, msgs []*Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		failed := make([]FailedEntry, len(msgs))
		for i, m := range msgs {
			failed[i] = FailedEntry{Index: i, Message: m, Err: opError(b.op, b.resource, err), refused: true}
		}
		return &SendError{Op: b.op, Resource: b.resource, Failed: failed}
	}
	c := &call{ctx: ctx, entries: make([]entry, len(msgs)), left: len(msgs), done: make(chan struct{})}
	for i, m := range msgs {
		c.entries[i] = entry{i: i, m: m, c: c, size: wireSize(m.Body, m.wireAttributes())}
	}
	q := &b.q
	q.mu.Lock()
	for i := range c.entries {
		q.pending = append(q.pending, &c.entries[i])
	}
	start := b.dispatch(c)
	q.mu.Unlock()
	b.startFrom(c, start)

	select {
	case <-c.done:
	case <-ctx.Done():
		q.mu.Lock()
		if c.left > 0 {
			b.abandon(c, ctx.Err())
		}
		q.mu.Unlock()
	}
	if len(c.failed) == 0 {
		return nil
	}
	sortFailed(c.failed)
	return &SendError{Op: b.op, Resource: b.resource, Failed: c.failed}
}

// abandon ends call c, whose caller's context ended with err: its waiting
// entries leave the queue, unsent; those in a request are reported with
// their outcome unknown; a request with no caller left is cancelled.
// q.mu is held.
func (b *batcher) abandon(c *call, err error) {
	q := &b.q
	c.gone = true
	kept := q.pending[:0]
	for _, e := range q.pending {
		if e.c != c {
			kept = append(kept, e)
		}
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	for i := range c.entries {
		e := &c.entries[i]
		switch e.st {
		case waiting:
			c.failed = append(c.failed, FailedEntry{Index: e.i, Message: e.m, Err: opError(b.op, b.resource, err), refused: true})
		case inRequest:
			c.failed = append(c.failed, FailedEntry{Index: e.i, Message: e.m, Err: opError(b.op, b.resource, err)})
		}
		e.st = finished
	}
	c.left = 0
	for _, r := range c.reqs {
		if r.callers--; r.callers == 0 {
			r.cancel()
		}
	}
	c.reqs = nil
}

// dispatch cuts the batches that may go now and marks them in flight; the
// caller starts them after unlocking. The first may be for the goroutine
// of call c's Send to run itself (see startFrom). q.mu is held.
func (b *batcher) dispatch(c *call) []*request {
	q := &b.q
	var out []*request
	for q.inFlight < b.concurrency && len(q.pending) > 0 {
		batch, full := b.cut()
		if len(batch) == 0 {
			break
		}
		if !full && q.inFlight > 0 {
			b.armLinger()
			break
		}
		out = append(out, b.take(batch, c, len(out) == 0))
	}
	return out
}

// flushLinger sends a partial batch that waited long enough.
func (b *batcher) flushLinger() {
	q := &b.q
	q.mu.Lock()
	q.armed = false
	var out []*request
	for q.inFlight < b.concurrency {
		batch, _ := b.cut()
		if len(batch) == 0 {
			break
		}
		out = append(out, b.take(batch, nil, false))
	}
	q.mu.Unlock()
	b.start(out)
}

func (b *batcher) armLinger() {
	q := &b.q
	if q.armed {
		return
	}
	q.armed = true
	if q.lingerT == nil {
		q.lingerT = time.AfterFunc(linger, b.flushLinger)
	} else {
		q.lingerT.Reset(linger)
	}
}

// cut returns the next batch from the queue, in queue order, within the
// entry and byte limits, and whether it is full. FIFO: entries of a group
// with a request in flight are skipped, they wait for it. q.mu is held.
func (b *batcher) cut() (batch []int, full bool) {
	q := &b.q
	size := 0
	for i, e := range q.pending {
		if b.fifo && q.busy[e.m.GroupID] {
			continue
		}
		if len(batch) > 0 && size+e.size > b.maxBatch {
			return batch, true
		}
		size += e.size
		batch = append(batch, i)
		if len(batch) == MaxBatchEntries {
			return batch, true
		}
	}
	return batch, false
}

// take removes the entries at positions idx (ascending) from the queue and
// puts them in a request in flight. It runs in c's goroutine, under c's
// context, when c may take one (first) and every entry is c's; otherwise
// in a goroutine of its own, which outlives no caller: it keeps the first
// one's values (trace context), and is cancelled when every caller has
// gone. q.mu is held.
func (b *batcher) take(idx []int, c *call, first bool) *request {
	q := &b.q
	r := &request{entries: make([]*entry, len(idx))}
	for k, i := range idx {
		e := q.pending[i]
		e.st = inRequest
		r.entries[k] = e
		if b.fifo {
			if q.busy == nil {
				q.busy = map[string]bool{}
			}
			q.busy[e.m.GroupID] = true
		}
		if c := e.c; len(c.reqs) == 0 || c.reqs[len(c.reqs)-1] != r {
			c.reqs = append(c.reqs, r)
			r.callers++
		}
	}
	if idx[len(idx)-1] == len(idx)-1 {
		// A prefix: the usual case.
		clear(q.pending[:len(idx)])
		q.pending = q.pending[len(idx):]
	} else {
		kept, k := q.pending[:0], 0
		for i, e := range q.pending {
			if k < len(idx) && idx[k] == i {
				k++
				continue
			}
			kept = append(kept, e)
		}
		clear(q.pending[len(kept):])
		q.pending = kept
	}
	q.inFlight++
	if first && c != nil && r.callers == 1 && r.entries[0].c == c {
		r.inline, r.ctx, r.cancel = true, c.ctx, noCancel
	} else {
		r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(r.entries[0].c.ctx))
	}
	return r
}

func noCancel() {}

// startFrom starts rs for the Send of call c. A request carrying only c's
// messages runs in c's own goroutine under its context, as a Send did
// before sharing batches: no goroutine to start, and c's context ends it
// (the SDK returns when it ends). The others run in goroutines of their
// own.
func (b *batcher) startFrom(c *call, rs []*request) {
	for len(rs) > 0 && rs[0].inline {
		b.start(rs[1:])
		rs = b.sendRequest(rs[0], c)
	}
	b.start(rs)
}

// start runs each of rs in a goroutine.
func (b *batcher) start(rs []*request) {
	for _, r := range rs {
		go b.run(r)
	}
}

// run sends r and then, in the same goroutine, the next batch that may go
// (an SDK call runs deep; a fresh goroutine's stack grows again on each).
func (b *batcher) run(r *request) {
	for r != nil {
		next := b.sendRequest(r, nil)
		r = nil
		if len(next) > 0 {
			r = next[0]
			b.start(next[1:])
		}
	}
}

// sendRequest sends r, reports its outcome, and returns the batches that
// may go now (the first for c to run itself, when it may).
func (b *batcher) sendRequest(r *request, c *call) []*request {
	b.sendBatch(r.ctx, r.entries)
	r.cancel()
	b.q.mu.Lock()
	b.finish(r)
	if c != nil && c.left > 0 && c.ctx.Err() != nil {
		// c's context ended while it sent: its messages still waiting
		// are withdrawn, not sent under a dead context.
		b.abandon(c, c.ctx.Err())
		c = nil
	}
	next := b.dispatch(c)
	b.q.mu.Unlock()
	return next
}

// finish hands r's outcome to the calls waiting on it. FIFO: a group with
// an entry not sent stops its entries waiting behind it. q.mu is held.
func (b *batcher) finish(r *request) {
	q := &b.q
	q.inFlight--
	var stopped map[string]bool
	for _, e := range r.entries {
		if b.fifo {
			delete(q.busy, e.m.GroupID)
			if e.failed {
				if stopped == nil {
					stopped = map[string]bool{}
				}
				stopped[e.m.GroupID] = true
			}
		}
		c := e.c
		if c.gone {
			continue
		}
		if e.failed {
			c.failed = append(c.failed, e.fe)
		} else {
			e.m.ID, e.m.SequenceNumber = e.id, e.seq
		}
		e.st = finished
		b.done(c)
	}
	for _, e := range r.entries {
		c := e.c
		for k, cr := range c.reqs {
			if cr == r {
				c.reqs = append(c.reqs[:k], c.reqs[k+1:]...)
				break
			}
		}
	}
	if len(stopped) == 0 {
		return
	}
	kept := q.pending[:0]
	for _, e := range q.pending {
		g := e.m.GroupID
		if !stopped[g] {
			kept = append(kept, e)
			continue
		}
		e.st = finished
		e.c.failed = append(e.c.failed, FailedEntry{Index: e.i, Message: e.m,
			Err: fmt.Errorf("%w: group %q", ErrGroupStopped, g), refused: true})
		b.done(e.c)
	}
	clear(q.pending[len(kept):])
	q.pending = kept
}

// done counts one entry of c finished. q.mu is held.
func (b *batcher) done(c *call) {
	if c.left--; c.left == 0 {
		close(c.done)
	}
}
