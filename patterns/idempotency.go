package patterns

import (
	"context"
	"crypto/rand"
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
	// Key returns the key of a message; default its SQS message id. Use
	// a business key (an order id in the body, a DeduplicationID) where
	// the same thing may come as different messages: sent twice, or
	// through two subscriptions.
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
// (see the package notes above Idempotent). It works the same under a
// Consumer and under the Lambda adapter.
func Idempotent(h Handler, store IdempotencyStore, o IdempotencyOptions) (Handler, error) {
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

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MemoryIdempotencyStore is an IdempotencyStore in memory: for one
// process, and tests. Safe for concurrent use.
type MemoryIdempotencyStore struct {
	mu   sync.Mutex
	recs map[string]memoryIdem
	now  func() time.Time
}

type memoryIdem struct {
	token     string
	completed bool
	until     time.Time // in progress until, or completed record's expiry
}

// NewMemoryIdempotencyStore returns an empty store.
func NewMemoryIdempotencyStore() *MemoryIdempotencyStore {
	return &MemoryIdempotencyStore{recs: map[string]memoryIdem{}, now: time.Now}
}

// Begin implements IdempotencyStore.
func (s *MemoryIdempotencyStore) Begin(_ context.Context, key, token string, until time.Time) (IdempotencyState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[key]; ok && s.now().Before(r.until) {
		if r.completed {
			return IdempotencyCompleted, nil
		}
		return IdempotencyInProgress, nil
	}
	s.recs[key] = memoryIdem{token: token, until: until}
	return IdempotencyStarted, nil
}

// Complete implements IdempotencyStore.
func (s *MemoryIdempotencyStore) Complete(_ context.Context, key, token string, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[key]; !ok || r.token != token {
		return errNotOwner
	}
	s.recs[key] = memoryIdem{token: token, completed: true, until: expires}
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
