package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/functions"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// lambdaWorker: the worker Lambda function from lambdas/, its handler run
// by the local runner that plays Lambda's event source mapping (batch size,
// batching window, partial batch response). A malformed job is reported as
// a batch item failure; the others are deleted.
func lambdaWorker(ctx context.Context, env *Env) (Result, error) {
	const n = 12
	url, _, err := env.Queue(ctx, "worker-jobs", QueueSpec{VisibilitySeconds: 30, MaxReceiveCount: 3})
	if err != nil {
		return Result{}, err
	}
	p, err := patterns.NewProducer(env.SQS, url)
	if err != nil {
		return Result{}, err
	}
	var msgs []*patterns.Message
	for i := range n {
		msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf(`{"job":%d}`, i+1))})
	}
	msgs = append(msgs, &patterns.Message{Body: []byte("not a job")})
	if err := p.Send(ctx, msgs...); err != nil {
		return Result{}, err
	}
	env.Trail.Add("producer", "worker-jobs queue", fmt.Sprintf("%d jobs and 1 malformed", n))
	runner, err := localrunner.New(env.SQS, localrunner.Config{
		QueueURL: url, BatchSize: 10, MaximumBatchingWindow: time.Second, ReportBatchItemFailures: true,
		WaitTime: time.Second, FunctionName: "worker", Logger: quiet,
		Observe: func(inv localrunner.Invocation) {
			env.Trail.Add("worker-jobs queue", "worker λ", fmt.Sprintf("invoke with %d records, %d reported failed", len(inv.MessageIDs), len(inv.Failed)))
		},
	})
	if err != nil {
		return Result{}, err
	}
	handler := adapter.SQSHandler(functions.Worker(quiet), func(o *adapter.Options) { o.Logger = quiet })
	stop := background(ctx, func(ctx context.Context) error { return runner.Run(ctx, handler) })
	werr := waitUntil(ctx, func() bool { st := runner.Stats(); return st.Deleted >= n && st.Reported >= 1 })
	if err := stop(); err != nil {
		return Result{}, err
	}
	st := runner.Stats()
	if werr != nil {
		return Result{Messages: int(st.Deleted)}, fmt.Errorf("runner stats %+v: %w", st, werr)
	}
	return Result{Messages: n + 1, Summary: fmt.Sprintf("worker function ran %d invocation(s) under the local runner: %d jobs deleted, the malformed one reported as a batch item failure", st.Invocations, st.Deleted)}, nil
}
