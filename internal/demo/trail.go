// Package demo runs each pattern end to end against a backend and shows
// what happened: a timeline per pattern, a Mermaid sequence diagram drawn
// from the messages' observed trail, and a summary table. cmd/courier-demo
// is its command; make demo runs it.
package demo

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Hop is one observed step of a message's trip: From sent (or delivered)
// something to To.
type Hop struct {
	At     time.Duration // since the pattern started
	From   string        // participant: "sender", "orders queue", "consumer 2"
	To     string
	Note   string // what: "send 10 messages", "reply cid=3f2a"
	Reply  bool   // drawn as a dashed arrow
	Detail string // shown in the timeline only
}

// Trail records the hops of one pattern run; it is safe for concurrent use.
// Everything the timeline and diagram show comes from it, so a change in a
// pattern's flow changes them.
type Trail struct {
	mu     sync.Mutex
	start  time.Time
	hops   []Hop
	actors []string
}

// NewTrail starts a trail now.
func NewTrail() *Trail { return &Trail{start: time.Now()} }

// Add records a hop now.
func (t *Trail) Add(from, to, note string) { t.add(Hop{From: from, To: to, Note: note}) }

// AddReply records a reply hop now.
func (t *Trail) AddReply(from, to, note string) {
	t.add(Hop{From: from, To: to, Note: note, Reply: true})
}

func (t *Trail) add(h Hop) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h.At = time.Since(t.start)
	t.hops = append(t.hops, h)
	for _, a := range []string{h.From, h.To} {
		if !contains(t.actors, a) {
			t.actors = append(t.actors, a)
		}
	}
}

// Hops returns the hops in time order.
func (t *Trail) Hops() []Hop {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]Hop(nil), t.hops...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// Collapse merges consecutive hops with the same ends and note into one
// ("x12"), so that a 200-message run draws as a readable diagram.
func Collapse(hops []Hop) []Hop {
	var out []Hop
	count := 0
	for i, h := range hops {
		if i > 0 && h.From == hops[i-1].From && h.To == hops[i-1].To && h.Note == hops[i-1].Note && h.Reply == hops[i-1].Reply {
			count++
			continue
		}
		if count > 0 {
			out[len(out)-1].Note += fmt.Sprintf(" (x%d)", count+1)
		}
		count = 0
		out = append(out, h)
	}
	if count > 0 {
		out[len(out)-1].Note += fmt.Sprintf(" (x%d)", count+1)
	}
	return out
}

// WriteTimeline prints at most max lines of the trail, collapsed.
func (t *Trail) WriteTimeline(w io.Writer, max int) {
	hops := Collapse(t.Hops())
	for i, h := range hops {
		if i == max {
			fmt.Fprintf(w, "    … %d more steps (see the diagram)\n", len(hops)-max)
			return
		}
		arrow := "→"
		if h.Reply {
			arrow = "⇢"
		}
		fmt.Fprintf(w, "    %7s  %s %s %s: %s\n", fmtDur(h.At), h.From, arrow, h.To, h.Note)
	}
}

// Mermaid returns a Mermaid sequence diagram of the trail.
func (t *Trail) Mermaid(title string) string {
	t.mu.Lock()
	actors := append([]string(nil), t.actors...)
	t.mu.Unlock()
	var b strings.Builder
	b.WriteString("```mermaid\nsequenceDiagram\n")
	fmt.Fprintf(&b, "    title %s\n", title)
	ids := map[string]string{}
	for i, a := range actors {
		ids[a] = fmt.Sprintf("P%d", i)
		kind := "participant"
		if strings.Contains(a, "queue") || strings.Contains(a, "topic") {
			kind = "participant"
		}
		fmt.Fprintf(&b, "    %s %s as %s\n", kind, ids[a], mermaidText(a))
	}
	for _, h := range Collapse(t.Hops()) {
		arrow := "->>"
		if h.Reply {
			arrow = "-->>"
		}
		fmt.Fprintf(&b, "    %s%s%s: %s (+%s)\n", ids[h.From], arrow, ids[h.To], mermaidText(h.Note), fmtDur(h.At))
	}
	b.WriteString("```\n")
	return b.String()
}

func mermaidText(s string) string {
	return strings.NewReplacer(";", ",", "#", "", ":", " ", "\n", " ").Replace(s)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
