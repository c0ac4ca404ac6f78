package sim

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/courier-aws/courier/internal/check"
)

// scenario is one kind of workload.
type scenario interface {
	run(ctx context.Context, seed uint64) (check.Counts, []string)
}

// kinds are the workloads, picked by seed.
var kinds = []struct {
	name string
	s    scenario
}{
	{"oneway", queueScenario{kind: "oneway"}},
	{"competing", queueScenario{kind: "competing"}},
	{"fifo", queueScenario{kind: "fifo"}},
	{"request-response", reqRespScenario{}},
	{"fan-out", fanOutScenario{}},
	{"claim-check", claimScenario{}},
	{"scatter-gather", scatterScenario{}},
	{"heartbeat", heartbeatScenario{}},
}

func kindOf(seed uint64) (string, scenario) {
	k := kinds[seed%uint64(len(kinds))]
	return k.name, k.s
}

// settings reads the run's size: COURIER_SIM_SEED replays one scenario;
// COURIER_SIM_SCENARIOS sets how many (default 10,000; under the race
// detector, 35);
// COURIER_SIM_BASE fixes the base seed (default: from the clock, printed).
func settings(t *testing.T) (base uint64, n int) {
	if s := os.Getenv("COURIER_SIM_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("COURIER_SIM_SEED=%q: not a seed: %v", s, err)
		}
		return seed, 1
	}
	n = 10000
	if raceEnabled {
		// make test runs the 10,000 without -race in a step of their own;
		// under the race detector (each scenario about ten times slower) a
		// few dozen look for data races.
		n = 35
	}
	if testing.Short() {
		n = 500
	}
	if s := os.Getenv("COURIER_SIM_SCENARIOS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("COURIER_SIM_SCENARIOS=%q: want a positive count", s)
		}
		n = v
	}
	base = uint64(time.Now().UnixNano()) & (1<<40 - 1)
	if s := os.Getenv("COURIER_SIM_BASE"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("COURIER_SIM_BASE=%q: not a seed: %v", s, err)
		}
		base = v
	}
	return base, n
}

// TestSimulation runs the seeded scenarios, a shard per CPU, and prints
// SIM scenarios=<n> violations=<v> seed=<base>.
func TestSimulation(t *testing.T) {
	base, n := settings(t)
	t.Logf("base seed %d, %d scenarios (replay one: COURIER_SIM_SEED=<seed>)", base, n)
	var (
		mu         sync.Mutex
		ran        int
		violations []Violation
		perKind    = map[string]int{}
		totals     check.Counts
	)
	shards := min(runtime.GOMAXPROCS(0), n)
	t.Run("shards", func(t *testing.T) {
		for s := range shards {
			t.Run(fmt.Sprint("shard", s), func(t *testing.T) {
				t.Parallel()
				for i := s; i < n; i += shards {
					seed := Seed(base, i)
					name, sc := kindOf(seed)
					var counts check.Counts
					var vs []string
					synctest.Test(t, func(t *testing.T) {
						ctx, cancel := context.WithCancel(context.Background())
						defer cancel()
						counts, vs = sc.run(ctx, seed)
					})
					mu.Lock()
					ran++
					perKind[name]++
					totals.Sent += counts.Sent
					totals.Handled += counts.Handled
					totals.Duplicates += counts.Duplicates
					totals.Indeterminate += counts.Indeterminate
					totals.Dead += counts.Dead
					for _, v := range vs {
						violations = append(violations, Violation{Seed: seed, Scenario: name, What: v})
					}
					mu.Unlock()
					for _, v := range vs {
						t.Errorf("%s", Violation{Seed: seed, Scenario: name, What: v})
					}
				}
			})
		}
	})
	seeds := map[uint64]bool{}
	for _, v := range violations {
		seeds[v.Seed] = true
	}
	fmt.Printf("SIM scenarios=%d violations=%d seed=%d kinds=%v sent=%d handled=%d duplicates=%d indeterminate=%d dead=%d\n",
		ran, len(seeds), base, perKind, totals.Sent, totals.Handled, totals.Duplicates, totals.Indeterminate, totals.Dead)
}
