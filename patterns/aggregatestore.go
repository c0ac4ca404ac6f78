package patterns

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultAggregateTTL is how long a store keeps an aggregate after it was
// opened: responses that come later are Unknown rather than Late.
const DefaultAggregateTTL = 24 * time.Hour

// MemoryAggregateStore is an AggregateStore in memory, for a scatterer,
// aggregator and processor in one process. Aggregates are dropped TTL
// after they were opened. Safe for concurrent use.
type MemoryAggregateStore struct {
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	aggs      map[string]*memoryAggregate
	lastPurge time.Time
}

type memoryAggregate struct {
	a       Aggregate
	keys    map[string]string // response key -> message id
	expires time.Time
}

// AggregateStoreOptions configures an aggregate store.
type AggregateStoreOptions struct {
	// TTL is how long an aggregate is kept after it was opened; default
	// DefaultAggregateTTL. Make it longer than any deadline and than the
	// time a late response may take.
	TTL time.Duration
	// PartitionKey and TTLAttribute name the DynamoDB table's partition
	// key (a string) and TTL attribute; default "pk" and "expiresAt".
	PartitionKey, TTLAttribute string
}

func newAggregateStoreOptions(optFns []func(*AggregateStoreOptions)) (AggregateStoreOptions, error) {
	o := AggregateStoreOptions{TTL: DefaultAggregateTTL, PartitionKey: "pk", TTLAttribute: "expiresAt"}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.TTL < time.Second || o.PartitionKey == "" || o.TTLAttribute == "" || o.PartitionKey == o.TTLAttribute {
		return o, fmt.Errorf("%w: aggregate store options %+v", ErrInvalidConfig, o)
	}
	return o, nil
}

// NewMemoryAggregateStore returns an empty store; of the options only TTL
// applies.
func NewMemoryAggregateStore(optFns ...func(*AggregateStoreOptions)) (*MemoryAggregateStore, error) {
	o, err := newAggregateStoreOptions(optFns)
	if err != nil {
		return nil, err
	}
	return &MemoryAggregateStore{ttl: o.TTL, now: time.Now, aggs: map[string]*memoryAggregate{}}, nil
}

// get returns the live aggregate cid, or nil. s.mu is held.
func (s *MemoryAggregateStore) get(cid string) *memoryAggregate {
	m := s.aggs[cid]
	if m != nil && !s.now().Before(m.expires) {
		delete(s.aggs, cid)
		return nil
	}
	return m
}

// purge drops expired aggregates, at most once a minute. s.mu is held.
func (s *MemoryAggregateStore) purge() {
	now := s.now()
	if now.Sub(s.lastPurge) < time.Minute {
		return
	}
	s.lastPurge = now
	for cid, m := range s.aggs {
		if !now.Before(m.expires) {
			delete(s.aggs, cid)
		}
	}
}

// Open implements AggregateStore.
func (s *MemoryAggregateStore) Open(_ context.Context, a *Aggregate) error {
	if err := checkOpen(a); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	if s.get(a.CorrelationID) != nil {
		return fmt.Errorf("%w: %s", ErrAggregateExists, a.CorrelationID)
	}
	s.aggs[a.CorrelationID] = s.newAggregate(a)
	return nil
}

func (s *MemoryAggregateStore) newAggregate(a *Aggregate) *memoryAggregate {
	c := Aggregate{CorrelationID: a.CorrelationID, Expected: slices.Clone(a.Expected), Quorum: a.Quorum, Deadline: a.Deadline, OpenedAt: a.OpenedAt}
	return &memoryAggregate{a: c, keys: map[string]string{}, expires: a.OpenedAt.Add(s.ttl)}
}

func checkOpen(a *Aggregate) error {
	switch {
	case a == nil || a.CorrelationID == "":
		return fmt.Errorf("%w: an aggregate needs a correlation id", ErrInvalidConfig)
	case a.OpenedAt.IsZero():
		return fmt.Errorf("%w: aggregate %s has no OpenedAt", ErrInvalidConfig, a.CorrelationID)
	}
	return nil
}

// Add implements AggregateStore.
func (s *MemoryAggregateStore) Add(_ context.Context, cid string, r Response, implicit *Aggregate) (AddResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.get(cid)
	if m == nil {
		if implicit == nil {
			return AddResult{Outcome: Unknown}, nil
		}
		open := *implicit
		open.CorrelationID = cid
		if err := checkOpen(&open); err != nil {
			return AddResult{}, err
		}
		s.purge()
		m = s.newAggregate(&open)
		s.aggs[cid] = m
	}
	k := r.key()
	if id, ok := m.keys[k]; ok && id == r.MessageID {
		return AddResult{Outcome: AlreadyAdded, Aggregate: m.snapshot()}, nil
	}
	switch {
	case m.a.Complete():
		return AddResult{Outcome: Late, Aggregate: m.snapshot()}, nil
	case !m.a.Deadline.IsZero() && !r.ReceivedAt.Before(m.a.Deadline):
		// After the deadline, before the aggregate was completed by it.
		return AddResult{Outcome: Late, Aggregate: m.snapshot()}, nil
	case m.keys[k] != "":
		return AddResult{Outcome: Duplicate}, nil
	}
	m.keys[k] = r.MessageID
	r.Body = slices.Clone(r.Body)
	m.a.Responses = append(m.a.Responses, r)
	return AddResult{Outcome: Added, Aggregate: m.snapshot()}, nil
}

// snapshot is a copy the caller may keep.
func (m *memoryAggregate) snapshot() *Aggregate {
	c := m.a
	c.Expected = slices.Clone(m.a.Expected)
	c.Responses = slices.Clone(m.a.Responses)
	c.Missing = slices.Clone(m.a.Missing)
	return &c
}

// Complete implements AggregateStore.
func (s *MemoryAggregateStore) Complete(_ context.Context, cid string, reason CompletionReason, by string, at time.Time) (*Aggregate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.get(cid)
	switch {
	case m == nil:
		return nil, nil
	case m.a.Complete():
		if m.a.CompletedBy != by || m.a.Processed {
			return nil, nil
		}
	default:
		m.a.CompletedAt, m.a.Reason, m.a.CompletedBy = at, reason, by
		m.a.Missing = m.a.missing()
	}
	return m.snapshot(), nil
}

// MarkProcessed implements AggregateStore.
func (s *MemoryAggregateStore) MarkProcessed(_ context.Context, cid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.get(cid); m != nil {
		m.a.Processed = true
	}
	return nil
}

// Get implements AggregateStore.
func (s *MemoryAggregateStore) Get(_ context.Context, cid string) (*Aggregate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.get(cid); m != nil {
		return m.snapshot(), nil
	}
	return nil, nil
}
