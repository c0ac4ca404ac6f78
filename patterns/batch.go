package patterns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// entryFailure is one entry a batch call did not accept.
type entryFailure struct {
	Code        string
	SenderFault bool
	Message     string
}

// sentEntry is what SQS or SNS returned for an accepted entry.
type sentEntry struct{ ID, SequenceNumber string }

// batchSendFunc sends one batch (at most MaxBatchEntries messages). It
// returns, by index, what was accepted (in sent) and the failures; an entry
// that is neither accepted nor failed must be reported as failed. It does
// not write to msgs: a caller may have returned (its context ended) while
// its messages were in the request.
type batchSendFunc func(ctx context.Context, msgs []*Message, sent []sentEntry) (map[int]entryFailure, error)

// FailedEntry is a message that was not sent, and why.
type FailedEntry struct {
	Index       int // position in the slice given to Send
	Message     *Message
	Code        string // AWS error code, when SQS or SNS refused the entry
	SenderFault bool
	Err         error

	// refused: certainly not stored, so its claim-check object may go. SQS
	// or SNS refused the entry as the sender's fault, or no request carried
	// it. A failed request or a server-side entry failure is not certain.
	refused bool
}

// SendError reports the messages of one Send call that were not sent. The
// others were sent and have their ID set.
type SendError struct {
	Op       string
	Resource string
	Failed   []FailedEntry
}

func (e *SendError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "courier: %s %s: %d message(s) not sent", e.Op, e.Resource, len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-3)
			break
		}
		fmt.Fprintf(&b, "; [%d] %v", f.Index, f.Err)
	}
	return b.String()
}

