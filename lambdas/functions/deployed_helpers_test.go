package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/internal/funclogs"
)

// The tests named TestDeployed* run against what `make deploy-local` (or
// infra/scripts/deploy-local.sh) deployed to the LocalStack that
// .courier/localstack.env names: both stacks, the functions run by
// LocalStack's courier executor and fed by LocalStack's own event source
// mappings. Without a deployment they skip, saying why, unless
//
//	COURIER_REQUIRE_DEPLOYED=1  a missing or broken deployment fails them
//	                            (make test sets it for the run after its deploy)
//	COURIER_SKIP_DEPLOYED=1     they skip (make test's main run: they run in
//	                            a step of their own once the deploy is done)
//	COURIER_DEPLOY_LOG=FILE     the deploy's log, named when they fail
const (
	envRequireDeployed = "COURIER_REQUIRE_DEPLOYED"
	envSkipDeployed    = "COURIER_SKIP_DEPLOYED"
	envDeployLog       = "COURIER_DEPLOY_LOG"
	// functionTag is infra/cdkpatterns.FunctionTag (another module): the
	// tag naming a function's entry in lambdas/contract.
	functionTag = "courier:function"
)

// deployment is what the tests found deployed.
type deployment struct {
	b   *backend.Backend
	out map[string]string // CourierMessaging's outputs
	lam *lambda.Client
	fns map[string]deployedFunction // by lambdas/contract name
}

// deployedFunction is one function of CourierCompute and its SQS mapping.
type deployedFunction struct {
	Name     string // the function's name in Lambda
	Env      map[string]string
	Timeout  time.Duration
	Mapping  ltypes.EventSourceMappingConfiguration
	QueueURL string // the queue its mapping consumes
}

// noDeployment skips t, or fails it when make test asked for the deployed
// tests (COURIER_REQUIRE_DEPLOYED=1).
func noDeployment(t *testing.T, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(envRequireDeployed) == "1" {
		if log := os.Getenv(envDeployLog); log != "" {
			why += " (the deploy's log: " + log + ")"
		}
		t.Fatalf("%s=1 and %s", envRequireDeployed, why)
	}
	t.Skip(why)
}

// requireDeployment returns the deployment on this LocalStack, or skips
// (fails with COURIER_REQUIRE_DEPLOYED=1) saying what is missing.
func requireDeployment(t *testing.T) *deployment {
	t.Helper()
	if os.Getenv(envSkipDeployed) == "1" {
		t.Skipf("%s=1: make test runs the deployed tests in a step of their own, once its deploy is done", envSkipDeployed)
	}
	var b *backend.Backend
	if os.Getenv(envRequireDeployed) == "1" {
		// backend.Require skips when LocalStack is absent; here that fails.
		t.Run("localstack", func(t *testing.T) { b = backend.Require(t, "localstack") })
		if b == nil {
			t.Fatalf("%s=1 but LocalStack is not running (scripts/emulator.sh start localstack)", envRequireDeployed)
		}
	} else {
		b = backend.Require(t, "localstack")
	}
	out := deployedOutputs(t, b)
	d := &deployment{b: b, out: out, lam: lambda.NewFromConfig(b.Config()), fns: map[string]deployedFunction{}}
	ctx := context.Background()
	if _, err := b.SQS().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(out["JobsQueueUrl"])}); err != nil {
		noDeployment(t, "the deployed Jobs queue is not on this LocalStack (run make deploy-local): %v", err)
	}
	p := lambda.NewListFunctionsPaginator(d.lam, &lambda.ListFunctionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListFunctions: %v", err)
		}
		for _, f := range page.Functions {
			fn, err := d.lam.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: f.FunctionName})
			if err != nil {
				continue // removed meanwhile: someone else's
			}
			name := fn.Tags[functionTag]
			if name == "" {
				continue
			}
			df := deployedFunction{Name: aws.ToString(f.FunctionName), Timeout: time.Duration(aws.ToInt32(f.Timeout)) * time.Second}
			if f.Environment != nil {
				df.Env = f.Environment.Variables
			}
			maps, err := d.lam.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: f.FunctionName})
			if err != nil {
				t.Fatalf("ListEventSourceMappings %s: %v", df.Name, err)
			}
			for _, m := range maps.EventSourceMappings {
				if strings.HasPrefix(aws.ToString(m.EventSourceArn), "arn:aws:sqs:") {
					df.Mapping = m
					df.QueueURL = queueURL(t, b, aws.ToString(m.EventSourceArn))
				}
			}
			// Of two functions for one name (a stale stack beside this
			// one), the one on this deployment's queues wins.
			if old, ok := d.fns[name]; ok && d.ours(old) && !d.ours(df) {
				continue
			}
			d.fns[name] = df
		}
	}
	for _, name := range []string{"worker", "responder", "aggregator", "subscriber"} {
		if f, ok := d.fns[name]; !ok || f.Mapping.UUID == nil {
			noDeployment(t, "CourierCompute is not deployed on this LocalStack (no %s function with an SQS mapping; run make deploy-local)", name)
		}
	}
	return d
}

// ours tells whether f consumes a queue of this deployment's outputs (or
// reads its table).
func (d *deployment) ours(f deployedFunction) bool {
	for _, v := range d.out {
		if v == f.QueueURL || v == f.Env["COURIER_AGGREGATE_TABLE"] {
			return true
		}
	}
	return false
}

