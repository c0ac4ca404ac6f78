package functions_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/lambdas/functions"
	"github.com/courier-aws/courier/lambdas/internal/lambdatest"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// What the worker logs (lambdas/functions, lambdas/adapter, patterns).
const (
	logHandled    = "handled"
	logFailed     = "courier: record failed; Lambda delivers it again"
	logSkipped    = "courier: already handled; skipped"
	logNotStarted = "courier: FIFO: records after a failure not started, to keep their order"
)

// workerRun is one run of a workload through a worker: the deployed one
// fed by an event source mapping of LocalStack's, or the same function's
// code under lambdas/localrunner. What it did is read from its own log
// lines, the same lines either way.
type workerRun struct {
	name  string        // "deployed" or "localrunner"
	queue backend.Queue // where the workload goes
	lines func() []line // the worker's JSON log lines so far
	b     *backend.Backend
}

// line is one JSON log line of the worker.
type line map[string]any

func (l line) str(k string) string { s, _ := l[k].(string); return s }

// at is when the function logged the line, by its own clock.
func (l line) at() time.Time { t, _ := time.Parse(time.RFC3339Nano, l.str("time")); return t }

// workerOutcome is what a worker made of a workload: the same for the
// deployed function and the local runner, or one of them is wrong.
type workerOutcome struct {
	Handled    []string // bodies of the jobs handled, in the order handled
	Failed     map[string]int
	Skipped    int      // deliveries the idempotency records skipped: a whole batch failed and came again
	NotStarted int      // FIFO: times the records after a failure were left unstarted
	Dead       []string // bodies in the DLQ, sorted
	// A2Gaps: FIFO, the times between the poison's failures (logged, not
	// compared: the backoff has jitter).
	A2Gaps []time.Duration
}

func (o workerOutcome) String() string {
	return fmt.Sprintf("handled %d %v; failed %v; skipped %d; not started %d times; dead %v",
		len(o.Handled), o.Handled, o.Failed, o.Skipped, o.NotStarted, o.Dead)
}

// outcome reads the outcome from the worker's lines about the messages
// in bodies (message id -> body) and the DLQ messages dead.
func (r *workerRun) outcome(bodies map[string]string, dead []types.Message) (workerOutcome, map[string][]time.Time) {
	o := workerOutcome{Failed: map[string]int{}}
	failedAt := map[string][]time.Time{} // body -> when each failure was logged
	for _, l := range r.lines() {
		id := l.str("message_id")
		body, ours := bodies[id]
		if !ours {
			body, ours = bodies[l.str("after_message_id")]
		}
		if !ours {
			continue
		}
		switch l.str("msg") {
		case logHandled:
			o.Handled = append(o.Handled, body)
		case logFailed:
			o.Failed[body]++
			failedAt[body] = append(failedAt[body], l.at())
		case logSkipped:
			o.Skipped++
		case logNotStarted:
			o.NotStarted++
		}
	}
	for _, m := range dead {
		o.Dead = append(o.Dead, aws.ToString(m.Body))
	}
	slices.Sort(o.Dead)
	return o, failedAt
}

// deployedRun runs the workload through the deployed worker: a mapping of
// the queue q to it, with the settings of its own mapping (batch size,
// batching window, partial batch responses), removed when the test ends.
func deployedRun(t *testing.T, d *deployment, q backend.Queue, since time.Time) *workerRun {
	t.Helper()
	w := d.fn("worker")
	ctx := context.Background()
	m, err := d.lam.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String(w.Name), EventSourceArn: aws.String(q.ARN),
		BatchSize: w.Mapping.BatchSize, MaximumBatchingWindowInSeconds: w.Mapping.MaximumBatchingWindowInSeconds,
		FunctionResponseTypes: w.Mapping.FunctionResponseTypes, Enabled: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("mapping %s to %s: %v", q.URL, w.Name, err)
	}
	t.Cleanup(func() {
		if _, err := d.lam.DeleteEventSourceMapping(context.Background(), &lambda.DeleteEventSourceMappingInput{UUID: m.UUID}); err != nil {
			t.Errorf("removing the mapping of %s: %v", q.URL, err)
		}
	})
	lambdatest.WaitFor(t, "the mapping enabled", func() bool {
		got, err := d.lam.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: m.UUID})
		return err == nil && aws.ToString(got.State) == "Enabled"
	})
	return deployedLines(t, d, q, since)
}

