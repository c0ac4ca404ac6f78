package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

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

	logs := &functionLogs{cfg: w.cfg, endpoint: env.Endpoint}
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
		invs, err := logs.invocations(ctx, w.function, since)
		if err != nil && !errors.Is(err, errNoLogGroup) {
			return Result{}, err
		}
		for _, inv := range invs {
			var h, f int
			for _, l := range inv.lines {
				switch id, _ := l["message_id"].(string); {
				case !ours[id]:
				case l["msg"] == "handled":
					h++
					if _, dup := handled[id]; !dup && len(sample) == 0 {
						raw, _ := json.Marshal(l)
						sample = append(sample, string(raw))
					}
					handled[id] = inv.requestID
				case strings.HasPrefix(fmt.Sprint(l["msg"]), "courier: record failed"):
					f++
					if !seen[inv.requestID] {
						failed++
						raw, _ := json.Marshal(l)
						sample = append(sample, string(raw))
					}
				}
			}
			if (h > 0 || f > 0) && !seen[inv.requestID] {
				seen[inv.requestID] = true
				requests = append(requests, inv.requestID)
				env.Trail.Add(queue, fn, fmt.Sprintf("invocation %.8s: %d handled, %d reported failed", inv.requestID, h, f))
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

// functionLogs reads a deployed function's log lines from LocalStack's
// CloudWatch Logs, calling its JSON API directly (signed as the SDK
// would): the module does not depend on the CloudWatch Logs client.
type functionLogs struct {
	cfg      aws.Config
	endpoint string
}

// invocation is one invocation's log lines: the function's JSON lines
// between LocalStack's START and END lines for it.
type invocation struct {
	requestID string
	lines     []map[string]any
}

var errNoLogGroup = errors.New("no such log group (the function has not run yet)")

var startLine = regexp.MustCompile(`^START RequestId: (\S+)`)

// invocations returns the invocations of function logged since since.
func (l *functionLogs) invocations(ctx context.Context, function string, since time.Time) ([]invocation, error) {
	in := map[string]any{"logGroupName": "/aws/lambda/" + function, "startTime": since.Add(-time.Second).UnixMilli(), "interleaved": true}
	var out []invocation
	current := map[string]int{} // stream -> index in out of its invocation under way
	for {
		var page struct {
			Events []struct {
				LogStreamName string `json:"logStreamName"`
				Message       string `json:"message"`
			} `json:"events"`
			NextToken string `json:"nextToken"`
		}
		if err := l.call(ctx, "FilterLogEvents", in, &page); err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			if m := startLine.FindStringSubmatch(e.Message); m != nil {
				out = append(out, invocation{requestID: m[1]})
				current[e.LogStreamName] = len(out) - 1
				continue
			}
			i, ok := current[e.LogStreamName]
			var v map[string]any
			if !ok || !strings.HasPrefix(e.Message, "{") || json.Unmarshal([]byte(e.Message), &v) != nil {
				continue
			}
			out[i].lines = append(out[i].lines, v)
		}
		if page.NextToken == "" || len(page.Events) == 0 {
			return out, nil
		}
		in["nextToken"] = page.NextToken
	}
}

func (l *functionLogs) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Logs_20140328."+op)
	creds, err := l.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "logs", l.cfg.Region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		if strings.Contains(string(data), "ResourceNotFoundException") {
			return errNoLogGroup
		}
		return fmt.Errorf("logs %s: HTTP %d: %s", op, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}
