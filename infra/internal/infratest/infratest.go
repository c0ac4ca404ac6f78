// Package infratest holds what the infra tests share: an app with the
// context of cdk.json, placeholder Lambda assets, the cdk-nag packs and the
// policy checks every synthesized template must pass.
package infratest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/courier-aws/courier/lambdas/contract"
)

// FunctionTag is the tag naming a function's lambdas/contract entry
// (cdkpatterns.FunctionTag; infratest does not import cdkpatterns, whose
// tests use it).
const FunctionTag = "courier:function"

// NewApp returns an app with the context of the cdk.json at cdkJSON (its
// feature flags, so that tests synthesize what `cdk synth` does), writing
// its cloud assembly into outdir. Keys of override replace cdk.json's.
func NewApp(cdkJSON, outdir string, override ...map[string]any) (awscdk.App, error) {
	b, err := os.ReadFile(cdkJSON)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", cdkJSON, err)
	}
	for _, o := range override {
		for k, v := range o {
			cfg.Context[k] = v
		}
	}
	return awscdk.NewApp(&awscdk.AppProps{Context: &cfg.Context, Outdir: jsii.String(outdir)}), nil
}

// WriteAssets writes a placeholder <name>/bootstrap under root for every
// function of lambdas/contract: enough for CDK to hash and package.
func WriteAssets(root string) error {
	for _, f := range contract.Functions() {
		dir := filepath.Join(root, f.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("placeholder for "+f.Name+"\n"), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// AssetRoot returns a test's temporary directory with WriteAssets' placeholders.
func AssetRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	if err := WriteAssets(root); err != nil {
		t.Fatal(err)
	}
	return root
}

// ApplyNag adds cdk-nag's AwsSolutions and Serverless packs to scope.
func ApplyNag(scope constructs.IConstruct) {
	props := &cdknag.NagPackProps{Verbose: jsii.Bool(true)}
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(props), nil)
	awscdk.Aspects_Of(scope).Add(cdknag.NewServerlessChecks(props), nil)
}

// NagFindings returns every unsuppressed error and warning of the packs
// ApplyNag adds, on stack (and its children), as "path: message".
// Each call synthesizes the app again (the assertions module forces it).
// With cdk.json's @aws-cdk/core:annotationsInValidationReport, an error
// fails the synthesis itself: that is reported as one finding (the
// errors are printed above it).
func NagFindings(stack awscdk.Stack) (out []string) {
	defer func() {
		if r := recover(); r != nil {
			out = append(out, fmt.Sprintf("synthesis failed: %v", r))
		}
	}()
	a := assertions.Annotations_FromStack(stack)
	match := assertions.Match_StringLikeRegexp(jsii.String("(AwsSolutions|Serverless)-.*"))
	for _, msgs := range []*[]*cxapi.SynthesisMessage{
		a.FindError(jsii.String("*"), match),
		a.FindWarning(jsii.String("*"), match),
	} {
		for _, m := range *msgs {
			out = append(out, fmt.Sprintf("%s: %v", *m.Id, m.Entry.Data))
		}
	}
	return out
}

// Template returns the synthesized template of stack as JSON values.
func Template(stack awscdk.Stack) map[string]any {
	return *assertions.Template_FromStack(stack, nil).ToJSON()
}

// Resources returns the resources of tpl of type typ, by logical id.
func Resources(tpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	res, _ := tpl["Resources"].(map[string]any)
	for id, r := range res {
		if rm, ok := r.(map[string]any); ok && rm["Type"] == typ {
			out[id] = rm
		}
	}
	return out
}

// Props returns a resource's Properties.
func Props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// ---------------------------------------------------------------- policy

// QueueProblems returns each queue without a redrive policy (other than
// the dead-letter queues, the targets of a queue's or a subscription's
// redrive policy) and each queue without encryption at rest.
func QueueProblems(tpl map[string]any) []string {
	queues := Resources(tpl, "AWS::SQS::Queue")
	dlqs := map[string]bool{}
	for _, typ := range []string{"AWS::SQS::Queue", "AWS::SNS::Subscription"} {
		for _, r := range Resources(tpl, typ) {
			if id := getAttTarget(redriveTarget(Props(r)["RedrivePolicy"])); id != "" {
				dlqs[id] = true
			}
		}
	}
	var out []string
	for _, id := range sortedIDs(queues) {
		p := Props(queues[id])
		if p["RedrivePolicy"] == nil && !dlqs[id] {
			out = append(out, id+": no DLQ (no RedrivePolicy, and no queue or subscription uses it as its DLQ)")
		}
		if p["SqsManagedSseEnabled"] != true && p["KmsMasterKeyId"] == nil {
			out = append(out, id+": not encrypted (neither SqsManagedSseEnabled nor KmsMasterKeyId)")
		}
	}
	return out
}

func redriveTarget(rp any) any {
	m, _ := rp.(map[string]any)
	if m == nil {
		return nil
	}
	return m["deadLetterTargetArn"]
}

// getAttTarget returns X of {"Fn::GetAtt": [X, "Arn"]}.
func getAttTarget(v any) string {
	m, _ := v.(map[string]any)
	ga, _ := m["Fn::GetAtt"].([]any)
	if len(ga) == 2 && ga[1] == "Arn" {
		s, _ := ga[0].(string)
		return s
	}
	return ""
}

// SNSStatementsWithoutSourceArn returns each statement of a queue policy
// that lets SNS send without an aws:SourceArn condition naming the topic.
func SNSStatementsWithoutSourceArn(tpl map[string]any) []string {
	var out []string
	pols := Resources(tpl, "AWS::SQS::QueuePolicy")
	for _, id := range sortedIDs(pols) {
		for i, st := range statements(Props(pols[id])["PolicyDocument"]) {
			if st["Effect"] != "Allow" || !principalIncludes(st["Principal"], "sns.amazonaws.com") {
				continue
			}
			if !hasSourceArn(st["Condition"]) {
				out = append(out, fmt.Sprintf("%s statement %d: lets SNS send with no aws:SourceArn condition", id, i))
			}
		}
	}
	return out
}

func principalIncludes(p any, service string) bool {
	m, _ := p.(map[string]any)
	if m == nil {
		return false
	}
	return slices.Contains(strs(m["Service"]), service)
}

func hasSourceArn(cond any) bool {
	m, _ := cond.(map[string]any)
	for _, op := range []string{"ArnEquals", "ArnLike", "StringEquals", "StringLike"} {
		if c, ok := m[op].(map[string]any); ok && c["aws:SourceArn"] != nil {
			return true
		}
	}
	return false
}

// policySources: where templates hold policy documents.
var policySources = []struct{ typ, field string }{
	{"AWS::IAM::Policy", "PolicyDocument"},
	{"AWS::IAM::ManagedPolicy", "PolicyDocument"},
	{"AWS::SQS::QueuePolicy", "PolicyDocument"},
	{"AWS::SNS::TopicPolicy", "PolicyDocument"},
	{"AWS::KMS::Key", "KeyPolicy"},
	{"AWS::DynamoDB::Table", "ResourcePolicy"},
}

// WildcardActions returns each Allow statement, of any policy in tpl
// (identity policies, roles' inline policies, queue, topic and key
// policies), whose Action contains "*" ("*", "sqs:*", "kms:GenerateDataKey*")
// or that uses NotAction. Deny statements are not reported: a Deny of
// "sqs:*" without TLS only narrows access (and is what SQS TLS-only
// policies, and cdk-nag's AwsSolutions-SQS4, need).
func WildcardActions(tpl map[string]any) []string {
	var out []string
	check := func(where string, doc any) {
		for i, st := range statements(doc) {
			if st["Effect"] != "Allow" {
				continue
			}
			if st["NotAction"] != nil {
				out = append(out, fmt.Sprintf("%s statement %d: Allow with NotAction", where, i))
			}
			for _, a := range strs(st["Action"]) {
				if strings.Contains(a, "*") {
					out = append(out, fmt.Sprintf("%s statement %d: wildcard action %q", where, i, a))
				}
			}
		}
	}
	for _, src := range policySources {
		rs := Resources(tpl, src.typ)
		for _, id := range sortedIDs(rs) {
			check(id, Props(rs[id])[src.field])
		}
	}
	roles := Resources(tpl, "AWS::IAM::Role")
	for _, id := range sortedIDs(roles) {
		pols, _ := Props(roles[id])["Policies"].([]any)
		for j, p := range pols {
			pm, _ := p.(map[string]any)
			check(fmt.Sprintf("%s inline policy %d", id, j), pm["PolicyDocument"])
		}
	}
	return out
}

func statements(doc any) []map[string]any {
	d, _ := doc.(map[string]any)
	var out []map[string]any
	switch s := d["Statement"].(type) {
	case []any:
		for _, x := range s {
			if m, ok := x.(map[string]any); ok {
				out = append(out, m)
			}
		}
	case map[string]any:
		out = append(out, s)
	}
	return out
}

// strs returns v as a list of strings: a string, or the strings of a list.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// ---------------------------------------------------------------- contract

// FunctionEnvironments returns, for each Lambda function of tpl, its
// lambdas/contract name (its FunctionTag) and the names of its
// environment variables, sorted; by logical id.
func FunctionEnvironments(tpl map[string]any) map[string]FunctionEnv {
	out := map[string]FunctionEnv{}
	for id, r := range Resources(tpl, "AWS::Lambda::Function") {
		p := Props(r)
		fe := FunctionEnv{}
		tags, _ := p["Tags"].([]any)
		for _, t := range tags {
			if tm, ok := t.(map[string]any); ok && tm["Key"] == FunctionTag {
				fe.Name, _ = tm["Value"].(string)
			}
		}
		env, _ := p["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		for k := range vars {
			fe.Env = append(fe.Env, k)
		}
		sort.Strings(fe.Env)
		out[id] = fe
	}
	return out
}

// FunctionEnv is a function's contract name and variable names.
type FunctionEnv struct {
	Name string
	Env  []string
}

func sortedIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Fail reports each problem as a test error, under what.
func Fail(t testing.TB, what string, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("%s: %s", what, p)
	}
}

