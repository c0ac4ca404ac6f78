// Package sim is courier's seeded fault simulation: scenarios of one-way
// messaging, competing consumers, FIFO groups, fan-out, request-response,
// scatter-gather, claim check and idempotent handlers run on the in-memory
// backend (memaws) inside testing/synctest bubbles, under faults drawn from
// a seed, and the total-queue checker (internal/check) says whether any
// promise broke.
//
// A scenario is a pure function of its seed: its shape (messages, senders,
// consumers, batch sizes, when a consumer dies) is drawn up front, and each
// fault is decided from the seed and the request's content (a send's
// bodies) or its place in one client's sequence of calls (the n-th receive
// of one consumer), never from a shared random stream, so the same seed
// meets the same faults whatever order goroutines ran in.
// COURIER_SIM_SEED=<seed> runs exactly that scenario again.
package sim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-aws/courier/memaws"
)

// Profile is how hostile a scenario's backend is: each field the chance
// of that fault per call (or per batch entry).
type Profile struct {
	Throttle     float64 // the request is refused (throttling)
	ServerError  float64 // the request fails with a 500
	EntryFail    float64 // one batch entry fails (transient, receiver fault)
	EntryRefuse  float64 // one batch entry is refused (sender fault: definite)
	LoseResponse float64 // the call takes effect and its response is lost
	Delay        float64 // the call is slow (up to MaxDelay)
	Hang         float64 // the call hangs until its deadline
	Duplicate    float64 // a receive on a standard queue delivers twice
	MaxDelay     time.Duration
}

// draw picks a profile from r: some scenarios calm, most hostile.
func draw(r *rand.Rand) Profile {
	if r.IntN(8) == 0 {
		return Profile{}
	}
	f := func(max float64) float64 { return r.Float64() * max }
	return Profile{
		Throttle:     f(0.15),
		ServerError:  f(0.1),
		EntryFail:    f(0.2),
		EntryRefuse:  f(0.05),
		LoseResponse: f(0.15),
		Delay:        f(0.2),
		Hang:         f(0.05),
		Duplicate:    f(0.2),
		MaxDelay:     time.Duration(1+r.IntN(40)) * time.Second,
	}
}

// Injector is one client's faults: a memaws.Injector that decides each
// call from the seed and the call, and can be made quiet (no more faults,
// the end of a scenario) or dead (every call hangs: the process crashed).
type Injector struct {
	seed    uint64
	name    string
	prof    Profile
	quiet   *atomic.Bool
	dead    atomic.Bool
	mu      sync.Mutex
	counter map[string]uint64
	// Injected counts the faults injected, by kind.
	Injected map[string]int
}

// NewInjector returns the injector of the client called name.
func NewInjector(seed uint64, name string, prof Profile, quiet *atomic.Bool) *Injector {
	return &Injector{seed: seed, name: name, prof: prof, quiet: quiet, counter: map[string]uint64{}, Injected: map[string]int{}}
}

// Kill makes every later call of the client hang until its deadline.
func (in *Injector) Kill() { in.dead.Store(true) }

// Dead reports whether Kill was called.
func (in *Injector) Dead() bool { return in.dead.Load() }

// traceCalls names operations to print as they reach the backend
// (COURIER_SIM_TRACE=ChangeMessageVisibilityBatch,...), for a replayed seed.
var traceCalls = os.Getenv("COURIER_SIM_TRACE")

// randomKeys are the claim check's random object keys in a pointer body:
// left out of a request's content, so that a seed replays.
var randomKeys = regexp.MustCompile(`s3Key\\?":\\?"[0-9a-f]{32}`)

// contentKeyed are the operations whose request names the messages it
// carries: their faults follow the content.
var contentKeyed = map[string]bool{"SendMessage": true, "SendMessageBatch": true, "Publish": true, "PublishBatch": true, "PutObject": true}

