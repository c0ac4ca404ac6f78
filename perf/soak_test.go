package perf

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/internal/check"
	"github.com/courier-aws/courier/patterns"
)

// The soak (make soak, not make test): COURIER_SOAK_MESSAGES (default
// 100,000) messages reported sent through LocalStack, half one-way and
// half FIFO, while the fault suite's schedule (latency, resets, stalls,
// the endpoint down) runs over and over, one request in throttleEvery is
// refused with ThrottlingException, and the consumers, child processes of
// several Consumers each, are killed with SIGKILL (one every 15-30 s) and
// started again, until every message is handled. The total-queue
// checker then holds the run to courier's promises: nothing reported sent
// is lost, nothing unexpected appears, FIFO groups keep their order, and
// duplicates stay within the in-flight bound. Duplicates are of two kinds,
// told apart by message id: a redelivery (one SQS message handled twice:
// a killed consumer's in-flight messages, a delete that failed), bounded by
// what the killed consumers had in flight plus the deletes they reported
// failed; and a send duplicate (a retried send whose first attempt was
// stored though its answer was lost: two messages, one body), which
// at-least-once allows on a standard queue and FIFO deduplication removes.

const (
	throttleEvery  = 20 // one attempt in 20 throttled
	soakVisibility = 10 * time.Second
	soakWorkers    = 10
	soakInFlight   = 20 // each Consumer's MaxInFlight
	soakProcesses  = 2  // consumer processes at a time
	soakConsumers  = 3  // Consumers in each (one receive loop each)
	// What a killed process may have handled and not yet deleted: each
	// Consumer's in-flight messages, plus finished ones in its acker's open
	// batch and in the (at most four) delete requests under way.
	perKillBound = soakConsumers * (soakInFlight + 5*patterns.MaxBatchEntries)
)

// soakResult is one scenario's line in bench/soak.json.
type soakResult struct {
	Scenario       string  `json:"scenario"`
	Sent           int     `json:"sent"`
	Indeterminate  int     `json:"indeterminate"`
	Handled        int     `json:"handled"`
	Duplicates     int     `json:"duplicates"`
	Redeliveries   int     `json:"redeliveries"`
	SendDuplicates int     `json:"send_duplicates"`
	DuplicateBound int     `json:"redelivery_bound"`
	Unexpected     int     `json:"unexpected"`
	Lost           int     `json:"lost"`
	Kills          int     `json:"kills"`
	DeleteErrors   int     `json:"delete_errors"`
	FaultCycles    int     `json:"fault_cycles"`
	Attempts       int64   `json:"attempts"`
	FailedAttempts int64   `json:"failed_attempts"`
	Throttled      int64   `json:"throttled"`
	Seconds        float64 `json:"seconds"`
	// Violations: the checker's findings (each cut to 300 characters).
	Violations []string `json:"violations,omitempty"`
}

func (r soakResult) line() string {
	return fmt.Sprintf("SOAK %s sent=%d indeterminate=%d handled=%d lost=%d unexpected=%d violations=%d duplicates=%d redeliveries=%d redelivery_bound=%d send_duplicates=%d kills=%d delete_errors=%d fault_cycles=%d attempts=%d failed_attempts=%d throttled=%d seconds=%.0f",
		r.Scenario, r.Sent, r.Indeterminate, r.Handled, r.Lost, r.Unexpected, len(r.Violations), r.Duplicates, r.Redeliveries, r.DuplicateBound, r.SendDuplicates, r.Kills, r.DeleteErrors, r.FaultCycles, r.Attempts, r.FailedAttempts, r.Throttled, r.Seconds)
}

