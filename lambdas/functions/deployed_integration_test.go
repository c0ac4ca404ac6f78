package functions_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/contract"
)

// The deployed worker function (CourierCompute, run by LocalStack's courier
// executor) handles the jobs LocalStack's event source mapping feeds it
// from the deployed Jobs queue, each once, reporting a poison job failed
// (a partial batch response: the jobs of its batches are not retried) on
// each of its receives, which the function's retry backoff spaces, until
// the queue's redrive policy moves it to the deployed DLQ after
// maxReceiveCount receives. What the worker did is read from its own log
// lines.
//
// It takes what the deployed configuration takes: with COURIER_RETRY_BACKOFF
// "5s,15m" and maxReceiveCount 5, the poison waits out five backoffs (the
// DLQ takes it on the receive after the fifth failure) of 2.5-5, 5-10,
// 10-20, 20-40 and 40-80 s: 77-155 s, 116 s on average. The workload's
// trickle of jobs keeps LocalStack's poller from backing off an empty
// queue (up to 10 s ±50% before each retry: the 142 s this test used to
// take, and a 150 s deadline that one run in five missed).
func TestDeployedWorker(t *testing.T) {
	d := requireDeployment(t)
	w := d.fn("worker")
	if w.QueueURL != d.out["JobsQueueUrl"] {
		t.Fatalf("the worker's mapping consumes %s; the deployment's Jobs queue is %s", w.QueueURL, d.out["JobsQueueUrl"])
	}
	rd := redriveOf(t, d.b, w.QueueURL)
	backoff := w.Env[contract.EnvRetryBackoff]
	base, max, err := contract.ParseRetryBackoff(backoff)
	if err != nil {
		t.Fatal(err)
	}
	// The longest the poison can take: every backoff at its longest, and
	// a few seconds a receive for the mapping and the invocation.
	var longest time.Duration
	for k, b := 0, base; k < rd.MaxReceiveCount; k, b = k+1, min(2*b, max) {
		longest += b + 5*time.Second
	}
	q := backend.Queue{URL: w.QueueURL, DLQURL: rd.DLQURL}
	r := deployedLines(t, d, q, time.Now())
	start := time.Now()
	// The workload starts now, before t.Parallel: its two minutes of
	// waiting run beside the other tests whatever -parallel allows.
	type result struct {
		bodies map[string]string
		dead   []types.Message
		err    error
	}
	done := make(chan result, 1)
	run := backend.UniqueName(t)
	go func() {
		bodies, dead, err := standardWorkload(r, rd.DLQURL, run, longest+30*time.Second)
		done <- result{bodies, dead, err}
	}()
	t.Parallel()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	bodies, dead := res.bodies, res.dead
	took := time.Since(start)
	o, failedAt := r.outcome(bodies, dead)
	checkStandard(t, r, o, failedAt, bodies, rd.MaxReceiveCount, backoff, visibilityTimeout(t, d.b, w.QueueURL))
	t.Logf("the poison reached the DLQ %v after it was sent (maxReceiveCount %d, backoff %s)", took.Round(time.Second), rd.MaxReceiveCount, backoff)
}