// deployedLines is a run of the deployed worker on q, fed by whatever
// mapping feeds q, read from the function's logs since since.
func deployedLines(t *testing.T, d *deployment, q backend.Queue, since time.Time) *workerRun {
	logs := newFunctionLogs(d.b)
	name := d.fn("worker").Name
	return &workerRun{name: "deployed", queue: q, b: d.b, lines: func() []line {
		evs, err := logs.events(context.Background(), name, since)
		if err != nil {
			t.Logf("reading the logs of %s: %v", name, err)
		}
		var out []line
		for _, e := range evs {
			if e.JSON != nil {
				out = append(out, e.JSON)
			}
		}
		return out
	}}
}

// localRun runs the workload through the deployed worker's code and
// configuration under lambdas/localrunner: the handler built as its main
// package builds it (functions.Main) from the deployed function's
// environment, the runner set as the deployed mapping is.
func localRun(t *testing.T, d *deployment, q backend.Queue) *workerRun {
	t.Helper()
	w := d.fn("worker")
	var logs lambdatest.Logs
	getenv := func(k string) string { return w.Env[k] }
	log, err := functions.NewLogger(&logs, getenv)
	if err != nil {
		t.Fatal(err)
	}
	deps := functions.Deps{SQS: d.b.SQS(), DynamoDB: d.b.DynamoDB(), S3: d.b.S3(), Log: log}
	h, err := functions.New("worker", getenv, deps)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := functions.AdapterOptions("worker", getenv, deps)
	if err != nil {
		t.Fatal(err)
	}
	cfg := localrunner.Config{
		QueueURL:                q.URL,
		BatchSize:               int(aws.ToInt32(w.Mapping.BatchSize)),
		MaximumBatchingWindow:   time.Duration(aws.ToInt32(w.Mapping.MaximumBatchingWindowInSeconds)) * time.Second,
		ReportBatchItemFailures: slices.Contains(w.Mapping.FunctionResponseTypes, ltypes.FunctionResponseTypeReportBatchItemFailures),
		FunctionTimeout:         w.Timeout,
		FunctionName:            w.Name,
	}
	lambdatest.Start(t, d.b, cfg, adapter.SQSHandler(h, append(opts, adapter.WithLogger(log))...))
	return &workerRun{name: "localrunner", queue: q, b: d.b, lines: func() []line {
		var out []line
		for _, msg := range []string{logHandled, logFailed, logSkipped, logNotStarted} {
			for _, l := range logs.Lines(msg) {
				out = append(out, l)
			}
		}
		slices.SortStableFunc(out, func(a, b line) int { return a.at().Compare(b.at()) })
		return out
	}}
}

// standardWorkload sends jobs and a poison job (not JSON: the worker fails
// it every time) at once to r's queue, then a job a second until the
// poison is in the DLQ. That stream is what a worker in production sees,
// and it keeps LocalStack's mapping polling every second: on an empty
// queue its poller backs off up to 10 s (±50%), a delay each retry of the
// poison would wait out. It returns the bodies by message id and the DLQ's
// messages of this run. Safe to run in a goroutine of the test.
func standardWorkload(r *workerRun, dlq string, run string, deadline time.Duration) (map[string]string, []types.Message, error) {
	ctx := context.Background()
	p, err := patterns.NewProducer(r.b.SQS(), r.queue.URL)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	bodies := map[string]string{}
	send := func(msgs ...*patterns.Message) error {
		if err := p.Send(ctx, msgs...); err != nil {
			return fmt.Errorf("%s: send: %w", r.name, err)
		}
		mu.Lock()
		for _, m := range msgs {
			bodies[m.ID] = string(m.Body)
		}
		mu.Unlock()
		return nil
	}
	var first []*patterns.Message
	for i := range 5 {
		first = append(first, &patterns.Message{Body: []byte(fmt.Sprintf(`{"run":%q,"job":%d}`, run, i))})
	}
	if err := send(append(first, &patterns.Message{Body: []byte("poison " + run)})...); err != nil {
		return nil, nil, err
	}

	stop := make(chan struct{})
	trickle := make(chan error, 1)
	go func() {
		for i := 5; ; i++ {
			select {
			case <-stop:
				trickle <- nil
				return
			case <-time.After(time.Second):
			}
			if err := send(&patterns.Message{Body: []byte(fmt.Sprintf(`{"run":%q,"job":%d}`, run, i))}); err != nil {
				trickle <- err
				return
			}
		}
	}()
	var dead []types.Message
	end := time.Now().Add(deadline)
	for len(dead) == 0 && time.Now().Before(end) {
		got, err := takeFromDLQ(r.b, dlq, func(m types.Message) bool {
			mu.Lock()
			defer mu.Unlock()
			_, ours := bodies[aws.ToString(m.MessageId)]
			return ours || strings.Contains(aws.ToString(m.Body), run)
		})
		if err != nil {
			close(stop)
			return nil, nil, err
		}
		dead = append(dead, got...)
	}
	close(stop)
	if err := <-trickle; err != nil {
		return nil, nil, err
	}
	if len(dead) == 0 {
		return nil, nil, fmt.Errorf("%s: the poison job was not in the DLQ after %v", r.name, deadline)
	}
	// Every job sent is handled: wait for the last ones.
	want := len(bodies) - 1
	err = eventually(r.name+": every job handled", time.Minute, func() bool {
		n := 0
		for _, l := range r.lines() {
			if _, ours := bodies[l.str("message_id")]; ours && l.str("msg") == logHandled {
				n++
			}
		}
		return n >= want
	})
	return bodies, dead, err
}