func TestSoak(t *testing.T) {
	if os.Getenv("COURIER_SOAK") != "1" {
		t.Skip("the soak runs with COURIER_SOAK=1 (make soak): 100,000 messages under faults, about 7 minutes")
	}
	name := os.Getenv("COURIER_SOAK_BACKEND")
	if name == "" {
		name = "localstack"
	}
	b := backend.Require(t, name)
	b.NeedSocket(t)
	total := 100_000
	if s := os.Getenv("COURIER_SOAK_MESSAGES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("COURIER_SOAK_MESSAGES=%q: want a number >= 2", s)
		}
		total = n
	}
	start := time.Now()
	var results []soakResult
	for _, fifo := range []bool{false, true} {
		scenario := "oneway"
		if fifo {
			scenario = "fifo"
		}
		t.Run(scenario, func(t *testing.T) {
			r := runSoak(t, b, scenario+"/"+b.Name, fifo, total/2)
			results = append(results, r)
		})
	}
	var sum soakResult
	for _, r := range results {
		sum.Sent += r.Sent
		sum.Indeterminate += r.Indeterminate
		sum.Handled += r.Handled
		sum.Duplicates += r.Duplicates
		sum.Redeliveries += r.Redeliveries
		sum.SendDuplicates += r.SendDuplicates
		sum.DuplicateBound += r.DuplicateBound
		sum.Unexpected += r.Unexpected
		sum.Lost += r.Lost
		sum.Kills += r.Kills
		sum.DeleteErrors += r.DeleteErrors
		sum.FaultCycles += r.FaultCycles
		sum.Attempts += r.Attempts
		sum.FailedAttempts += r.FailedAttempts
		sum.Throttled += r.Throttled
		sum.Violations = append(sum.Violations, r.Violations...)
	}
	sum.Scenario = "total/" + b.Name
	sum.Seconds = time.Since(start).Seconds()
	fmt.Println(strings.Replace(sum.line(), "SOAK total/"+b.Name+" ", "SOAK ", 1))
	if len(results) != 2 {
		return
	}
	// A failed run is written too: its violations are the finding.
	if err := writeSoak(b.Name, !t.Failed(), append(results, sum)); err != nil {
		t.Errorf("bench/soak.json: %v", err)
	}
}

