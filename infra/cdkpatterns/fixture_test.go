package cdkpatterns_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/infra/cdkpatterns"
	"github.com/courier-aws/courier/infra/internal/infratest"
	"github.com/courier-aws/courier/lambdas/contract"
)

func TestMain(m *testing.M) {
	// jsii prints a banner on every start under Node 20 (end of life for
	// jsii since 2026-10-30; it still works).
	if os.Getenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION") == "" {
		os.Setenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
	}
	dir, err := os.MkdirTemp("", "courier-infra-test-")
	if err != nil {
		panic(err)
	}
	fixtureDir = dir
	code := m.Run()
	jsii.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is one app holding a stack per construct under test, built and
// synthesized once for the whole test binary: jsii calls are slow, and
// every construct test reads the same templates.
type fixture struct {
	app    awscdk.App
	stacks map[string]awscdk.Stack

	queue, kmsQueue, fifoQueue cdkpatterns.QueueWithDLQ
	queueSender                awsiam.Role
	fn                         cdkpatterns.QueueFunction
	idem                       cdkpatterns.IdempotencyTable
	rr                         cdkpatterns.RequestResponse
	chain                      cdkpatterns.TopicQueueChain
	chainPublisher             awsiam.Role
	fifo                       cdkpatterns.FIFOChain
	recipients                 cdkpatterns.RecipientListTargets
	router                     awsiam.Role
	sg                         cdkpatterns.ScatterGather
	claims, kmsClaims          cdkpatterns.ClaimCheckBucket
	claimWriter, claimReader   awsiam.Role
	kmsClaimWriter             awsiam.Role

	templates map[string]map[string]any
}

var (
	fxOnce sync.Once
	fx     *fixture
	// fixtureDir holds the fixture's cloud assembly and Lambda assets; it
	// outlives every test (TestMain removes it).
	fixtureDir string
)

// stackNames: every stack of the fixture; the key stack holds only the
// test's own KMS key (a caller's key, whose policy is the caller's).
var stackNames = []string{"Keys", "Queues", "Function", "RequestResponse", "RequestResponseCompute", "Chain", "Fifo", "Recipients", "ScatterGather", "ClaimCheck"}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fxOnce.Do(func() { fx = newFixture(t) })
	if fx == nil {
		t.Fatal("fixture failed to build")
	}
	return fx
}

