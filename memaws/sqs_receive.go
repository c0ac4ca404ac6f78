package memaws

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// errContextDone: the request's context ended during a long poll; the
// client gets the context's error, as from a request it abandoned.
var errContextDone = &APIError{Status: 499, Code: "memaws.ContextDone"}

// messageOut is a received message as ReceiveMessage returns it.
type messageOut struct {
	MessageId              string
	ReceiptHandle          string
	MD5OfBody              string
	Body                   string
	Attributes             map[string]string    `json:",omitempty"`
	MD5OfMessageAttributes string               `json:",omitempty"`
	MessageAttributes      map[string]attrValue `json:",omitempty"`
}

// receiveParams is a ReceiveMessage request, validated.
type receiveParams struct {
	max        int
	visibility time.Duration
	sysNames   map[string]bool // "All" or names
	attrNames  []string        // as asked: "All", ".*", "prefix.*" or names
	duplicate  bool
}

func intParam(p *int, name string, def, lo, hi int) (int, *APIError) {
	if p == nil {
		return def, nil
	}
	if *p < lo || *p > hi {
		return 0, errInvalid("Value %d for parameter %s is invalid. Reason: Must be between %d and %d, if provided.", *p, name, lo, hi)
	}
	return *p, nil
}

// receiveMessage serves ReceiveMessage, waiting (a long poll) without
// holding s.mu until a message is available, the wait ends or the
// request's context does.
func (s *Server) receiveMessage(r *request, in *sqsInput) (any, *APIError) {
	max, e := intParam(in.MaxNumberOfMessages, "MaxNumberOfMessages", 1, 1, sqsMaxBatchEntries)
	if e != nil {
		return nil, e
	}
	p := receiveParams{max: max, sysNames: map[string]bool{}, attrNames: in.MessageAttributeNames, duplicate: r.fault.Duplicate}
	for _, n := range append(append([]string{}, in.AttributeNames...), in.MessageSystemAttributeNames...) {
		p.sysNames[n] = true
	}
	s.mu.Lock()
	q, e := s.queueByURLLocked(in.QueueUrl)
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	vis, e := intParam(in.VisibilityTimeout, "VisibilityTimeout", int(q.cfg.visibility/time.Second), 0, 43200)
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	p.visibility = time.Duration(vis) * time.Second
	wait, e := intParam(in.WaitTimeSeconds, "WaitTimeSeconds", int(q.cfg.wait/time.Second), 0, 20)
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	deadline := s.nowLocked().Add(time.Duration(wait) * time.Second)
	for {
		if q.gone {
			s.mu.Unlock()
			return nil, errNoQueue()
		}
		now := s.nowLocked()
		msgs, e := s.retriedReceiveLocked(q, in.ReceiveRequestAttemptId, &p, now)
		if msgs == nil && e == nil {
			msgs, e = s.receiveLocked(q, &p, now)
			if e == nil && len(msgs) > 0 && q.fifo && in.ReceiveRequestAttemptId != "" {
				s.recordAttemptLocked(q, in.ReceiveRequestAttemptId, msgs, now)
			}
		}
		if e != nil || len(msgs) > 0 || !now.Before(deadline) {
			s.mu.Unlock()
			if e != nil {
				return nil, e
			}
			return map[string]any{"Messages": msgs}, nil
		}
		wake := deadline
		if next, ok := nextVisibleLocked(q, now); ok && next.Before(wake) {
			wake = next
		}
		changed := s.changed
		s.mu.Unlock()
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-changed:
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return nil, errContextDone
		}
		t.Stop()
		s.mu.Lock()
	}
}

// nextVisibleLocked is the earliest time after now a message of q becomes
// visible (a delay or a visibility timeout ends).
func nextVisibleLocked(q *queue, now time.Time) (time.Time, bool) {
	var next time.Time
	for _, m := range q.msgs {
		if !m.deleted && now.Before(m.visibleAt) && (next.IsZero() || m.visibleAt.Before(next)) {
			next = m.visibleAt
		}
	}
	return next, !next.IsZero()
}

