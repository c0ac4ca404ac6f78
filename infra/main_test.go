package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/infra/internal/infratest"
	"github.com/courier-aws/courier/lambdas/contract"
)

func TestMain(m *testing.M) {
	if os.Getenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION") == "" {
		os.Setenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
	}
	dir, err := os.MkdirTemp("", "courier-infra-app-test-")
	if err != nil {
		panic(err)
	}
	appDir = dir
	code := m.Run()
	jsii.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	appDir  string
	appOnce sync.Once
	built   *builtApp
)

// builtApp is the app as `cdk synth` makes it (cdk.json's context), with
// placeholder assets, synthesized once for every test here.
type builtApp struct {
	courier
	templates map[string]map[string]any // by stack name
}

func getApp(t *testing.T) *builtApp {
	t.Helper()
	appOnce.Do(func() {
		app, err := infratest.NewApp("cdk.json", filepath.Join(appDir, "cdk.out"))
		if err != nil {
			t.Fatal(err)
		}
		assets := filepath.Join(appDir, "assets")
		if err := infratest.WriteAssets(assets); err != nil {
			t.Fatal(err)
		}
		infratest.ApplyNag(app)
		b := &builtApp{courier: newCourier(app, config{LambdaAssets: assets, LogLevel: "info"})}
		b.templates = map[string]map[string]any{
			MessagingStack: infratest.Template(b.Messaging),
			ComputeStack:   infratest.Template(b.Compute),
		}
		built = b
	})
	if built == nil {
		t.Fatal("the app failed to build")
	}
	return built
}

func (b *builtApp) stacks() map[string]awscdk.Stack {
	return map[string]awscdk.Stack{MessagingStack: b.Messaging, ComputeStack: b.Compute}
}

// TestStacks: the messaging stack holds no compute (it deploys where
// Lambda cannot run), the compute stack every function, once, and it
// depends on the messaging stack.
func TestStacks(t *testing.T) {
	b := getApp(t)
	m, c := b.templates[MessagingStack], b.templates[ComputeStack]
	for _, typ := range []string{"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping", "AWS::IAM::Role", "AWS::IAM::Policy"} {
		if n := len(infratest.Resources(m, typ)); n != 0 {
			t.Errorf("%s holds %d %s", MessagingStack, n, typ)
		}
	}
	for _, typ := range []string{"AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::DynamoDB::Table", "AWS::S3::Bucket"} {
		if n := len(infratest.Resources(c, typ)); n != 0 {
			t.Errorf("%s holds %d %s", ComputeStack, n, typ)
		}
	}
	var names []string
	for _, fe := range infratest.FunctionEnvironments(c) {
		names = append(names, fe.Name)
	}
	slices.Sort(names)
	var want []string
	for _, f := range contract.Functions() {
		want = append(want, f.Name)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("functions %v, want one of each of lambdas/contract: %v", names, want)
	}
	esms := infratest.Resources(c, "AWS::Lambda::EventSourceMapping")
	if len(esms) != len(want)+1 {
		t.Errorf("%d event source mappings, want %d: one per function, and the subscriber's on the claim-checked orders", len(esms), len(want)+1)
	}
	for id, r := range esms {
		if rt := infratest.Props(r)["FunctionResponseTypes"]; !slices.Equal(toStrings(rt), []string{"ReportBatchItemFailures"}) {
			t.Errorf("%s: FunctionResponseTypes %v", id, rt)
		}
	}
	deps := b.Compute.Dependencies()
	if deps == nil || !slices.ContainsFunc(*deps, func(s awscdk.Stack) bool { return *s.StackName() == MessagingStack }) {
		t.Errorf("%s does not depend on %s", ComputeStack, MessagingStack)
	}
}

// TestNag: no unsuppressed AwsSolutions or Serverless finding in either
// stack; every suppression has its reason, and no rule is suppressed
// beyond the known few.
func TestNag(t *testing.T) {
	b := getApp(t)
	allowed := []string{
		"AwsSolutions-IAM5",                              // responder: reply queues by name prefix; subscriber: claim-check objects
		"AwsSolutions-S1",                                // the claim-check bucket's access log bucket
		"Serverless-SQSRedrivePolicy",                    // DLQs
		"Serverless-LambdaDLQ",                           // SQS-invoked functions
		"Serverless-LambdaEventSourceMappingDestination", // SQS mappings take none
		"Serverless-LambdaTracing",                       // X-Ray opt-in
	}
	for name, stack := range b.stacks() {
		infratest.Fail(t, name, infratest.NagFindings(stack))
		infratest.Fail(t, name, infratest.SuppressionsWithoutReason(b.templates[name]))
		for rule, ids := range infratest.Suppressions(b.templates[name]) {
			if !slices.Contains(allowed, rule) {
				t.Errorf("%s: %s suppressed on %v: a new suppression needs review (and a place in this list)", name, rule, ids)
			}
		}
	}
	iam5 := infratest.Suppressions(b.templates[ComputeStack])["AwsSolutions-IAM5"]
	if len(iam5) == 0 || slices.ContainsFunc(iam5, func(id string) bool {
		return !strings.Contains(id, "ResponderRole") && !strings.Contains(id, "SubscriberRole")
	}) {
		t.Errorf("AwsSolutions-IAM5 suppressed on %v, want the responder's and the subscriber's roles (and their policies) only", iam5)
	}
	if s1 := infratest.Suppressions(b.templates[MessagingStack])["AwsSolutions-S1"]; len(s1) != 1 || !strings.HasPrefix(s1[0], "OrderPayloadsAccessLogs") {
		t.Errorf("AwsSolutions-S1 suppressed on %v, want the claim-check access log bucket only", s1)
	}
}