// Inject implements memaws.Injector.
func (in *Injector) Inject(c memaws.Call) memaws.Fault {
	if traceCalls != "" && strings.Contains(traceCalls, c.Operation) {
		fmt.Fprintf(os.Stderr, "CALL %s %s attempt=%d %.300s\n", in.name, c.Operation, c.Attempt, c.Body)
	}
	if in.dead.Load() {
		return memaws.Fault{Hang: true}
	}
	if in.quiet != nil && in.quiet.Load() {
		return memaws.Fault{}
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], in.seed)
	h.Write(b[:])
	h.Write([]byte(in.name + "\x00" + c.Operation + "\x00" + strconv.Itoa(c.Attempt) + "\x00"))
	if contentKeyed[c.Operation] {
		h.Write(randomKeys.ReplaceAll(c.Body, nil))
	} else {
		in.mu.Lock()
		n := in.counter[c.Operation]
		in.counter[c.Operation] = n + 1
		in.mu.Unlock()
		binary.LittleEndian.PutUint64(b[:], n)
		h.Write(b[:])
	}
	r := rand.New(rand.NewPCG(h.Sum64(), in.seed))
	// A sender-fault refusal is a property of the entry, as on AWS: the
	// same request refuses the same entries on every attempt (else a
	// retry could refuse an entry that the lost first attempt stored).
	stable := fnv.New64a()
	stable.Write([]byte(in.name + "\x00" + c.Operation + "\x00"))
	stable.Write(c.Body)
	refuse := rand.New(rand.NewPCG(stable.Sum64(), in.seed))
	p := in.prof
	var f memaws.Fault
	hit := func(kind string, prob float64) bool {
		if r.Float64() < prob {
			in.mu.Lock()
			in.Injected[kind]++
			in.mu.Unlock()
			return true
		}
		return false
	}
	switch {
	case hit("hang", p.Hang):
		f.Hang = true
		return f
	case hit("throttle", p.Throttle):
		f.Err = memaws.Throttled(c.Service)
		return f
	case hit("500", p.ServerError):
		f.Err = memaws.InternalError()
		return f
	}
	if p.MaxDelay > 0 && hit("delay", p.Delay) {
		f.Delay = time.Duration(r.Int64N(int64(p.MaxDelay)))
	}
	for i := range c.Entries {
		refused := refuse.Float64() < p.EntryRefuse
		switch {
		case refused:
			if f.FailEntries == nil {
				f.FailEntries = map[int]memaws.EntryError{}
			}
			in.mu.Lock()
			in.Injected["entry-refuse"]++
			in.mu.Unlock()
			f.FailEntries[i] = memaws.EntryError{Code: "InvalidParameterValue", Message: "injected", SenderFault: true}
		case hit("entry-fail", p.EntryFail):
			if f.FailEntries == nil {
				f.FailEntries = map[int]memaws.EntryError{}
			}
			f.FailEntries[i] = memaws.EntryError{Code: "InternalError", Message: "injected", SenderFault: false}
		}
	}
	if c.Operation == "ReceiveMessage" && hit("duplicate", p.Duplicate) {
		f.Duplicate = true
	}
	if hit("lose", p.LoseResponse) {
		f.LoseResponse = true
	}
	return f
}

// Seed of scenario i of a run whose base seed is base.
func Seed(base uint64, i int) uint64 { return base + uint64(i) }

// Shape returns the random source of a scenario's shape.
func Shape(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// Violation is a broken promise in one scenario.
type Violation struct {
	Seed     uint64
	Scenario string
	What     string
}

func (v Violation) String() string {
	return fmt.Sprintf("seed=%d %s: %s (replay: COURIER_SIM_SEED=%d)", v.Seed, v.Scenario, v.What, v.Seed)
}

// findings collects one scenario's broken promises, from any goroutine.
type findings struct {
	mu   sync.Mutex
	list []string
}

func (f *findings) add(format string, a ...any) {
	f.mu.Lock()
	f.list = append(f.list, fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

func (f *findings) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.list...)
}