// ContractProblems returns, for each Lambda function of tpl, a problem if
// it names no lambdas/contract function (FunctionTag) or if the names of
// its environment variables are not exactly the ones contract lists.
func ContractProblems(tpl map[string]any) []string {
	var out []string
	envs := FunctionEnvironments(tpl)
	for _, id := range sortedIDs(envs) {
		fe := envs[id]
		fn, ok := contract.Lookup(fe.Name)
		if !ok {
			out = append(out, fmt.Sprintf("%s: tag %s=%q names no function of lambdas/contract", id, FunctionTag, fe.Name))
			continue
		}
		want := slices.Clone(fn.Env)
		sort.Strings(want)
		if !slices.Equal(fe.Env, want) {
			out = append(out, fmt.Sprintf("%s (%s): environment %v, lambdas/contract says %v", id, fe.Name, fe.Env, want))
		}
	}
	return out
}

// SuppressionsWithoutReason returns each cdk-nag suppression in tpl's
// metadata whose reason is missing or too short to say anything.
func SuppressionsWithoutReason(tpl map[string]any) []string {
	var out []string
	res, _ := tpl["Resources"].(map[string]any)
	for _, id := range sortedIDs(res) {
		r, _ := res[id].(map[string]any)
		md, _ := r["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, x := range rules {
			s, _ := x.(map[string]any)
			if reason, _ := s["reason"].(string); len(strings.Fields(reason)) < 8 {
				out = append(out, fmt.Sprintf("%s: suppression of %v has no real reason (%q)", id, s["id"], reason))
			}
		}
	}
	return out
}

// Suppressions returns the cdk-nag suppressions of tpl: rule id -> the
// logical ids of the resources that suppress it.
func Suppressions(tpl map[string]any) map[string][]string {
	out := map[string][]string{}
	res, _ := tpl["Resources"].(map[string]any)
	for _, id := range sortedIDs(res) {
		r, _ := res[id].(map[string]any)
		md, _ := r["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, x := range rules {
			s, _ := x.(map[string]any)
			rule, _ := s["id"].(string)
			out[rule] = append(out[rule], id)
		}
	}
	return out
}