// TestPolicies: every queue has a DLQ (but the DLQs) and encryption;
// every queue policy statement that lets SNS send names its topic
// (aws:SourceArn); no Allow statement has a wildcard action.
func TestPolicies(t *testing.T) {
	b := getApp(t)
	for name, tpl := range b.templates {
		infratest.Fail(t, name, infratest.QueueProblems(tpl))
		infratest.Fail(t, name, infratest.SNSStatementsWithoutSourceArn(tpl))
		infratest.Fail(t, name, infratest.WildcardActions(tpl))
	}
	// Not vacuous: the app has SNS->SQS statements to check.
	if n := len(infratest.Resources(b.templates[MessagingStack], "AWS::SNS::Subscription")); n == 0 {
		t.Error("no subscriptions in the messaging stack")
	}
}

// TestContract: for each Lambda function, its Environment.Variables keys
// are exactly contract.Lookup(name).Env.
func TestContract(t *testing.T) {
	b := getApp(t)
	for name, tpl := range b.templates {
		infratest.Fail(t, name, infratest.ContractProblems(tpl))
	}
	envs := infratest.FunctionEnvironments(b.templates[ComputeStack])
	if len(envs) == 0 {
		t.Fatal("no functions")
	}
	for id, fe := range envs {
		fn, ok := contract.Lookup(fe.Name)
		if !ok {
			t.Errorf("%s: no contract function %q", id, fe.Name)
			continue
		}
		want := slices.Clone(fn.Env)
		slices.Sort(want)
		if !slices.Equal(fe.Env, want) {
			t.Errorf("%s (%s): Environment.Variables %v, contract %v", id, fe.Name, fe.Env, want)
		}
	}
}

func TestCheckAssets(t *testing.T) {
	root := infratest.AssetRoot(t)
	if err := checkAssets(root); err != nil {
		t.Errorf("complete assets: %v", err)
	}
	if err := os.Remove(filepath.Join(root, "aggregator", "bootstrap")); err != nil {
		t.Fatal(err)
	}
	err := checkAssets(root)
	if err == nil || !strings.Contains(err.Error(), "make lambdas") || !strings.Contains(err.Error(), "aggregator") {
		t.Errorf("missing aggregator asset: %v, want an error naming it and `make lambdas`", err)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestClaimCheckedOrders: orders published through the claim check, whose
// pointer bodies the "large" subscription's body filter cannot read, reach
// the subscriber: the Orders topic sends them (raw, by the attribute only
// pointers carry) to a queue of their own, which the subscriber consumes
// too.
func TestClaimCheckedOrders(t *testing.T) {
	b := getApp(t)
	q := b.Orders.Subscribers["claimchecked"]
	if q.Queue == nil || b.SubscriberClaimChecked == nil {
		t.Fatal("no claimchecked subscriber, or no mapping of it to the subscriber")
	}
	queueID := *b.Messaging.GetLogicalId(q.Queue.Node().DefaultChild().(awscdk.CfnElement))
	found := false
	for id, r := range infratest.Resources(b.templates[MessagingStack], "AWS::SNS::Subscription") {
		p := infratest.Props(r)
		ep, _ := p["Endpoint"].(map[string]any)
		if ga, _ := ep["Fn::GetAtt"].([]any); len(ga) == 0 || ga[0] != queueID {
			continue
		}
		found = true
		fp, _ := p["FilterPolicy"].(map[string]any)
		if got := fmt.Sprint(fp["ExtendedPayloadSize"]); got != "[map[exists:true]]" || len(fp) != 1 || p["RawMessageDelivery"] != true || p["RedrivePolicy"] == nil {
			t.Errorf("%s: FilterPolicy %v, RawMessageDelivery %v, RedrivePolicy %v: want ExtendedPayloadSize exists, raw, the queue's DLQ",
				id, fp, p["RawMessageDelivery"], p["RedrivePolicy"])
		}
	}
	if !found {
		t.Errorf("no subscription of the claimchecked queue %s", queueID)
	}
	var subscriber string
	for id, fe := range infratest.FunctionEnvironments(b.templates[ComputeStack]) {
		if fe.Name == "subscriber" {
			subscriber = id
		}
	}
	n := 0
	for id, r := range infratest.Resources(b.templates[ComputeStack], "AWS::Lambda::EventSourceMapping") {
		p := infratest.Props(r)
		if fmt.Sprint(p["FunctionName"]) != fmt.Sprint(map[string]any{"Ref": subscriber}) {
			continue
		}
		n++
		if !strings.Contains(fmt.Sprint(p["EventSourceArn"]), "claimchecked") && !strings.Contains(fmt.Sprint(p["EventSourceArn"]), "Orderslarge") {
			t.Errorf("%s: the subscriber's mapping on %v", id, p["EventSourceArn"])
		}
	}
	if n != 2 {
		t.Errorf("the subscriber (%s) has %d mappings, want 2: the large orders and the claim-checked ones", subscriber, n)
	}
}