// fn returns the deployed function lambdas/contract calls name.
func (d *deployment) fn(name string) deployedFunction { return d.fns[name] }

// queueURL returns the URL of the queue arn names.
func queueURL(t *testing.T, b *backend.Backend, arn string) string {
	t.Helper()
	name := arn[strings.LastIndex(arn, ":")+1:]
	out, err := b.SQS().GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetQueueUrl %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// deployedOutputs reads the CourierMessaging outputs `make deploy-local`
// wrote (.courier/messaging-outputs.json), or skips saying why.
func deployedOutputs(t *testing.T, b *backend.Backend) map[string]string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		data, err := os.ReadFile(filepath.Join(dir, ".courier", "messaging-outputs.json"))
		if err == nil {
			var stacks map[string]map[string]string
			if err := json.Unmarshal(data, &stacks); err != nil {
				t.Fatalf("messaging-outputs.json: %v", err)
			}
			out := stacks["CourierMessaging"]
			if !strings.HasPrefix(out["JobsQueueUrl"], b.Endpoint+"/") {
				noDeployment(t, "the deployment in .courier/messaging-outputs.json is not on this LocalStack (%s): run make deploy-local", b.Endpoint)
			}
			return out
		}
		if parent := filepath.Dir(dir); parent != dir {
			dir = parent
			continue
		}
		noDeployment(t, "no deployment: run make deploy-local (.courier/messaging-outputs.json is missing)")
	}
}

// redrive is a queue's redrive policy.
type redrive struct {
	DLQURL          string
	MaxReceiveCount int
}

// redriveOf reads the redrive policy of the queue at url.
func redriveOf(t *testing.T, b *backend.Backend, url string) redrive {
	t.Helper()
	attrs, err := b.SQS().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"` // a number, or a string on some emulators
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &p); err != nil {
		t.Fatalf("%s: RedrivePolicy %q: %v", url, attrs.Attributes["RedrivePolicy"], err)
	}
	var n int
	if _, err := fmt.Sscan(strings.Trim(string(p.MaxReceiveCount), `"`), &n); err != nil {
		t.Fatalf("%s: maxReceiveCount %s: %v", url, p.MaxReceiveCount, err)
	}
	return redrive{DLQURL: queueURL(t, b, p.DeadLetterTargetArn), MaxReceiveCount: n}
}

// takeFromDLQ receives from a DLQ the messages keep selects, deletes them
// and returns them; the others are made visible again at once for whoever
// they belong to (another test, a demo). Safe in a goroutine of the test.
func takeFromDLQ(b *backend.Backend, dlq string, keep func(types.Message) bool) ([]types.Message, error) {
	ctx := context.Background()
	r, err := b.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, err
	}
	var out []types.Message
	for _, m := range r.Messages {
		if keep(m) {
			out = append(out, m)
			_, _ = b.SQS().DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(dlq), ReceiptHandle: m.ReceiptHandle})
			continue
		}
		_, _ = b.SQS().ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(dlq), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
	}
	return out, nil
}

// ---------------------------------------------------------------- logs

// functionLogs reads what a deployed function logged (internal/funclogs).
type functionLogs struct{ *funclogs.Reader }

func newFunctionLogs(b *backend.Backend) *functionLogs {
	return &functionLogs{funclogs.New(b.Config(), b.Endpoint)}
}

// logEvent is one line a function logged.
type logEvent = funclogs.Event

// events returns what function name logged since since, oldest first.
func (l *functionLogs) events(ctx context.Context, function string, since time.Time) ([]logEvent, error) {
	return l.Events(ctx, function, since)
}

// errNoLogGroup: the function has not logged yet.
var errNoLogGroup = funclogs.ErrNoLogGroup

// waitLogs polls a function's logs since since until done holds for
// them, failing the test after timeout.
func (l *functionLogs) waitLogs(t *testing.T, function string, since time.Time, timeout time.Duration, what string, done func([]logEvent) bool) []logEvent {
	t.Helper()
	evs, ok := l.pollLogs(t, function, since, timeout, done)
	if !ok {
		t.Fatalf("timed out after %v waiting for %s in the logs of %s (%d lines since %s)", timeout, what, function, len(evs), since.Format(time.TimeOnly))
	}
	return evs
}

// pollLogs is waitLogs that reports a timeout instead of failing.
func (l *functionLogs) pollLogs(t *testing.T, function string, since time.Time, timeout time.Duration, done func([]logEvent) bool) ([]logEvent, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs, err := l.events(context.Background(), function, since)
		if err != nil && !errors.Is(err, errNoLogGroup) {
			t.Fatal(err)
		}
		if done(evs) {
			return evs, true
		}
		if time.Now().After(deadline) {
			return evs, false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// byMsg returns, of the JSON lines msg names, field key (a message id).
func byMsg(evs []logEvent, msg, key string) []string {
	var out []string
	for _, e := range evs {
		if e.Msg() == msg {
			out = append(out, e.Str(key))
		}
	}
	return out
}

// count returns how often each element occurs.
func count(xs []string) map[string]int {
	m := map[string]int{}
	for _, x := range xs {
		m[x]++
	}
	return m
}