// Unwrap returns the entries' errors, so errors.Is(err, ErrMessageTooLarge)
// tells whether any entry was too large.
func (e *SendError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// ErrGroupStopped marks the FIFO messages of a Send that were not sent
// because an earlier message of their group was not: sending them would
// break the group's order. Resend them after the failed one, in order.
var ErrGroupStopped = errors.New("courier: not sent: an earlier message of the same FIFO group was not sent")

// ErrSendAborted marks the messages of a Send that were not sent because
// another message of the same Send was refused before any request (it was
// invalid, or its claim-check upload failed): courier sends all of a Send
// or, when one is refused up front, none of it. Every message not sent is
// in the SendError, never only the one at fault.
var ErrSendAborted = errors.New("courier: not sent: another message of the same Send was refused before any request")

// abortRest returns failed plus an ErrSendAborted entry for every message
// of msgs that failed does not name: none of msgs was sent.
func abortRest(msgs []*Message, failed []FailedEntry) []FailedEntry {
	named := make(map[int]bool, len(failed))
	for _, f := range failed {
		named[f.Index] = true
	}
	for i, m := range msgs {
		if !named[i] {
			failed = append(failed, FailedEntry{Index: i, Message: m, Err: ErrSendAborted, refused: true})
		}
	}
	sortFailed(failed)
	return failed
}

// batcher coalesces the messages of concurrent Send calls into batches
// within the entry and byte limits (coalesce.go), sends them with bounded
// concurrency, retries the entries that failed for a transient reason
// (same entry, same ids), and reports the rest. For FIFO destinations a
// group's messages are sent in order, one request at a time.
type batcher struct {
	op, resource string
	maxMessage   int // per-message limit, bytes
	maxBatch     int // per-request payload limit, bytes
	concurrency  int
	retries      int
	backoff      time.Duration
	fifo         bool
	validate     func(*Message) error // destination-specific checks
	send         batchSendFunc
	claim        *ClaimCheck // offloads large bodies, when set
	tracer       Tracer
	metrics      Metrics

	q coalescer
}

func (b *batcher) sendAll(ctx context.Context, msgs []*Message) (err error) {
	if b.tracer != nil {
		var end func(error)
		ctx, end = b.tracer.StartSend(ctx, b.resource, msgs)
		defer func() { end(err) }()
	}
	if b.metrics != nil {
		start := time.Now()
		defer func() { recordSend(ctx, b.metrics, b.resource, len(msgs), start, err) }()
	}
	if b.claim != nil {
		return b.claim.sendThrough(ctx, b, msgs)
	}
	return b.sendDirect(ctx, msgs)
}

// sendDirect sends msgs as they are.
func (b *batcher) sendDirect(ctx context.Context, msgs []*Message) error {
	if err := b.validateAll(msgs); err != nil {
		return err
	}
	return b.sendValid(ctx, msgs)
}

// validateAll checks msgs before any request. Nothing is sent when any
// message is bad: the caller fixes the input and sends again, with no
// half-sent call to untangle.
func (b *batcher) validateAll(msgs []*Message) error {
	var failed []FailedEntry
	for i, m := range msgs {
		err := m.validate(b.maxMessage)
		if err == nil && b.validate != nil {
			err = b.validate(m)
		}
		if err != nil {
			failed = append(failed, FailedEntry{Index: i, Message: m, Err: err, refused: true})
		}
	}
	if len(failed) > 0 {
		return &SendError{Op: b.op, Resource: b.resource, Failed: abortRest(msgs, failed)}
	}
	return nil
}

// sendBatch sends one batch, resending the entries that failed for a
// transient reason (same entries, same ids, same order), and marks on each
// entry its outcome.
//
// FIFO: SQS and SNS may accept later entries of a group in the request in
// which an earlier one failed. A failed entry is resent only when no later
// entry of its group was accepted in the same request (it would land behind
// it); otherwise it is reported, and so is every later failed entry of its
// group (ErrGroupStopped), as finish then does with the group's messages
// waiting in the queue. Other groups' entries are still resent.
func (b *batcher) sendBatch(ctx context.Context, batch []*entry) {
	failAll := func(err error) {
		for _, e := range batch {
			e.failed, e.fe = true, FailedEntry{Index: e.i, Message: e.m, Err: opError(b.op, b.resource, err)}
		}
	}
	stopped := map[string]bool{} // FIFO groups with an entry not sent for good
	msgs := make([]*Message, 0, len(batch))
	sent := make([]sentEntry, len(batch))
	for attempt := 0; len(batch) > 0; attempt++ {
		if attempt > 0 {
			if err := sleepCtx(ctx, backoff(b.backoff, attempt-1)); err != nil {
				failAll(err)
				return
			}
		}
		msgs = msgs[:0]
		for _, e := range batch {
			msgs = append(msgs, e.m)
		}
		sent = sent[:len(batch)]
		failures, err := b.send(ctx, msgs, sent)
		if err != nil {
			// The SDK's retryer has already retried the request; its outcome
			// is unknown or refused, so no entry of it is reported sent.
			failAll(err)
			return
		}
		var lastSent map[string]int // FIFO: each group's last accepted entry
		if b.fifo && len(failures) > 0 {
			lastSent = map[string]int{}
			for i, e := range batch {
				if _, failed := failures[i]; !failed {
					lastSent[e.m.GroupID] = i
				}
			}
		}
		var retry []*entry
		for i, e := range batch {
			f, ok := failures[i]
			if !ok {
				e.id, e.seq = sent[i].ID, sent[i].SequenceNumber
				continue
			}
			fe := FailedEntry{Index: e.i, Message: e.m, Code: f.Code, SenderFault: f.SenderFault,
				Err: entryError(b.op, b.resource, f), refused: f.SenderFault}
			kind := ClassifyCode(f.Code)
			transient := kind == KindRetryable || kind == KindThrottled || (!f.SenderFault && kind == KindUnknown)
			if b.fifo {
				g := e.m.GroupID
				last, overtaken := lastSent[g]
				overtaken = overtaken && last > i
				switch {
				case stopped[g]:
					fe.Err = fmt.Errorf("%w; %w: group %q", fe.Err, ErrGroupStopped, g)
					e.failed, e.fe = true, fe
					continue
				case overtaken:
					fe.Err = fmt.Errorf("%w; not resent: a later message of group %q was accepted in the same request, and this one would land behind it", fe.Err, g)
					stopped[g] = true
					e.failed, e.fe = true, fe
					continue
				}
			}
			if transient && attempt < b.retries {
				retry = append(retry, e)
				continue
			}
			if b.fifo {
				stopped[e.m.GroupID] = true
			}
			e.failed, e.fe = true, fe
		}
		batch = retry
	}
}

func entryError(op, resource string, f entryFailure) error {
	err := fmt.Errorf("%s: %s", f.Code, f.Message)
	switch ClassifyCode(f.Code) {
	case KindThrottled:
		err = fmt.Errorf("%w: %s: %s", ErrThrottled, f.Code, f.Message)
	case KindNotFound:
		err = fmt.Errorf("%w: %s: %s", ErrNotFound, f.Code, f.Message)
	}
	return &OpError{Op: op, Resource: resource, Err: err}
}

// backoff returns the wait before retry attempt+1: exponential with full
// jitter, capped at 5 s.
func backoff(base time.Duration, attempt int) time.Duration {
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	d := base << min(attempt, 6)
	if d > 5*time.Second {
		d = 5 * time.Second
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func sortFailed(f []FailedEntry) {
	slices.SortFunc(f, func(a, b FailedEntry) int { return a.Index - b.Index })
}

func entryID(i int) string { return strconv.Itoa(i) }
