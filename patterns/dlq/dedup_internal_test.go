package dlq

import (
	"testing"
	"time"
)

func TestDedupID(t *testing.T) {
	now := time.Now()
	m := Message{ID: "id-1", DeduplicationID: "d-1"}
	for _, tc := range []struct {
		name    string
		sent    time.Time
		keep    bool
		dedupID string
	}{
		{"sent just now: SQS still remembers it", now.Add(-time.Minute), false, ""},
		{"sent 5m30s ago: within the margin", now.Add(-5*time.Minute - 30*time.Second), false, ""},
		{"sent 7 minutes ago: kept", now.Add(-7 * time.Minute), true, "d-1"},
		{"no sent time: not kept", time.Time{}, false, ""},
		{"the message id, as AWS's FIFO dead-letter queues set it: kept", now, true, "id-1"},
	} {
		m := m
		m.SentAt = tc.sent
		if tc.dedupID == m.ID {
			m.DeduplicationID = m.ID
		}
		id, derived := dedupID(m, now)
		if derived == tc.keep {
			t.Errorf("%s: derived %v", tc.name, derived)
		}
		if tc.keep && id != tc.dedupID {
			t.Errorf("%s: id %q", tc.name, id)
		}
		if derived && (id == m.DeduplicationID || len(id) > 128 || id != derivedDedupID(m)) {
			t.Errorf("%s: derived id %q", tc.name, id)
		}
	}
	other := m
	other.ID = "id-2"
	if derivedDedupID(m) == derivedDedupID(other) {
		t.Error("two messages with one deduplication id got one derived id")
	}
}
