package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/funclogs"
	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/functions"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// lambdaWorker: the worker Lambda function from lambdas/ on an SQS event
// source mapping (batch size, partial batch response). On LocalStack with
// the stacks deployed (make deploy-local; make demo deploys them) it is
// the deployed function, fed by LocalStack's own mapping and run by
// courier's executor, and what it did is read from its own log lines. On
// moto (or LocalStack without the deployment) its handler runs under the
// local runner that plays the mapping. A malformed job is reported as a
// batch item failure; the others are deleted.
func lambdaWorker(ctx context.Context, env *Env) (Result, error) {
	if env.Backend == "localstack" {
		w, err := findDeployedWorker(ctx, env)
		if err != nil {
			return Result{}, err
		}
		if w != nil {
			return deployedWorker(ctx, env, w)
		}
		fmt.Fprintln(env.Out, "  no deployment on this LocalStack (make deploy-local; make demo deploys it): the worker runs under the local runner")
	}
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

// deployedWorkerRef is the worker CourierCompute deployed and its queue.
type deployedWorkerRef struct {
	cfg      aws.Config
	function string // its name in Lambda
	queueURL string // the Jobs queue its mapping consumes
}

// findDeployedWorker finds the worker function of the deployment that
// .courier/messaging-outputs.json describes, if it is on this LocalStack
// and its mapping on the Jobs queue exists; nil if not.
func findDeployedWorker(ctx context.Context, env *Env) (*deployedWorkerRef, error) {
	out, ok := deploymentOutputs()
	jobs := out["JobsQueueUrl"]
	if !ok || env.Endpoint == "" || !strings.HasPrefix(jobs, env.Endpoint+"/") {
		return nil, nil
	}
	attrs, err := env.res.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(jobs), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return nil, nil // outputs of an earlier LocalStack on the same port
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	maps, err := lambda.NewFromConfig(cfg).ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{
		EventSourceArn: aws.String(attrs.Attributes[string(types.QueueAttributeNameQueueArn)]),
	})
	if err != nil || len(maps.EventSourceMappings) == 0 {
		return nil, nil // CourierMessaging only
	}
	fn := aws.ToString(maps.EventSourceMappings[0].FunctionArn)
	return &deployedWorkerRef{cfg: cfg, function: fn[strings.LastIndex(fn, ":")+1:], queueURL: jobs}, nil
}

// deploymentOutputs reads CourierMessaging's outputs from the nearest
// .courier/messaging-outputs.json (make deploy-local writes it).
func deploymentOutputs() (map[string]string, bool) {
	dir, _ := os.Getwd()
	for {
		if data, err := os.ReadFile(filepath.Join(dir, ".courier", "messaging-outputs.json")); err == nil {
			var stacks map[string]map[string]string
			if json.Unmarshal(data, &stacks) != nil {
				return nil, false
			}
			return stacks["CourierMessaging"], stacks["CourierMessaging"] != nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, false
		}
		dir = parent
	}
}

// deployedWorker sends jobs and a malformed one to the deployed Jobs queue
// and follows the deployed worker through its own log lines, which
// LocalStack keeps in CloudWatch Logs (/aws/lambda/<function>): one
// "handled" line per job, naming its message id, and the adapter's line
// for the record it reported failed.
func deployedWorker(ctx context.Context, env *Env, w *deployedWorkerRef) (Result, error) {
	const n = 12
	queue, fn := "Jobs queue (deployed)", "worker λ (deployed)"
	fmt.Fprintf(env.Out, "  the deployed worker %s, fed by LocalStack's event source mapping on %s\n", w.function, w.queueURL)
	p, err := patterns.NewProducer(env.SQS, w.queueURL)
	if err != nil {
		return Result{}, err
	}
	run := fmt.Sprintf("demo-%d", time.Now().UnixNano())
	var msgs []*patterns.Message
	for i := range n {
		msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf(`{"run":%q,"job":%d}`, run, i+1))})
	}
	malformed := &patterns.Message{Body: []byte("not a job " + run)}
	msgs = append(msgs, malformed)
	since := time.Now()
	if err := p.Send(ctx, msgs...); err != nil {
		return Result{}, err
	}
	env.Trail.Add("producer", queue, fmt.Sprintf("%d jobs and 1 malformed", n))
	ours := map[string]bool{}
	for _, m := range msgs {
		ours[m.ID] = true
	}

	logs := funclogs.New(w.cfg, env.Endpoint)
	seen := map[string]bool{} // invocations put on the trail
	handled, failed := map[string]string{}, 0
	var sample []string
	var requests []string
	for len(handled) < n || failed == 0 {
		select {
		case <-ctx.Done():
			return Result{Messages: len(handled)}, fmt.Errorf("the deployed worker logged %d of %d jobs handled, %d failures: %w", len(handled), n, failed, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		evs, err := logs.Events(ctx, w.function, since)
		if err != nil && !errors.Is(err, funclogs.ErrNoLogGroup) {
			return Result{}, err
		}
		invs := funclogs.Invocations(evs)
		for _, inv := range invs {
			var h, f int
			for _, l := range inv.Lines {
				switch id := l.Str("message_id"); {
				case !ours[id]:
				case l.Msg() == "handled":
					h++
					if _, dup := handled[id]; !dup && len(sample) == 0 {
						raw, _ := json.Marshal(l.JSON)
						sample = append(sample, string(raw))
					}
					handled[id] = inv.RequestID
				case strings.HasPrefix(l.Msg(), "courier: record failed"):
					f++
					if !seen[inv.RequestID] {
						failed++
						raw, _ := json.Marshal(l.JSON)
						sample = append(sample, string(raw))
					}
				}
			}
			if (h > 0 || f > 0) && !seen[inv.RequestID] {
				seen[inv.RequestID] = true
				requests = append(requests, inv.RequestID)
				env.Trail.Add(queue, fn, fmt.Sprintf("invocation %.8s: %d handled, %d reported failed", inv.RequestID, h, f))
			}
		}
	}
	fmt.Fprintf(env.Out, "  the function's own log lines (/aws/lambda/%s), e.g.:\n", w.function)
	for _, s := range sample {
		fmt.Fprintf(env.Out, "    %.300s\n", s)
	}
	return Result{Messages: n + 1, Summary: fmt.Sprintf(
		"the deployed worker %s handled the %d jobs in %d invocation(s) by LocalStack's event source mapping: its log lines name each message id; it reported the malformed one as a batch item failure (the Jobs queue's redrive policy takes it to the DLQ after 5 receives, spaced by the function's retry backoff: about 2 minutes)",
		w.function, n, len(requests))}, nil
}