// receiveLocked takes up to p.max visible messages of q, moving those
// received maxReceiveCount times to the dead-letter queue. s.mu held.
func (s *Server) receiveLocked(q *queue, p *receiveParams, now time.Time) ([]messageOut, *APIError) {
	s.expireLocked(q, now)
	blocked := map[string]bool{} // FIFO groups with a message in flight
	if q.fifo || len(q.live) >= sqsMaxInflight {
		inflight := 0
		for _, m := range q.msgs {
			if !m.deleted && m.inflight(now) {
				inflight++
				blocked[m.group] = true
			}
		}
		if inflight >= sqsMaxInflight {
			if q.fifo {
				return []messageOut{}, nil
			}
			return nil, errCode("OverLimit", "Too many messages in flight: a queue has at most %d.", sqsMaxInflight)
		}
	}
	out := []messageOut{}
	for _, m := range q.msgs {
		if len(out) == p.max {
			break
		}
		if m.deleted || (q.fifo && blocked[m.group]) {
			continue
		}
		if now.Before(m.visibleAt) {
			if q.fifo {
				blocked[m.group] = true // a group's head not yet visible holds the rest
			}
			continue
		}
		if rp := q.cfg.redrive; rp != nil && m.recvCount >= rp.MaxReceiveCount {
			if dlq := s.queueByARNLocked(rp.DeadLetterTargetArn); dlq != nil {
				s.moveLocked(q, m, dlq, now, true)
				continue
			}
		}
		if p.duplicate && !q.fifo {
			c := *m
			c.serial, c.handle = s.nextID(), ""
			s.addLocked(q, &c)
		}
		m.recvCount++
		if m.received.IsZero() {
			m.received = now
		}
		m.handle = s.handleLocked(q, m)
		m.inflightT, m.visChanged = now, false
		m.visibleAt = now.Add(p.visibility)
		out = append(out, view(m, p))
	}
	s.compactLocked(q)
	return out, nil
}

// view is m as a receive returns it, with the attributes asked for.
func view(m *message, p *receiveParams) messageOut {
	o := messageOut{MessageId: m.id, ReceiptHandle: m.handle, MD5OfBody: m.md5Body, Body: m.body}
	all := p.sysNames["All"]
	sys := map[string]string{}
	put := func(name, v string) {
		if v != "" && (all || p.sysNames[name]) {
			sys[name] = v
		}
	}
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	put("SenderId", m.sender)
	put("SentTimestamp", ms(m.sent))
	put("ApproximateReceiveCount", strconv.Itoa(m.recvCount))
	put("ApproximateFirstReceiveTimestamp", ms(m.received))
	put("SequenceNumber", m.seq)
	put("MessageDeduplicationId", m.dedupID)
	put("MessageGroupId", m.group)
	put("DeadLetterQueueSourceArn", m.dlqSource)
	if v, ok := m.sysAttrs["AWSTraceHeader"]; ok && v.StringValue != nil {
		put("AWSTraceHeader", *v.StringValue)
	}
	if len(sys) > 0 {
		o.Attributes = sys
	}
	attrs := map[string]attrValue{}
	for name, v := range m.attrs {
		for _, want := range p.attrNames {
			prefix, wild := strings.CutSuffix(want, ".*")
			if want == "All" || want == ".*" || want == name || wild && strings.HasPrefix(name, prefix+".") {
				attrs[name] = v
				break
			}
		}
	}
	if len(attrs) > 0 {
		o.MessageAttributes = attrs
		o.MD5OfMessageAttributes = attrsMD5(attrs)
	}
	return o
}

// moveLocked moves m from q to dst (a redrive to the dead-letter queue or a
// move task back out of it): same MessageId, body, attributes and
// SentTimestamp, received zero times. s.mu held.
func (s *Server) moveLocked(q *queue, m *message, dst *queue, now time.Time, toDLQ bool) {
	s.removeLocked(q, m)
	c := *m
	c.serial, c.handle, c.recvCount, c.received, c.inflightT, c.deleted, c.visChanged = s.nextID(), "", 0, time.Time{}, time.Time{}, false, false
	c.visibleAt = now
	if dst.fifo {
		c.enqueued = now // a FIFO DLQ's retention starts again; a standard one's counts from the first send
	}
	if toDLQ {
		c.dlqSource = q.arn
	} else {
		c.dlqSource = ""
	}
	s.addLocked(dst, &c)
}

