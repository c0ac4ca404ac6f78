package patterns

import (
	"context"
	"sync"
)

// slots bounds the messages in flight.
type slots struct {
	mu      sync.Mutex
	free    int
	max     int
	notify  chan struct{}
	waiting bool // someone waits on notify: release replaces it
}

func newSlots(n int) *slots { return &slots{free: n, max: n, notify: make(chan struct{})} }

// acquire waits until want slots are free (or all are, when want exceeds
// the bound) and takes them; it returns 0 when ctx is done.
func (s *slots) acquire(ctx context.Context, want int) int {
	want = min(want, s.max)
	for {
		s.mu.Lock()
		if s.free >= want {
			s.free -= want
			s.mu.Unlock()
			return want
		}
		ch := s.notify
		s.waiting = true
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0
		case <-ch:
		}
	}
}

func (s *slots) release(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	if s.waiting {
		close(s.notify)
		s.notify = make(chan struct{})
		s.waiting = false
	}
	s.mu.Unlock()
}

// groupGate keeps one run per FIFO group in progress at a time. SQS already
// holds back a group while its messages are in flight; the gate also covers
// a redelivery that overlaps a slow handler.
type groupGate struct {
	mu      sync.Mutex
	active  map[string]bool
	pending map[string][]run
}

func newGroupGate() *groupGate {
	return &groupGate{active: map[string]bool{}, pending: map[string][]run{}}
}

// admit reports whether r may start now; if not, it is queued behind its group.
func (g *groupGate) admit(r run) bool {
	if r.group == "" {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active[r.group] {
		g.pending[r.group] = append(g.pending[r.group], r)
		return false
	}
	g.active[r.group] = true
	return true
}

// done marks r finished and returns the next run of its group, if any.
func (g *groupGate) done(r run) (run, bool) {
	if r.group == "" {
		return run{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if q := g.pending[r.group]; len(q) > 0 {
		g.pending[r.group] = q[1:]
		if len(q) == 1 {
			delete(g.pending, r.group)
		}
		return q[0], true
	}
	delete(g.active, r.group)
	return run{}, false
}

// drain takes every queued run out of the gate (shutdown, when the
// workers that would start them are abandoned).
func (g *groupGate) drain() []run {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []run
	for group, q := range g.pending {
		out = append(out, q...)
		delete(g.pending, group)
	}
	return out
}