// checkStandard holds a run of the standard workload to its outcome: each
// job handled once, the poison reported failed on each of its
// maxReceiveCount receives and then in the DLQ, the failures spaced by the
// worker's retry backoff (not the queue's visibility timeout), no batch
// failed whole.
// Safe in a goroutine of the test.
func checkStandard(t *testing.T, r *workerRun, o workerOutcome, failures map[string][]time.Time, bodies map[string]string, maxReceives int, backoff string, visibility time.Duration) {
	t.Helper()
	var jobs []string
	for _, b := range bodies {
		if strings.HasPrefix(b, "{") {
			jobs = append(jobs, b)
		}
	}
	slices.Sort(jobs)
	handled := slices.Sorted(slices.Values(o.Handled))
	if !slices.Equal(handled, jobs) {
		t.Errorf("%s: handled %d jobs, want the %d sent, each once", r.name, len(handled), len(jobs))
	}
	var poison string
	for b := range o.Failed {
		poison = b
	}
	if len(o.Failed) != 1 || o.Failed[poison] != maxReceives || !strings.HasPrefix(poison, "poison ") {
		t.Errorf("%s: records reported failed %v, want the poison on each of its %d receives", r.name, o.Failed, maxReceives)
	}
	if len(o.Dead) != 1 || o.Dead[0] != poison {
		t.Errorf("%s: DLQ holds %q, want the poison only", r.name, o.Dead)
	}
	if o.Skipped != 0 {
		t.Errorf("%s: %d deliveries came again after they were handled: a batch failed whole", r.name, o.Skipped)
	}
	base, max, err := contract.ParseRetryBackoff(backoff)
	if err != nil {
		t.Error(err)
		return
	}
	failedAt := failures[poison]
	d := base
	for k := 1; k < len(failedAt); k++ {
		gap := failedAt[k].Sub(failedAt[k-1])
		// The backoff after receive k is d/2..d, in whole seconds; the
		// mapping takes the message within a poll or two after.
		if gap < d/2-500*time.Millisecond || gap > d+20*time.Second || gap >= visibility {
			t.Errorf("%s: failure %d came %v after failure %d: want the backoff %v..%v (the queue's visibility timeout is %v)",
				r.name, k+1, gap.Round(time.Millisecond), k, d/2, d, visibility)
		}
		d = min(2*d, max)
	}
	t.Logf("%s: %d jobs handled; the poison failed at %v apart, then the DLQ", r.name, len(handled), gaps(failedAt))
}

func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for k := 1; k < len(ts); k++ {
		out = append(out, ts[k].Sub(ts[k-1]).Round(100*time.Millisecond))
	}
	return out
}

