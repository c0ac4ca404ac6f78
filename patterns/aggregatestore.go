package patterns

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultAggregateTTL is how long a store keeps an aggregate after it was
// opened: responses that come later are Unknown rather than Late.
const DefaultAggregateTTL = 24 * time.Hour

// DefaultMaxAggregates is the default cap of a MemoryAggregateStore.
const DefaultMaxAggregates = 10_000

// MemoryAggregateStore is an AggregateStore in memory, for a scatterer,
// aggregator and processor in one process. Aggregates are dropped TTL
// after they were opened (O(log n) each, as they come due), and there are
// at most MaxAggregates of them: at the cap, the processed aggregates go
// first, oldest processed first (a response that comes for one later is
// then Unknown rather than Late; with AggregatorOptions.Default it would
// open a new aggregate); when every aggregate is still open or not yet
// processed, Open, and Add of a response that would open one, fail with
// ErrStoreFull, and nothing in progress is dropped. Safe for concurrent
// use.
type MemoryAggregateStore struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu        sync.Mutex
	aggs      map[string]*memoryAggregate
	exp       expiryHeap
	gen       uint64
	processed []string // correlation ids in the order they were processed; may hold stale ones
}

type memoryAggregate struct {
	a       Aggregate
	keys    map[string]string // response key -> message id
	expires time.Time
	gen     uint64
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
	// MaxAggregates caps the aggregates a MemoryAggregateStore holds;
	// default DefaultMaxAggregates. DynamoDB stores ignore it.
	MaxAggregates int
}

func newAggregateStoreOptions(optFns []func(*AggregateStoreOptions)) (AggregateStoreOptions, error) {
	o := AggregateStoreOptions{TTL: DefaultAggregateTTL, PartitionKey: "pk", TTLAttribute: "expiresAt", MaxAggregates: DefaultMaxAggregates}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.TTL < time.Second || o.PartitionKey == "" || o.TTLAttribute == "" || o.PartitionKey == o.TTLAttribute || o.MaxAggregates < 1 {
		return o, fmt.Errorf("%w: aggregate store options %+v", ErrInvalidConfig, o)
	}
	return o, nil
}

// NewMemoryAggregateStore returns an empty store; of the options TTL and
// MaxAggregates apply.
func NewMemoryAggregateStore(optFns ...func(*AggregateStoreOptions)) (*MemoryAggregateStore, error) {
	o, err := newAggregateStoreOptions(optFns)
	if err != nil {
		return nil, err
	}
	return &MemoryAggregateStore{ttl: o.TTL, max: o.MaxAggregates, now: time.Now, aggs: map[string]*memoryAggregate{}}, nil
}

// Len returns how many aggregates the store holds.
func (s *MemoryAggregateStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	return len(s.aggs)
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

// purge drops the aggregates that have expired. s.mu is held.
func (s *MemoryAggregateStore) purge() {
	s.exp.due(s.now(), func(cid string, gen uint64) {
		if m := s.aggs[cid]; m != nil && m.gen == gen {
			delete(s.aggs, cid)
		}
	})
}

// insert adds a new aggregate, making room at the cap by dropping the
// oldest processed ones; with none to drop it fails. s.mu is held.
func (s *MemoryAggregateStore) insert(a *Aggregate) (*memoryAggregate, error) {
	s.purge()
	for len(s.aggs) >= s.max && len(s.processed) > 0 {
		cid := s.processed[0]
		s.processed = s.processed[1:]
		if m := s.aggs[cid]; m != nil && m.a.Processed {
			delete(s.aggs, cid)
		}
	}
	if len(s.aggs) >= s.max {
		return nil, fmt.Errorf("%w: %d aggregates, none expired or processed (MaxAggregates %d)", ErrStoreFull, len(s.aggs), s.max)
	}
	c := Aggregate{CorrelationID: a.CorrelationID, Expected: slices.Clone(a.Expected), Quorum: a.Quorum, Deadline: a.Deadline, OpenedAt: a.OpenedAt}
	s.gen++
	m := &memoryAggregate{a: c, keys: map[string]string{}, expires: a.OpenedAt.Add(s.ttl), gen: s.gen}
	s.aggs[a.CorrelationID] = m
	heap.Push(&s.exp, expiryEntry{at: m.expires, key: a.CorrelationID, gen: m.gen})
	if len(s.exp) > 2*len(s.aggs)+64 {
		s.exp = s.exp[:0]
		for cid, m := range s.aggs {
			s.exp = append(s.exp, expiryEntry{at: m.expires, key: cid, gen: m.gen})
		}
		heap.Init(&s.exp)
	}
	return m, nil
}

// Open implements AggregateStore. At the cap it fails with ErrStoreFull.
func (s *MemoryAggregateStore) Open(_ context.Context, a *Aggregate) error {
	if err := checkOpen(a); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.get(a.CorrelationID) != nil {
		return fmt.Errorf("%w: %s", ErrAggregateExists, a.CorrelationID)
	}
	_, err := s.insert(a)
	return err
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
		var err error
		if m, err = s.insert(&open); err != nil {
			return AddResult{}, err
		}
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
	if m := s.get(cid); m != nil && !m.a.Processed {
		m.a.Processed = true
		s.processed = append(s.processed, cid)
		if len(s.processed) > 2*len(s.aggs)+64 {
			// Mostly ids of aggregates expired since: keep the live ones.
			s.processed = slices.DeleteFunc(s.processed, func(cid string) bool { return s.aggs[cid] == nil })
		}
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