// removeLocked deletes m from q. s.mu held.
func (s *Server) removeLocked(q *queue, m *message) {
	if m.deleted {
		return
	}
	m.deleted = true
	delete(q.live, m.serial)
	q.bytes -= m.size
	q.dead++
}

// compactLocked drops deleted messages from q.msgs once they are many.
func (s *Server) compactLocked(q *queue) {
	if q.dead < 64 || q.dead*2 < len(q.msgs) {
		return
	}
	keep := make([]*message, 0, len(q.live))
	for _, m := range q.msgs {
		if !m.deleted {
			keep = append(keep, m)
		}
	}
	q.msgs, q.dead = keep, 0
}

// expireLocked deletes the messages older than the queue's retention
// period. It scans only when the oldest may have expired.
func (s *Server) expireLocked(q *queue, now time.Time) {
	if now.Before(q.expiryCheck) {
		return
	}
	var next time.Time
	for _, m := range q.msgs {
		if m.deleted {
			continue
		}
		end := m.enqueued.Add(q.cfg.retention)
		if !now.Before(end) {
			s.removeLocked(q, m)
		} else if next.IsZero() || end.Before(next) {
			next = end
		}
	}
	if next.IsZero() {
		next = now.Add(q.cfg.retention)
	}
	q.expiryCheck = next
	s.compactLocked(q)
}

// handleLocked makes a fresh receipt handle for m: it names the queue, the
// message and this receive.
func (s *Server) handleLocked(q *queue, m *message) string {
	raw := fmt.Sprintf("memaws|%s|%d|%d", q.key, m.serial, s.nextID())
	return "AQEB" + base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// messageByHandleLocked finds the message a receipt handle names; nil when
// it was deleted. A handle that is not one of q's is invalid.
func messageByHandleLocked(q *queue, h string) (*message, *APIError) {
	bad := errCode("ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", h)
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(h, "AQEB"))
	if err != nil || !strings.HasPrefix(h, "AQEB") {
		return nil, bad
	}
	p := strings.Split(string(b), "|")
	if len(p) != 4 || p[0] != "memaws" || p[1] != q.key {
		return nil, bad
	}
	serial, err := strconv.ParseUint(p[2], 10, 64)
	if err != nil {
		return nil, bad
	}
	return q.live[serial], nil
}

// deleteLocked deletes the message a handle names. As AWS documents, a
// handle older than the message's latest receive succeeds without deleting
// on a standard queue; a FIFO queue refuses a handle whose visibility
// timeout has ended ("The receipt handle has expired").
func (s *Server) deleteLocked(q *queue, h string) *APIError {
	if h == "" {
		return errMissing("ReceiptHandle")
	}
	m, e := messageByHandleLocked(q, h)
	if e != nil || m == nil {
		return e
	}
	now := s.nowLocked()
	if q.fifo && (m.handle != h || !now.Before(m.visibleAt)) {
		return errCode("ReceiptHandleIsInvalid", "The receipt handle has expired.")
	}
	if m.handle != h {
		return nil
	}
	s.removeLocked(q, m)
	s.compactLocked(q)
	s.notifyLocked() // a FIFO group may be free
	return nil
}

// changeVisibilityLocked sets the visibility timeout of the message a
// handle names, counted from now. s.mu held.
func (s *Server) changeVisibilityLocked1(q *queue, h string, vis *int) *APIError {
	if h == "" {
		return errMissing("ReceiptHandle")
	}
	v := 0
	if vis != nil {
		v = *vis
	}
	if v < 0 || v > 43200 {
		return errInvalid("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", v)
	}
	m, e := messageByHandleLocked(q, h)
	if e != nil {
		return e
	}
	now := s.nowLocked()
	if m == nil || m.handle != h || !m.inflight(now) {
		return errCode("MessageNotInflight", "The message referred to isn't in flight.")
	}
	until := now.Add(time.Duration(v) * time.Second)
	if until.After(m.inflightT.Add(sqsMaxVisibility)) {
		return errInvalid("Value %d for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds].", v)
	}
	m.visibleAt = until
	m.visChanged = true
	s.notifyLocked()
	return nil
}

func (s *Server) deleteMessageLocked(q *queue, in *sqsInput) (any, *APIError) {
	h := ""
	if in.ReceiptHandle != nil {
		h = *in.ReceiptHandle
	}
	if e := s.deleteLocked(q, h); e != nil {
		return nil, e
	}
	return struct{}{}, nil
}

