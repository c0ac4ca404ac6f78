package memaws

import "time"

// MessageState is one stored message as a test sees it, without
// receiving it (which would change it).
type MessageState struct {
	MessageID     string
	Body          string
	GroupID       string
	ReceiveCount  int
	InFlight      bool      // received and not yet visible again
	VisibleAt     time.Time // when it can be received (again), on the Server's clock
	ReceiptHandle string    // the latest one; "" until received
}

// Messages lists the messages stored in the queue at queueURL (in send
// order), or nil when there is no such queue. It changes nothing: use it
// to see where a message is when a test's expectations fail.
func (s *Server) Messages(queueURL string) []MessageState {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.queueByURLLocked(queueURL)
	if e != nil {
		return nil
	}
	now := s.nowLocked()
	var out []MessageState
	for _, m := range q.msgs {
		if m == nil || m.deleted {
			continue
		}
		out = append(out, MessageState{MessageID: m.id, Body: m.body, GroupID: m.group, ReceiveCount: m.recvCount,
			InFlight: m.inflight(now), VisibleAt: m.visibleAt, ReceiptHandle: m.handle})
	}
	return out
}