// The same workloads run on the deployed worker, fed by LocalStack's event
// source mapping and run by its courier executor, and under
// lambdas/localrunner (what plays the mapping on moto) with the same code
// and configuration, on queues alike; both must come to the same outcome:
//
//   - standard queue: jobs handled once each; a poison job reported failed
//     (partial batch response: the jobs of its batches are not retried) on
//     each receive, its retries spaced by the worker's backoff, and in the
//     DLQ after maxReceiveCount receives;
//   - FIFO queue: after a poison job fails, its group stops: the job behind
//     it is not started, and never runs before the poison is gone; another
//     group goes on, in order. What becomes of that job is the queue's
//     doing: on AWS the group stays locked while it is in flight (for the
//     queue's visibility timeout, since it was not started), the poison
//     comes back with it, and both reach the DLQ (SQS counts receives). On
//     LocalStack 4.14.0 the poison comes back alone once its backoff ends,
//     the job still in flight: the poison leaves for the DLQ alone and the
//     job is handled after it. Both runs here are on LocalStack, so both
//     show that.
//
// The deployed stack has no FIFO queue with a worker mapping (the Ledger
// queues have no consumer), so the FIFO workload, and for time the
// standard one, go to queues of the test's, mapped to the deployed worker
// with the settings of its own mapping. maxReceiveCount is 3 (standard)
// and 2 (FIFO) rather than the deployed 5, which TestDeployedWorker runs.
func TestDeployedWorkerMatchesLocalRunner(t *testing.T) {
	d := requireDeployment(t)
	w := d.fn("worker")
	jobsVisibility := visibilityTimeout(t, d.b, w.QueueURL)
	backoff := w.Env[contract.EnvRetryBackoff]

	// Every run is set up here, then the four workloads run at once, in
	// goroutines.
	type runCase struct {
		kind string
		r    *workerRun
		q    backend.Queue
	}
	var runs []runCase
	for _, kind := range []string{"standard", "fifo"} {
		for _, side := range []string{"deployed", "localrunner"} {
			o := backend.QueueOptions{VisibilityTimeout: jobsVisibility, MaxReceiveCount: 3}
			if kind == "fifo" {
				// The least visibility timeout of a queue a function with
				// this timeout consumes (the job left unstarted behind the
				// poison keeps it).
				o = backend.QueueOptions{FIFO: true, ContentDedup: true, VisibilityTimeout: w.Timeout, MaxReceiveCount: 2}
			}
			q := d.b.CreateQueue(t, o)
			var r *workerRun
			if side == "deployed" {
				r = deployedRun(t, d, q, time.Now())
			} else {
				r = localRun(t, d, q)
			}
			r.name = kind + "/" + side
			runs = append(runs, runCase{kind: kind, r: r, q: q})
		}
	}
	// The workloads start now, before t.Parallel: their waits run beside
	// the other tests whatever -parallel allows.
	outcomes := make([]workerOutcome, len(runs))
	var wg sync.WaitGroup
	for i, c := range runs {
		wg.Go(func() {
			run := fmt.Sprintf("%s-%s", backend.UniqueName(t), strings.ReplaceAll(c.r.name, "/", "-"))
			switch c.kind {
			case "standard":
				bodies, dead, err := standardWorkload(c.r, c.q.DLQURL, run, 90*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				o, failedAt := c.r.outcome(bodies, dead)
				checkStandard(t, c.r, o, failedAt, bodies, 3, backoff, jobsVisibility)
				outcomes[i] = o
			case "fifo":
				o, err := fifoWorkload(c.r, run, 3*w.Timeout+60*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				t.Logf("%s: %s; the poison's failures %v apart", c.r.name, o, o.A2Gaps)
				outcomes[i] = o
			}
		})
	}
	t.Parallel()
	wg.Wait()
	if t.Failed() {
		return
	}
	if a, b := summary(outcomes[0]), summary(outcomes[1]); a != b {
		t.Errorf("standard queue: the deployed worker and the local runner differ:\n  deployed:    %s\n  localrunner: %s", a, b)
	}
	o2, o3 := outcomes[2], outcomes[3]
	o2.A2Gaps, o3.A2Gaps = nil, nil
	if a, b := o2.String(), o3.String(); a != b {
		t.Errorf("FIFO queue: the deployed worker and the local runner differ:\n  deployed:    %s\n  localrunner: %s", a, b)
	}
}

// summary is what two runs of the standard workload must share (their
// trickles differ in length, so not the jobs themselves).
func summary(o workerOutcome) string {
	var failed []int
	for _, n := range o.Failed {
		failed = append(failed, n)
	}
	return fmt.Sprintf("every job handled once; poison failures %v; skipped %d; not started %d; %d in the DLQ", failed, o.Skipped, o.NotStarted, len(o.Dead))
}

// fifoWorkload: group a's a1, a2 (poison) and a3 at once; once a1 is
// handled, group b's b1..b3, while a2 and a3 wait to come back, so that no
// batch mixes the groups (LocalStack's mapping invokes a FIFO batch one
// group at a time; Lambda and the local runner invoke it whole, and the
// adapter then reports every record after a failure, other groups'
// included). Safe to run in a goroutine of the test.
func fifoWorkload(r *workerRun, run string, deadline time.Duration) (workerOutcome, error) {
	ctx := context.Background()
	p, err := patterns.NewProducer(r.b.SQS(), r.queue.URL)
	if err != nil {
		return workerOutcome{}, err
	}
	bodies := map[string]string{}
	var mu sync.Mutex
	msg := func(job string) *patterns.Message {
		body := fmt.Sprintf(`{"run":%q,"job":%q}`, run, job)
		if job == "a2" {
			body = "not json: a2 " + run
		}
		return &patterns.Message{Body: []byte(body), GroupID: job[:1] + run}
	}
	send := func(jobs ...string) error {
		var msgs []*patterns.Message
		for _, j := range jobs {
			msgs = append(msgs, msg(j))
		}
		if err := p.Send(ctx, msgs...); err != nil {
			return fmt.Errorf("%s: send: %w", r.name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			bodies[m.ID] = string(m.Body)
		}
		return nil
	}
	outcome := func(dead []types.Message) (workerOutcome, map[string][]time.Time) {
		mu.Lock()
		defer mu.Unlock()
		return r.outcome(bodies, dead)
	}
	handled := func() int { o, _ := outcome(nil); return len(o.Handled) }
	if err := send("a1", "a2", "a3"); err != nil {
		return workerOutcome{}, err
	}
	if err := eventually(r.name+": a1 handled", time.Minute, func() bool { return handled() >= 1 }); err != nil {
		return workerOutcome{}, err
	}
	if err := send("b1", "b2", "b3"); err != nil {
		return workerOutcome{}, err
	}
	// Done when a2 is in the DLQ and a3 handled or in the DLQ too.
	var dead []types.Message
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		got, err := takeFromDLQ(r.b, r.queue.DLQURL, func(m types.Message) bool {
			mu.Lock()
			defer mu.Unlock()
			_, ours := bodies[aws.ToString(m.MessageId)]
			return ours
		})
		if err != nil {
			return workerOutcome{}, err
		}
		dead = append(dead, got...)
		if len(dead) == 2 || (len(dead) == 1 && handled() == 5) {
			break
		}
	}
	if err := eventually(r.name+": b1..b3 handled", time.Minute, func() bool { return handled() >= 4 }); err != nil {
		return workerOutcome{}, err
	}
	o, failedAt := outcome(dead)
	job := func(j string) string { return string(msg(j).Body) }
	var problems []string
	switch {
	case len(o.Handled) < 4 || !slices.Equal(o.Handled[:4], []string{job("a1"), job("b1"), job("b2"), job("b3")}):
		problems = append(problems, "want a1, then b1, b2, b3 in order, handled first")
	case !slices.Contains(o.Dead, job("a2")) || slices.Contains(o.Handled, job("a2")):
		problems = append(problems, "want a2 never handled, in the DLQ")
	case o.NotStarted < 1:
		problems = append(problems, "want a3 left unstarted behind a2 (its group stops)")
	case slices.Contains(o.Handled, job("a3")) == slices.Contains(o.Dead, job("a3")):
		problems = append(problems, "want a3 either handled after a2 left, or in the DLQ with it")
	}
	if len(problems) > 0 {
		return o, fmt.Errorf("%s: %s: %s", r.name, o, strings.Join(problems, "; "))
	}
	if ts := failedAt[job("a2")]; len(ts) > 1 {
		o.A2Gaps = gaps(ts)
	}
	// Only bodies that name this run's jobs, without the run id, so that
	// the two sides compare.
	strip := func(xs []string) {
		for i := range xs {
			xs[i] = strings.ReplaceAll(xs[i], run, "")
		}
	}
	strip(o.Handled)
	strip(o.Dead)
	failed := map[string]int{}
	for b, n := range o.Failed {
		failed[strings.ReplaceAll(b, run, "")] = n
	}
	o.Failed = failed
	return o, nil
}

// eventually polls cond every half second (reading a deployed function's
// logs is a request to LocalStack) until it holds, or says it timed out.
func eventually(what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return nil
}

// visibilityTimeout reads the queue's visibility timeout.
func visibilityTimeout(t *testing.T, b *backend.Backend, url string) time.Duration {
	t.Helper()
	out, err := b.SQS().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	var s int
	if _, err := fmt.Sscan(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)], &s); err != nil {
		t.Fatal(err)
	}
	return time.Duration(s) * time.Second
}