func newFixture(t *testing.T) *fixture {
	app, err := infratest.NewApp("../cdk.json", filepath.Join(fixtureDir, "cdk.out"))
	if err != nil {
		t.Fatal(err)
	}
	assets := filepath.Join(fixtureDir, "assets")
	if err := infratest.WriteAssets(assets); err != nil {
		t.Fatal(err)
	}
	f := &fixture{app: app, stacks: map[string]awscdk.Stack{}}
	for _, n := range stackNames {
		f.stacks[n] = awscdk.NewStack(f.app, jsii.String(n), nil)
	}
	infratest.ApplyNag(f.app)
	fn := cdkpatterns.FunctionOptions{AssetRoot: assets}
	role := func(stack, id string) awsiam.Role {
		return awsiam.NewRole(f.stacks[stack], jsii.String(id), &awsiam.RoleProps{AssumedBy: awsiam.NewAccountRootPrincipal()})
	}

	key := awskms.NewKey(f.stacks["Keys"], jsii.String("Key"), &awskms.KeyProps{EnableKeyRotation: jsii.Bool(true)})

	q := f.stacks["Queues"]
	f.queue = cdkpatterns.NewQueueWithDLQ(q, "Default", nil)
	f.kmsQueue = cdkpatterns.NewQueueWithDLQ(q, "Kms", &cdkpatterns.QueueWithDLQProps{EncryptionKey: key})
	f.fifoQueue = cdkpatterns.NewQueueWithDLQ(q, "Fifo", &cdkpatterns.QueueWithDLQProps{
		Fifo: true, ContentBasedDeduplication: true, HighThroughput: true, MaxReceiveCount: 3,
		VisibilityTimeout: awscdk.Duration_Minutes(jsii.Number(2)),
	})
	f.queueSender = role("Queues", "Sender")
	f.kmsQueue.GrantSend(f.queueSender)

	fs := f.stacks["Function"]
	workerQueue := cdkpatterns.NewQueueWithDLQ(fs, "Jobs", &cdkpatterns.QueueWithDLQProps{VisibilityTimeout: awscdk.Duration_Minutes(jsii.Number(5))})
	one := 2
	f.idem = cdkpatterns.NewIdempotencyTable(fs, "JobsIdempotency", &cdkpatterns.StateTableProps{Key: key})
	f.fn = cdkpatterns.NewQueueFunction(fs, "Worker", &cdkpatterns.QueueFunctionProps{
		Name:        "worker",
		Queue:       workerQueue,
		Environment: map[string]string{contract.EnvIdempotencyTable: *f.idem.Table.TableName(), contract.EnvRetryBackoff: "2s,10m"},
		FunctionOptions: cdkpatterns.FunctionOptions{
			AssetRoot: assets, LogLevel: "debug", Timeout: awscdk.Duration_Seconds(jsii.Number(45)),
			MemorySize: 512, ReservedConcurrency: &one, Tracing: awslambda.Tracing_ACTIVE,
			BatchSize: 5, MaxBatchingWindow: awscdk.Duration_Seconds(jsii.Number(10)), MaxConcurrency: 4,
		},
	})
	f.idem.Grant(f.fn.Role)

	f.rr = cdkpatterns.NewRequestResponse(f.stacks["RequestResponse"], "RR", &cdkpatterns.RequestResponseProps{
		Responder: fn, FunctionScope: f.stacks["RequestResponseCompute"],
	})

	f.chain = cdkpatterns.NewTopicQueueChain(f.stacks["Chain"], "Orders", &cdkpatterns.TopicQueueChainProps{
		Subscribers: []cdkpatterns.SubscriberProps{
			{Name: "all"},
			{Name: "eu", RawMessageDelivery: true, FilterPolicy: map[string]awssns.SubscriptionFilter{
				"region": awssns.SubscriptionFilter_StringFilter(&awssns.StringConditions{Allowlist: jsii.Strings("eu-west-1", "eu-central-1")}),
			}},
			{Name: "large", RawMessageDelivery: true, FilterPolicyWithMessageBody: map[string]awssns.FilterOrPolicy{
				"total": awssns.FilterOrPolicy_Filter(awssns.SubscriptionFilter_NumericFilter(&awssns.NumericConditions{GreaterThan: jsii.Number(100)})),
			}},
		},
	})
	f.chainPublisher = role("Chain", "Publisher")
	f.chain.GrantPublish(f.chainPublisher)

	f.fifo = cdkpatterns.NewFIFOChain(f.stacks["Fifo"], "Ledger", &cdkpatterns.FIFOChainProps{
		ContentBasedDeduplication: true,
		Subscribers:               []cdkpatterns.SubscriberProps{{Name: "balances", RawMessageDelivery: true}, {Name: "audit"}},
	})

	f.recipients = cdkpatterns.NewRecipientListTargets(f.stacks["Recipients"], "Regions", &cdkpatterns.RecipientListTargetsProps{
		Queues: []string{"us", "eu"}, Topics: []string{"audit"},
	})
	f.router = role("Recipients", "Router")
	f.recipients.GrantSend(f.router)

	f.sg = cdkpatterns.NewScatterGather(f.stacks["ScatterGather"], "Quotes", &cdkpatterns.ScatterGatherProps{
		Responders: []cdkpatterns.SubscriberProps{
			{Name: "a", RawMessageDelivery: true},
			{Name: "b", RawMessageDelivery: true, FilterPolicy: map[string]awssns.SubscriptionFilter{
				"size": awssns.SubscriptionFilter_StringFilter(&awssns.StringConditions{Allowlist: jsii.Strings("large")}),
			}},
		},
		Aggregator: fn,
	})

	cc := f.stacks["ClaimCheck"]
	f.claims = cdkpatterns.NewClaimCheckBucket(cc, "Payloads", nil)
	f.kmsClaims = cdkpatterns.NewClaimCheckBucket(cc, "KmsPayloads", &cdkpatterns.ClaimCheckBucketProps{
		Key: key, ExpiryDays: 30, AccessLogs: f.claims.Bucket, RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	f.claimWriter, f.claimReader, f.kmsClaimWriter = role("ClaimCheck", "Writer"), role("ClaimCheck", "Reader"), role("ClaimCheck", "KmsWriter")
	f.claims.GrantWrite(f.claimWriter)
	f.claims.GrantReadDelete(f.claimReader)
	f.kmsClaims.GrantWrite(f.kmsClaimWriter)
	f.kmsClaims.GrantRead(f.kmsClaimWriter)

	f.templates = map[string]map[string]any{}
	for _, n := range stackNames {
		f.templates[n] = infratest.Template(f.stacks[n])
	}
	return f
}

// template returns the assertions view of a fixture stack.
func (f *fixture) template(stack string) assertions.Template {
	return assertions.Template_FromJSON(&map[string]interface{}{"Resources": f.templates[stack]["Resources"]}, nil)
}

// has asserts that stack has a resource of type typ with properties like
// props (assertions' objectLike), reporting a mismatch as a test error
// instead of the panic jsii raises.
func (f *fixture) has(t *testing.T, stack, typ string, props any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: no %s like the one wanted:\n%v", stack, typ, r)
		}
	}()
	f.template(stack).HasResourceProperties(jsii.String(typ), props)
}

