// Package check is the total-queue checker: it is told what producers were
// told (sent, or failed and so indeterminate) and what handlers saw, and
// says which of courier's promises a run broke:
//   - every message reported sent is handled (or dead-lettered, when the
//     run failed its handler on purpose);
//   - nothing is handled that nobody sent;
//   - duplicates only where at-least-once allows them (AllowDuplicates);
//   - FIFO: within a group, messages are first handled in the order they
//     were sent, and none reported sent is skipped.
//
// A message is named by its body: "key" for standard queues, "group:seq"
// for FIFO (seq counts from 0 in send order within the group).
// The fault suite (perf/) and the simulation (internal/sim) share it.
package check

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/courier-aws/courier/patterns"
)

// Checker records one run. It is safe for concurrent use.
type Checker struct {
	mu      sync.Mutex
	sent    map[string]bool // reported sent
	maybe   map[string]bool // the send failed: indeterminate
	handled map[string]int
	dead    map[string]bool // found in a dead-letter queue
	order   map[string][]int
}

// New returns an empty Checker.
func New() *Checker {
	return &Checker{sent: map[string]bool{}, maybe: map[string]bool{}, handled: map[string]int{},
		dead: map[string]bool{}, order: map[string][]int{}}
}

// SendResult records what a Send of msgs returned: a *patterns.SendError
// names the failed entries, any other error fails them all.
func (c *Checker) SendResult(msgs []*patterns.Message, err error) {
	failed := map[*patterns.Message]bool{}
	var se *patterns.SendError
	if errors.As(err, &se) {
		for _, f := range se.Failed {
			failed[f.Message] = true
		}
	} else if err != nil {
		for _, m := range msgs {
			failed[m] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		if failed[m] {
			c.maybe[string(m.Body)] = true
		} else {
			c.sent[string(m.Body)] = true
		}
	}
}

// Handle records that a handler saw body.
func (c *Checker) Handle(body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handled[body]++
	if g, s, ok := strings.Cut(body, ":"); ok && c.handled[body] == 1 {
		if n, err := strconv.Atoi(s); err == nil {
			c.order[g] = append(c.order[g], n)
		}
	}
}

// WasHandled reports whether a handler saw body.
func (c *Checker) WasHandled(body string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.handled[body] > 0
}

// Dead records that body was found in a dead-letter queue.
func (c *Checker) Dead(body string) {
	c.mu.Lock()
	c.dead[body] = true
	c.mu.Unlock()
}

// AllHandled reports whether every message reported sent was handled or
// dead-lettered.
func (c *Checker) AllHandled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := range c.sent {
		if c.handled[b] == 0 && !c.dead[b] {
			return false
		}
	}
	return true
}

// Counts is a run's tally.
type Counts struct {
	Sent, Indeterminate, Handled, Duplicates, Dead, Unexpected, Lost int
}

func (n Counts) String() string {
	return fmt.Sprintf("sent=%d indeterminate=%d handled=%d duplicates=%d dead=%d unexpected=%d lost=%d",
		n.Sent, n.Indeterminate, n.Handled, n.Duplicates, n.Dead, n.Unexpected, n.Lost)
}

// Options say what a run allows.
type Options struct {
	FIFO bool
	// AllowDuplicates: at-least-once delivery may hand a message over twice
	// (always true for standard queues; for FIFO when a delete can fail).
	AllowDuplicates bool
	// OrderMayBreak: the backend is known not to keep FIFO order after a
	// lost receive (moto); order violations are then not violations.
	OrderMayBreak bool
}

// Check returns the tally and every broken promise, worded for a person.
func (c *Checker) Check(o Options) (Counts, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n Counts
	var v []string
	n.Sent, n.Indeterminate, n.Handled, n.Dead = len(c.sent), len(c.maybe), len(c.handled), len(c.dead)
	for _, b := range sortedKeys(c.sent) {
		if c.handled[b] == 0 && !c.dead[b] {
			n.Lost++
			v = append(v, fmt.Sprintf("lost: %q was reported sent and never handled", b))
		}
	}
	for _, b := range sortedKeys(c.handled) {
		k := c.handled[b]
		if !c.sent[b] && !c.maybe[b] {
			n.Unexpected++
			v = append(v, fmt.Sprintf("unexpected: %q was handled but nobody sent it", b))
		}
		n.Duplicates += k - 1
		if k > 1 && !o.AllowDuplicates {
			v = append(v, fmt.Sprintf("duplicate: %q handled %d times", b, k))
		}
	}
	if o.FIFO && !o.OrderMayBreak {
		for _, g := range sortedKeys(c.order) {
			seq := c.order[g]
			if !slices.IsSorted(seq) {
				v = append(v, fmt.Sprintf("order: group %s first handled in order %v", g, seq))
				continue
			}
			// A message reported sent must not be skipped by a later one of
			// its group: SQS would only have stored the later one if the
			// earlier one was stored first.
			for i := range seq {
				if i == 0 {
					continue
				}
				for k := seq[i-1] + 1; k < seq[i]; k++ {
					if b := g + ":" + strconv.Itoa(k); c.sent[b] && c.handled[b] == 0 && !c.dead[b] {
						v = append(v, fmt.Sprintf("order: group %s: %d handled, %d (reported sent) skipped", g, seq[i], k))
					}
				}
			}
		}
	}
	return n, v
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