// writeSoak writes the run beside bench/results.json (COURIER_SOAK_OUT
// overrides the path).
func writeSoak(backendName string, passed bool, results []soakResult) error {
	path := os.Getenv("COURIER_SOAK_OUT")
	if path == "" {
		path = filepath.Join("..", "bench", "soak.json")
	}
	var lines []string
	for _, r := range results {
		lines = append(lines, r.line())
	}
	js, err := json.MarshalIndent(map[string]any{
		"backend": backendName,
		"passed":  passed,
		"date":    time.Now().UTC().Format(time.RFC3339),
		"machine": map[string]any{"cpus": runtime.NumCPU(), "goos": runtime.GOOS, "goarch": runtime.GOARCH},
		"faults":  fmt.Sprintf("perf/faults_test.go schedule in a loop (latency 80±60 ms, 30%% resets, 30%% stalls, endpoint down 3 s), 1 in %d attempts throttled, one of %d consumer processes (%d Consumers each) SIGKILLed every 15-30 s", throttleEvery, soakProcesses, soakConsumers),
		"results": results,
		"lines":   lines,
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(js, '\n'), 0o644)
}

// runSoak sends until n messages are reported sent, through the faults,
// while child consumers are killed and restarted, then waits for every
// message reported sent to be handled and checks the run.
func runSoak(t *testing.T, b *backend.Backend, scenario string, fifo bool, n int) soakResult {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	f := newFaultProxy(t, aws.ToString(b.Config().BaseEndpoint))
	ct := &countingTransport{every: throttleEvery}
	client := soakClient(b, f.endpoint(), ct)
	q := b.CreateQueue(t, backend.QueueOptions{FIFO: fifo, ContentDedup: fifo, VisibilityTimeout: soakVisibility})
	ck := check.New()

	// The faults, over and over, with a calm of 5 s between rounds.
	faultsCtx, stopFaults := context.WithCancel(ctx)
	var cycles atomic.Int64
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		for faultsCtx.Err() == nil {
			<-f.schedule(t, faultsCtx)
			cycles.Add(1)
			for _, name := range []string{"latency", "reset", "stall"} {
				f.remove(name)
			}
			select {
			case <-faultsCtx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}()

	// The consumers: child processes, one of them killed at a random
	// moment every 15-30 s and started again.
	out := filepath.Join(t.TempDir(), "handled.log")
	tail := &soakTail{path: out, ck: ck, deleteErrors: map[string]int{}}
	children := &soakChildren{t: t, env: []string{
		"COURIER_SOAK_QUEUE=" + q.URL, "COURIER_SOAK_LOG=" + out,
		"COURIER_SOAK_ENDPOINT=" + f.endpoint(), "COURIER_SOAK_CHILD_BACKEND=" + b.Name,
	}}
	for i := range soakProcesses {
		children.start(i)
	}
	defer children.stopAll()
	killerCtx, stopKiller := context.WithCancel(ctx)
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		for {
			select {
			case <-killerCtx.Done():
				return
			case <-time.After(15*time.Second + time.Duration(rng.Int64N(int64(15*time.Second)))):
				i := rng.IntN(soakProcesses)
				children.kill(i)
				children.start(i)
			}
		}
	}()

	// The senders: batches of ten until n are reported sent. A FIFO sender
	// owns a group; after a failed send (indeterminate) it goes on in a new
	// group, so a group never continues past a message that may be missing.
	p, err := patterns.NewProducer(client, q.URL)
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	var wg sync.WaitGroup
	const senders = 8
	for s := range senders {
		wg.Go(func() {
			epoch, seq := 0, 0
			for i := 0; sent.Load() < int64(n) && ctx.Err() == nil; i++ {
				msgs := make([]*patterns.Message, patterns.MaxBatchEntries)
				for j := range msgs {
					m := &patterns.Message{Body: []byte(fmt.Sprintf("m%d-%d", s, i*patterns.MaxBatchEntries+j))}
					if fifo {
						group := fmt.Sprintf("s%de%d", s, epoch)
						m = &patterns.Message{Body: []byte(fmt.Sprintf("%s:%d", group, seq)), GroupID: group}
						seq++
					}
					msgs[j] = m
				}
				err := p.Send(ctx, msgs...)
				ck.SendResult(msgs, err)
				sent.Add(int64(countSent(msgs, err)))
				if err != nil {
					if fifo {
						epoch, seq = epoch+1, 0
					}
					// A sender that fails (the endpoint down, the SDK's
					// retry quota spent) waits before it tries again, as an
					// application would, instead of spinning.
					time.Sleep(500 * time.Millisecond)
				}
			}
		})
	}
	// Faults and kills go on until the senders are done and every message
	// reported sent was handled (or 20 minutes passed).
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	sendersDone := make(chan struct{})
	go func() { wg.Wait(); close(sendersDone) }()
	deadline := time.Now().Add(20 * time.Minute)
	for sending := true; time.Now().Before(deadline); {
		select {
		case <-sendersDone:
			sending, sendersDone = false, nil
		case <-progress.C:
			c, _ := ck.Check(check.Options{FIFO: fifo, AllowDuplicates: true})
			t.Logf("%s: %d reported sent, %d handled, %d kills, %d fault rounds after %s", scenario, sent.Load(), c.Handled, children.killCount(), cycles.Load(), time.Since(began).Round(time.Second))
		case <-time.After(500 * time.Millisecond):
		}
		tail.read()
		if !sending && ck.AllHandled() {
			break
		}
	}
	stopKiller()
	<-killerDone
	stopFaults()
	<-faultsDone
	// What the last kill left in flight comes back after its visibility
	// timeout: wait that long so its duplicates are counted too.
	time.Sleep(soakVisibility + 5*time.Second)
	children.stopAll()
	tail.read()

	c, violations := ck.Check(check.Options{FIFO: fifo, AllowDuplicates: true})
	r := soakResult{
		Scenario: scenario, Sent: c.Sent, Indeterminate: c.Indeterminate, Handled: c.Handled,
		Duplicates: c.Duplicates, Unexpected: c.Unexpected, Lost: c.Lost,
		Redeliveries: tail.redeliveries(), SendDuplicates: tail.sendDuplicates(),
		Kills: children.killCount(), DeleteErrors: tail.totalDeleteErrors(), FaultCycles: int(cycles.Load()),
		Attempts: ct.attempts.Load() + tail.attempts(), FailedAttempts: ct.failures.Load(), Throttled: ct.injected.Load(),
		Seconds: time.Since(began).Seconds(),
	}
	// The last consumers are stopped too (SIGKILL, after the drain).
	r.DuplicateBound = (r.Kills+soakProcesses)*perKillBound + r.DeleteErrors
	for _, v := range violations {
		r.Violations = append(r.Violations, shortViolation(v))
	}
	fmt.Println(r.line())
	for _, v := range r.Violations {
		t.Errorf("%s: %s", scenario, v)
	}
	if len(violations) > 0 {
		// Keep what the consumers handled, in order, for whoever looks
		// into it (t.TempDir goes with the test).
		keep := filepath.Join("..", ".courier", "soak-"+strings.ReplaceAll(scenario, "/", "-")+"-handled.log")
		if data, err := os.ReadFile(out); err == nil && os.WriteFile(keep, data, 0o644) == nil {
			t.Logf("%s: the consumers' log is kept in %s", scenario, keep)
		}
	}
	if r.Sent < n {
		t.Errorf("%s: %d reported sent, want at least %d", scenario, r.Sent, n)
	}
	if r.Redeliveries > r.DuplicateBound {
		t.Errorf("%s: %d redeliveries, more than the in-flight bound %d (%d kills x %d + %d failed deletes)", scenario, r.Redeliveries, r.DuplicateBound, r.Kills+soakProcesses, perKillBound, r.DeleteErrors)
	}
	if fifo && r.SendDuplicates > 0 {
		t.Errorf("%s: %d messages stored twice by retried sends; FIFO deduplication should have dropped them", scenario, r.SendDuplicates)
	}
	if r.Kills < 3 {
		t.Errorf("%s: the consumer was killed %d times, want several", scenario, r.Kills)
	}
	if r.FailedAttempts == 0 || r.Throttled == 0 {
		t.Errorf("%s: the faults were not felt (%d failed attempts, %d throttled)", scenario, r.FailedAttempts, r.Throttled)
	}
	return r
}

// shortViolation cuts a violation to 300 characters; an order violation's
// sequence is cut to the first place it goes back, with 12 either side.
func shortViolation(v string) string {
	if head, list, ok := strings.Cut(v, "["); ok && len(v) > 300 {
		seq := strings.Fields(strings.TrimSuffix(list, "]"))
		for i := 1; i < len(seq); i++ {
			a, _ := strconv.Atoi(seq[i-1])
			b, _ := strconv.Atoi(seq[i])
			if b < a {
				lo, hi := max(0, i-12), min(len(seq), i+12)
				return fmt.Sprintf("%s[... %s | %s ...] (%d first handlings; it goes back at position %d)",
					head, strings.Join(seq[lo:i], " "), strings.Join(seq[i:hi], " "), len(seq), i)
			}
		}
	}
	if len(v) > 300 {
		v = v[:300] + "..."
	}
	return v
}

// countSent is how many of msgs a Send that returned err reported sent.
func countSent(msgs []*patterns.Message, err error) int {
	if err == nil {
		return len(msgs)
	}
	if se := (*patterns.SendError)(nil); errors.As(err, &se) {
		return len(msgs) - len(se.Failed)
	}
	return 0
}

// soakClient is an SQS client whose requests go through the proxy and the
// throttling transport, with a client timeout (a stalled connection must
// fail, not hang).
func soakClient(b *backend.Backend, endpoint string, ct *countingTransport) *sqs.Client {
	cfg := b.Config()
	ct.next = &http.Transport{DisableKeepAlives: true}
	cfg.HTTPClient = &http.Client{Timeout: 3 * time.Second, Transport: ct}
	return sqs.NewFromConfig(cfg, ct.install, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// soakChildren starts, kills and counts the consumer processes.
type soakChildren struct {
	t     *testing.T
	env   []string
	mu    sync.Mutex
	cmds  [soakProcesses]*exec.Cmd
	kills int
}

func (c *soakChildren) start(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSoakChildConsumer$", "-test.count=1")
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		c.t.Errorf("start consumer: %v", err)
		return
	}
	c.cmds[i] = cmd
}

// kill sends SIGKILL to consumer i, wherever it is.
func (c *soakChildren) kill(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmds[i] == nil {
		return
	}
	_ = c.cmds[i].Process.Signal(syscall.SIGKILL)
	_ = c.cmds[i].Wait()
	c.cmds[i] = nil
	c.kills++
}

func (c *soakChildren) killCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kills
}

// stopAll ends the consumers at the end of a run (SIGKILL too, not
// counted as kills of the schedule).
func (c *soakChildren) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, cmd := range c.cmds {
		if cmd != nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			c.cmds[i] = nil
		}
	}
}