// count asserts the number of resources of type typ in stack.
func (f *fixture) count(t *testing.T, stack, typ string, want int) {
	t.Helper()
	if got := len(infratest.Resources(f.templates[stack], typ)); got != want {
		t.Errorf("%s: %d %s, want %d", stack, got, typ, want)
	}
}

// idOf returns the logical id that a Ref or Fn::GetAtt token of stack
// (a queue's ARN, a topic's ARN, a role's name, ...) points at.
func idOf(stack awscdk.Stack, token *string) string {
	switch v := stack.Resolve(token).(type) {
	case map[string]any:
		if r, ok := v["Ref"].(string); ok {
			return r
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
			s, _ := ga[0].(string)
			return s
		}
	}
	panic(fmt.Sprintf("not a Ref or GetAtt: %v", stack.Resolve(token)))
}

// ref is {"Ref": id}; arn is {"Fn::GetAtt": [id, "Arn"]}.
func ref(id string) map[string]any { return map[string]any{"Ref": id} }
func arn(id string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, "Arn"}} }

// policyActions returns the Allow actions of the identity policies of
// role (its DefaultPolicy), sorted, and the resources they name.
func policyActions(t *testing.T, tpl map[string]any, roleID string) []string {
	t.Helper()
	var out []string
	for _, p := range infratest.Resources(tpl, "AWS::IAM::Policy") {
		props := infratest.Props(p)
		roles, _ := props["Roles"].([]any)
		if !slices.ContainsFunc(roles, func(r any) bool { m, _ := r.(map[string]any); return m["Ref"] == roleID }) {
			continue
		}
		doc, _ := props["PolicyDocument"].(map[string]any)
		sts, _ := doc["Statement"].([]any)
		for _, s := range sts {
			st, _ := s.(map[string]any)
			switch a := st["Action"].(type) {
			case string:
				out = append(out, a)
			case []any:
				for _, x := range a {
					out = append(out, x.(string))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func contains(haystack []string, needle string) bool {
	return slices.ContainsFunc(haystack, func(s string) bool { return strings.Contains(s, needle) })
}

// stmt matches a policy document holding a statement like st.
func stmt(st map[string]any) map[string]any {
	return map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&st)})}
}
