package patterns

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestIdleReplyQueue(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cutoff := now.Add(-time.Hour)
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	cases := []struct {
		name string
		tags map[string]string
		idle bool
	}{
		{"orphan", map[string]string{TagReplyQueue: "true", TagHeartbeat: at(-2 * time.Hour)}, true},
		{"fresh", map[string]string{TagReplyQueue: "true", TagHeartbeat: at(-time.Minute)}, false},
		{"exactly at the cutoff", map[string]string{TagReplyQueue: "true", TagHeartbeat: at(-time.Hour)}, false},
		{"clock ahead", map[string]string{TagReplyQueue: "true", TagHeartbeat: at(time.Hour)}, false},
		{"no tags", nil, false},
		{"not a reply queue", map[string]string{TagHeartbeat: at(-2 * time.Hour)}, false},
		{"marker not true", map[string]string{TagReplyQueue: "yes", TagHeartbeat: at(-2 * time.Hour)}, false},
		{"no heartbeat", map[string]string{TagReplyQueue: "true"}, false},
		{"unreadable heartbeat", map[string]string{TagReplyQueue: "true", TagHeartbeat: "2024-01-01"}, false},
	}
	for _, tc := range cases {
		if got := idleReplyQueue(tc.tags, cutoff); got != tc.idle {
			t.Errorf("%s: idle = %v, want %v", tc.name, got, tc.idle)
		}
	}
}

// TestErrorReplyIsSendable: whatever a handler's error says, its error
// reply is a message SQS accepts.
func TestErrorReplyIsSendable(t *testing.T) {
	for _, text := range []string{"", "plain", "nul\x00byte", "bad utf8 \xff\xfe", "bell\a and \uFFFE", strings.Repeat("é", 10_000), "line\nbreak\ttab"} {
		m := errorReply(text)
		if err := m.validate(MaxSQSMessageBytes); err != nil {
			t.Errorf("errorReply(%q): %v", text, err)
		}
		if m.Header(ErrorHeader) != string(m.Body) || len(m.Body) > 4096 {
			t.Errorf("errorReply(%q): header %q, body %d bytes", text, m.Header(ErrorHeader), len(m.Body))
		}
	}
}

func TestReplyTo(t *testing.T) {
	req := &Message{CorrelationID: "c1", ReturnAddress: "https://sqs.eu-west-1.amazonaws.com/1/r", TraceParent: "00-abc-def-01"}
	reply := &Message{Body: []byte("ok"), ReturnAddress: "https://elsewhere/1/x", ID: "old"}

	std, _ := ParseQueueURL("https://sqs.eu-west-1.amazonaws.com/1/r")
	got := replyTo(req, reply, std)
	if got.CorrelationID != "c1" || got.ReturnAddress != "" || got.ID != "" || got.TraceParent != req.TraceParent || got.GroupID != "" {
		t.Errorf("standard: %+v", got)
	}
	if reply.CorrelationID != "" || reply.ID != "old" {
		t.Errorf("the handler's reply was changed: %+v", reply)
	}

	fifo, _ := ParseQueueURL("https://sqs.eu-west-1.amazonaws.com/1/r.fifo")
	got = replyTo(req, reply, fifo)
	if got.GroupID != "c1" || got.DeduplicationID != "c1" {
		t.Errorf("fifo: group %q dedup %q, want the correlation id", got.GroupID, got.DeduplicationID)
	}
}

func TestCorrelationIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newCorrelationID()
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
			t.Fatalf("correlation id %q: want 32 hex digits, unique", id)
		}
		seen[id] = true
	}
}

func TestUnsendable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"too large", fmt.Errorf("x: %w", ErrMessageTooLarge), true},
		{"invalid", ErrInvalidMessage, true},
		{"refused by SQS", &SendError{Failed: []FailedEntry{{Code: "InvalidMessageContents", SenderFault: true}}}, true},
		{"queue gone", &SendError{Failed: []FailedEntry{{Code: "QueueDoesNotExist", SenderFault: true}}}, false},
		{"server fault", &SendError{Failed: []FailedEntry{{Code: "InternalError"}}}, false},
		{"network", errors.New("connection reset"), false},
	}
	for _, tc := range cases {
		if got := unsendable(tc.err); got != tc.want {
			t.Errorf("%s: unsendable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