// soakTail reads the consumers' log as it grows: "body<TAB>message id<TAB>..."
// per handling, and
// "#<pid> <deleteErrors> <attempts>" lines with each process's counters.
type soakTail struct {
	path         string
	ck           *check.Checker
	copies       map[string]int // handlings by body and message id
	bodies       map[string]bool
	off          int64
	deleteErrors map[string]int
	attemptsBy   map[string]int64
}

func (s *soakTail) read() {
	f, err := os.Open(s.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return // an incomplete last line is read next time
		}
		s.off += int64(len(line))
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			var pid string
			var de int
			var at int64
			if _, err := fmt.Sscanf(line, "#%s %d %d", &pid, &de, &at); err == nil {
				s.deleteErrors[pid] = de
				if s.attemptsBy == nil {
					s.attemptsBy = map[string]int64{}
				}
				s.attemptsBy[pid] = at
			}
		default:
			f := strings.Split(line, "\t")
			body, id := f[0], ""
			if len(f) > 1 {
				id = f[1]
			}
			s.ck.Handle(body)
			if s.copies == nil {
				s.copies, s.bodies = map[string]int{}, map[string]bool{}
			}
			s.copies[body+"\t"+id]++
			s.bodies[body] = true
		}
	}
}

// redeliveries: handlings of an SQS message after its first.
func (s *soakTail) redeliveries() int {
	n := 0
	for _, k := range s.copies {
		n += k - 1
	}
	return n
}

