package patterns

import (
	"container/heap"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Idempotent handlers: SQS delivers at least once (a visibility timeout
// that expires before the delete, a duplicate send, a standard queue's
// rare second copy), so a handler with a side effect that must happen once
// records, per message key, that it is running and then that it is done:
//
//   - no record (or an expired one): the handler runs, under an
//     in-progress record that expires after InProgressTTL;
//   - in progress (another delivery is running it now): this delivery
//     fails with ErrIdempotencyInProgress, a retryable error, and SQS
//     delivers it again later;
//   - completed: the handler is not run again and the message is
//     acknowledged;
//   - the handler failed: the record is removed, so a redelivery runs it;
//   - the process died while the handler ran: the in-progress record
//     expires and a later delivery runs it.
//
// Records are kept in an IdempotencyStore: MemoryIdempotencyStore (one
// process; tests) or DynamoDBIdempotencyStore (conditional writes, TTL),
// shared by every consumer and Lambda invocation of the queue.

// ErrIdempotencyInProgress: another delivery of the same message (same
// key) is being handled right now. Retryable: the message is left for SQS
// to deliver again.
var ErrIdempotencyInProgress = errors.New("courier: idempotency: the same message is being handled by another delivery")

// errNotOwner: Complete or Release by a delivery whose claim expired and
// was taken over.
var errNotOwner = errors.New("courier: idempotency: the record is no longer this delivery's (its in-progress time ran out)")

// IdempotencyState is what a store found when a delivery began.
type IdempotencyState int

const (
	// IdempotencyStarted: no live record; this delivery owns the key.
	IdempotencyStarted IdempotencyState = iota
	// IdempotencyInProgress: another delivery owns the key.
	IdempotencyInProgress
	// IdempotencyCompleted: the handler succeeded before.
	IdempotencyCompleted
)

func (s IdempotencyState) String() string {
	return [...]string{"started", "in progress", "completed"}[s]
}

// IdempotencyStore keeps the records of idempotent handlers. Each method
// is atomic with respect to the others on the same key.
type IdempotencyStore interface {
	// Begin claims key for the delivery identified by token, until
	// inProgressUntil, unless a live record is there (in progress and
	// not past its inProgressUntil, or completed and not expired).
	Begin(ctx context.Context, key, token string, inProgressUntil time.Time) (IdempotencyState, error)
	// Complete marks key completed, kept until expires, if token still
	// owns it.
	Complete(ctx context.Context, key, token string, expires time.Time) error
	// Release removes key's record if token still owns it.
	Release(ctx context.Context, key, token string) error
}

// IdempotencyOptions shapes Idempotent.
type IdempotencyOptions struct {
	// Key returns the key of a message; default its SQS message id.
	//
	// The message id guards against SQS delivering one message twice, and
	// nothing else: a message sent twice (a producer that retried a send
	// whose answer it did not get, a user who clicked twice, one event
	// through two subscriptions) has two ids, and the handler runs twice.
	// Key such messages by what makes them the same: a business key (an
	// order id in the body or an attribute), DeduplicationKey (FIFO queues:
	// the deduplication id the sender set, or SQS's content hash), or
	// BodyHashKey (the same body is the same thing).
	Key func(m *Message) (string, error)
	// InProgressTTL bounds how long a delivery owns its key: after it a
	// crashed delivery's message runs again. Default: until the handler's
	// context deadline plus 5 s where it has one (a Lambda invocation),
	// else 5 minutes. Make it longer than the handler ever takes.
	InProgressTTL time.Duration
	// RecordTTL is how long a completed record is kept; default an hour.
	// Deliveries after that run the handler again.
	RecordTTL time.Duration
	Logger    *slog.Logger
}

// Idempotent wraps h so that its side effects happen once per message key
// (see the package notes above Idempotent); optFns set its
// IdempotencyOptions. It works the same under a Consumer and under the
// Lambda adapter.
func Idempotent(h Handler, store IdempotencyStore, optFns ...func(*IdempotencyOptions)) (Handler, error) {
	var o IdempotencyOptions
	for _, fn := range optFns {
		fn(&o)
	}
	switch {
	case h == nil:
		return nil, fmt.Errorf("%w: Idempotent: nil handler", ErrInvalidConfig)
	case store == nil:
		return nil, fmt.Errorf("%w: Idempotent: nil store", ErrInvalidConfig)
	case o.InProgressTTL < 0 || o.RecordTTL < 0:
		return nil, fmt.Errorf("%w: Idempotent: negative TTL", ErrInvalidConfig)
	}
	if o.RecordTTL == 0 {
		o.RecordTTL = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Key == nil {
		o.Key = func(m *Message) (string, error) {
			if m.ID == "" {
				return "", fmt.Errorf("%w: idempotency: the message has no id to key it by", ErrMalformedMessage)
			}
			return m.ID, nil
		}
	}
	return func(ctx context.Context, m *Message) (err error) {
		key, err := o.Key(m)
		if err != nil {
			return err
		}
		if key == "" {
			return fmt.Errorf("%w: idempotency: empty key for message %s", ErrMalformedMessage, m.ID)
		}
		now := time.Now()
		until := now.Add(5 * time.Minute)
		switch d, ok := ctx.Deadline(); {
		case o.InProgressTTL > 0:
			until = now.Add(o.InProgressTTL)
		case ok:
			until = d.Add(5 * time.Second)
		}
		token := newToken()
		state, err := store.Begin(ctx, key, token, until)
		if err != nil {
			return fmt.Errorf("courier: idempotency: begin %s: %w", key, err)
		}
		switch state {
		case IdempotencyCompleted:
			o.Logger.InfoContext(ctx, "courier: already handled; skipped", "key", key, "message_id", m.ID)
			return nil
		case IdempotencyInProgress:
			return fmt.Errorf("%w (key %s)", ErrIdempotencyInProgress, key)
		}
		done := false
		defer func() {
			if done {
				return
			}
			// The handler failed or panicked: let a redelivery run it.
			rctx := context.WithoutCancel(ctx)
			if rerr := store.Release(rctx, key, token); rerr != nil {
				o.Logger.WarnContext(ctx, "courier: idempotency record not released; it expires", "key", key, "until", until, "err", rerr)
			}
		}()
		if err := h(ctx, m); err != nil {
			return err
		}
		done = true
		if cerr := store.Complete(context.WithoutCancel(ctx), key, token, time.Now().Add(o.RecordTTL)); cerr != nil {
			// The side effect happened: acknowledge. A redelivery before
			// the in-progress record expires is refused; after, it would
			// run again, which is why this is logged loudly.
			o.Logger.ErrorContext(ctx, "courier: handled, but the idempotency record was not completed", "key", key, "err", cerr)
		}
		return nil
	}, nil
}

// DeduplicationKey is an IdempotencyOptions.Key: the message's
// DeduplicationID, so that sends of the same thing with the same
// deduplication id run the handler once even beyond SQS's five-minute
// deduplication window (a producer's retry an hour later). FIFO queues
// only: a message with no deduplication id (any standard queue's) fails
// with ErrMalformedMessage.
func DeduplicationKey(m *Message) (string, error) {
	if m.DeduplicationID == "" {
		return "", fmt.Errorf("%w: idempotency: message %s has no deduplication id to key it by (a standard queue's?)", ErrMalformedMessage, m.ID)
	}
	return "dedup:" + m.DeduplicationID, nil
}

// BodyHashKey is an IdempotencyOptions.Key: the SHA-256 of the body, so
// that a body sent twice (as two messages) runs the handler once, on
// any queue. Two messages that differ only in their attributes count as
// the same; give each send something unique in its body if they are not.
func BodyHashKey(m *Message) (string, error) {
	sum := sha256.Sum256(m.Body)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrStoreFull: a memory store holds as many records as it may (its cap)
// and none of them has expired, so it takes no new one. Nothing it holds
// is dropped to make room; the new work fails (a handler's message stays
// on the queue and SQS delivers it again later).
var ErrStoreFull = errors.New("courier: store full")

// DefaultMaxIdempotencyRecords is the default cap of a
// MemoryIdempotencyStore: at about 150 bytes a record, some 15 MB.
const DefaultMaxIdempotencyRecords = 100_000

// MemoryIdempotencyStoreOptions shapes a MemoryIdempotencyStore.
type MemoryIdempotencyStoreOptions struct {
	// MaxRecords caps the records held, in progress and completed; 0
	// means DefaultMaxIdempotencyRecords (less is refused). Expired records are
	// dropped as they come due; at the cap, Begin of a new key fails with
	// ErrStoreFull rather than forget a record (forgetting a completed
	// one would let its duplicate run again). Make it larger than the
	// messages one process handles within RecordTTL.
	MaxRecords int
}

// MemoryIdempotencyStore is an IdempotencyStore in memory: for one
// process, and tests. Records are dropped when they expire (an in-progress
// record at its inProgressUntil, a completed one at its expiry), in
// O(log n) each as they come due, and there are at most MaxRecords of
// them. Safe for concurrent use.
type MemoryIdempotencyStore struct {
	mu   sync.Mutex
	recs map[string]memoryIdem
	exp  expiryHeap
	gen  uint64
	max  int
	now  func() time.Time
}

type memoryIdem struct {
	token     string
	completed bool
	until     time.Time // in progress until, or completed record's expiry
	gen       uint64    // of its entry in exp
}

// NewMemoryIdempotencyStore returns an empty store. MaxRecords below 0 is
// an error; 0 takes DefaultMaxIdempotencyRecords.
func NewMemoryIdempotencyStore(optFns ...func(*MemoryIdempotencyStoreOptions)) (*MemoryIdempotencyStore, error) {
	var o MemoryIdempotencyStoreOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if o.MaxRecords < 0 {
		return nil, fmt.Errorf("%w: MaxRecords %d < 0", ErrInvalidConfig, o.MaxRecords)
	}
	if o.MaxRecords == 0 {
		o.MaxRecords = DefaultMaxIdempotencyRecords
	}
	return &MemoryIdempotencyStore{recs: map[string]memoryIdem{}, max: o.MaxRecords, now: time.Now}, nil
}

// Len returns how many records the store holds.
func (s *MemoryIdempotencyStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	return len(s.recs)
}

// put sets key's record and files its expiry. s.mu is held.
func (s *MemoryIdempotencyStore) put(key string, r memoryIdem) {
	s.gen++
	r.gen = s.gen
	s.recs[key] = r
	heap.Push(&s.exp, expiryEntry{at: r.until, key: key, gen: r.gen})
	if len(s.exp) > 2*len(s.recs)+64 {
		// Mostly stale entries (records released or completed since):
		// rebuild, O(n) once per n puts.
		s.exp = s.exp[:0]
		for k, r := range s.recs {
			s.exp = append(s.exp, expiryEntry{at: r.until, key: k, gen: r.gen})
		}
		heap.Init(&s.exp)
	}
}

// purge drops the records that have expired. s.mu is held.
func (s *MemoryIdempotencyStore) purge() {
	s.exp.due(s.now(), func(key string, gen uint64) {
		if r, ok := s.recs[key]; ok && r.gen == gen {
			delete(s.recs, key)
		}
	})
}

// Begin implements IdempotencyStore. At the cap it fails with
// ErrStoreFull.
func (s *MemoryIdempotencyStore) Begin(_ context.Context, key, token string, until time.Time) (IdempotencyState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	if r, ok := s.recs[key]; ok && s.now().Before(r.until) {
		if r.completed {
			return IdempotencyCompleted, nil
		}
		return IdempotencyInProgress, nil
	}
	if _, ok := s.recs[key]; !ok && len(s.recs) >= s.max {
		return 0, fmt.Errorf("%w: %d idempotency records, none expired (MaxRecords %d)", ErrStoreFull, len(s.recs), s.max)
	}
	s.put(key, memoryIdem{token: token, until: until})
	return IdempotencyStarted, nil
}

// Complete implements IdempotencyStore.
func (s *MemoryIdempotencyStore) Complete(_ context.Context, key, token string, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[key]; !ok || r.token != token {
		return errNotOwner
	}
	s.put(key, memoryIdem{token: token, completed: true, until: expires})
	return nil
}

// Release implements IdempotencyStore.
func (s *MemoryIdempotencyStore) Release(_ context.Context, key, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[key]; !ok || r.token != token {
		return errNotOwner
	}
	delete(s.recs, key)
	return nil
}

// expiryHeap orders a memory store's keys by expiry, so that expired
// records are dropped as they come due, O(log n) each, with no scan of
// the whole store. An entry is stale once its key's record was replaced
// or removed (its gen differs); popping skips it.
type expiryHeap []expiryEntry

type expiryEntry struct {
	at  time.Time
	key string
	gen uint64
}

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// due pops every entry due at now and hands it to drop.
func (h *expiryHeap) due(now time.Time, drop func(key string, gen uint64)) {
	for len(*h) > 0 && !now.Before((*h)[0].at) {
		e := heap.Pop(h).(expiryEntry)
		drop(e.key, e.gen)
	}
}