func (s *Server) changeVisibilityLocked(q *queue, in *sqsInput) (any, *APIError) {
	h := ""
	if in.ReceiptHandle != nil {
		h = *in.ReceiptHandle
	}
	if e := s.changeVisibilityLocked1(q, h, in.VisibilityTimeout); e != nil {
		return nil, e
	}
	return struct{}{}, nil
}

// handleEntry is an entry of DeleteMessageBatch or ChangeMessageVisibilityBatch.
type handleEntry struct {
	Id                string
	ReceiptHandle     string
	VisibilityTimeout *int
}

func (s *Server) handleBatchLocked(r *request, in *sqsInput, fn func(handleEntry) *APIError) (any, *APIError) {
	ids, e := batchIDs(in.Entries)
	if e != nil {
		return nil, e
	}
	out := batchOutput{Successful: []any{}, Failed: []batchFailure{}}
	for i, raw := range in.Entries {
		var en handleEntry
		if err := json.Unmarshal(raw, &en); err != nil {
			return nil, &APIError{Status: 400, Code: "SerializationException", Message: err.Error()}
		}
		if f, ok := r.entryError(i); ok {
			out.Failed = append(out.Failed, injected(ids[i], f))
			continue
		}
		if e := fn(en); e != nil {
			out.Failed = append(out.Failed, failure(ids[i], e))
			continue
		}
		out.Successful = append(out.Successful, map[string]string{"Id": ids[i]})
	}
	return out, nil
}

func (s *Server) deleteMessageBatchLocked(r *request, q *queue, in *sqsInput) (any, *APIError) {
	return s.handleBatchLocked(r, in, func(en handleEntry) *APIError { return s.deleteLocked(q, en.ReceiptHandle) })
}

func (s *Server) changeVisibilityBatchLocked(r *request, q *queue, in *sqsInput) (any, *APIError) {
	return s.handleBatchLocked(r, in, func(en handleEntry) *APIError {
		return s.changeVisibilityLocked1(q, en.ReceiptHandle, en.VisibilityTimeout)
	})
}

// receiveAttempt is what a FIFO receive with a ReceiveRequestAttemptId
// returned, for five minutes.
type receiveAttempt struct {
	serials []uint64
	handles []string
	expires time.Time
}

// recordAttemptLocked remembers a FIFO receive's messages under its
// ReceiveRequestAttemptId. s.mu held.
func (s *Server) recordAttemptLocked(q *queue, id string, msgs []messageOut, now time.Time) {
	if q.attempts == nil {
		q.attempts = map[string]*receiveAttempt{}
	}
	for k, a := range q.attempts {
		if !now.Before(a.expires) {
			delete(q.attempts, k)
		}
	}
	a := &receiveAttempt{expires: now.Add(sqsDedupWindow)}
	for _, m := range msgs {
		hm, _ := messageByHandleLocked(q, m.ReceiptHandle)
		if hm == nil {
			return
		}
		a.serials = append(a.serials, hm.serial)
		a.handles = append(a.handles, m.ReceiptHandle)
	}
	q.attempts[id] = a
}

// retriedReceiveLocked answers a FIFO receive retried with the same
// ReceiveRequestAttemptId within five minutes, while none of its messages
// was deleted, changed or received again: the same messages and receipt
// handles, with their visibility timeout started again (as AWS documents).
// nil, nil: not a retry. s.mu held.
func (s *Server) retriedReceiveLocked(q *queue, id string, p *receiveParams, now time.Time) ([]messageOut, *APIError) {
	a := q.attempts[id]
	if !q.fifo || id == "" || a == nil || !now.Before(a.expires) {
		return nil, nil
	}
	delete(q.attempts, id)
	var ms []*message
	for i, serial := range a.serials {
		m := q.live[serial]
		if m == nil || m.handle != a.handles[i] || m.visChanged {
			return nil, nil
		}
		ms = append(ms, m)
	}
	out := make([]messageOut, 0, len(ms))
	for _, m := range ms {
		m.visibleAt = now.Add(p.visibility)
		out = append(out, view(m, p))
	}
	q.attempts[id] = a
	return out, nil
}