// sendDuplicates: messages with a body another message already had.
func (s *soakTail) sendDuplicates() int { return len(s.copies) - len(s.bodies) }

func (s *soakTail) totalDeleteErrors() int {
	n := 0
	for _, v := range s.deleteErrors {
		n += v
	}
	return n
}

func (s *soakTail) attempts() int64 {
	var n int64
	for _, v := range s.attemptsBy {
		n += v
	}
	return n
}

// TestSoakChildConsumer is the consumer process TestSoak starts and kills.
// It reaches the queue through the soak's proxy, with throttling, and
// appends each body to the log before its handler returns: a write(2) is
// in the kernel's page cache when it returns, so SIGKILL does not lose it
// (no fsync needed: the machine does not crash, the process does).
func TestSoakChildConsumer(t *testing.T) {
	queue, out := os.Getenv("COURIER_SOAK_QUEUE"), os.Getenv("COURIER_SOAK_LOG")
	if queue == "" {
		t.Skip("run by TestSoak")
	}
	b := backend.Require(t, os.Getenv("COURIER_SOAK_CHILD_BACKEND"))
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ct := &countingTransport{every: throttleEvery}
	client := soakClient(b, os.Getenv("COURIER_SOAK_ENDPOINT"), ct)
	var consumers []*patterns.Consumer
	for range soakConsumers {
		c, err := patterns.NewConsumer(client, queue, func(o *patterns.ConsumerOptions) {
			o.WaitTime = time.Second
			o.Logger = quiet()
			o.Workers = soakWorkers
			o.MaxInFlight = soakInFlight
			o.VisibilityTimeout = soakVisibility
		})
		if err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, c)
	}
	var mu sync.Mutex
	write := func(s string) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := io.WriteString(f, s)
		return err
	}
	go func() {
		pid := os.Getpid()
		for range time.Tick(200 * time.Millisecond) {
			var de int64
			for _, c := range consumers {
				de += c.Stats().DeleteErrors
			}
			_ = write(fmt.Sprintf("#%d %d %d\n", pid, de, ct.attempts.Load()))
		}
	}()
	var wg sync.WaitGroup
	for i, c := range consumers {
		wg.Go(func() {
			_ = c.Run(context.Background(), func(_ context.Context, m *patterns.Message) error {
				// body, message id, then for whoever reads a kept log:
				// process.consumer, receive count, sequence number, time.
				return write(fmt.Sprintf("%s\t%s\t%d.%d\t%d\t%s\t%d\n", m.Body, m.ID, os.Getpid(), i, m.ReceiveCount, m.SequenceNumber, time.Now().UnixNano()))
			})
		})
	}
	wg.Wait()
}
