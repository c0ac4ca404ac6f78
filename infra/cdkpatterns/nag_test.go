package cdkpatterns_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/infra/internal/infratest"
)

// TestNag: cdk-nag's AwsSolutions and Serverless packs find nothing
// unsuppressed in any construct's stack, and every suppression says why.
func TestNag(t *testing.T) {
	f := getFixture(t)
	for _, n := range stackNames {
		infratest.Fail(t, n, infratest.NagFindings(f.stacks[n]))
		infratest.Fail(t, n, infratest.SuppressionsWithoutReason(f.templates[n]))
	}
}

// TestPolicies: the checks every courier template passes (the Keys stack
// holds the test's own key, whose default policy is the caller's).
func TestPolicies(t *testing.T) {
	f := getFixture(t)
	for _, n := range stackNames {
		tpl := f.templates[n]
		infratest.Fail(t, n, infratest.QueueProblems(tpl))
		infratest.Fail(t, n, infratest.SNSStatementsWithoutSourceArn(tpl))
		if n != "Keys" {
			infratest.Fail(t, n, infratest.WildcardActions(tpl))
		}
	}
}

// TestContract: each function's environment is exactly what
// lambdas/contract lists for it.
func TestContract(t *testing.T) {
	f := getFixture(t)
	for _, n := range stackNames {
		infratest.Fail(t, n, infratest.ContractProblems(f.templates[n]))
	}
}

// TestNagCatchesFindings: the packs run and report (a clean TestNag must
// not come from packs that never ran): a bare queue and a function with
// CDK's default role break rules of both packs.
func TestNagCatchesFindings(t *testing.T) {
	// Without annotations in the validation report, so that the errors
	// come back as annotations instead of failing the synthesis.
	app, err := infratest.NewApp("../cdk.json", t.TempDir(), map[string]any{"@aws-cdk/core:annotationsInValidationReport": false})
	if err != nil {
		t.Fatal(err)
	}
	stack := awscdk.NewStack(app, jsii.String("Bad"), nil)
	infratest.ApplyNag(stack)
	awssqs.NewQueue(stack, jsii.String("Bare"), nil)
	awslambda.NewFunction(stack, jsii.String("Fn"), &awslambda.FunctionProps{
		Runtime: awslambda.Runtime_PROVIDED_AL2023(), Handler: jsii.String("bootstrap"),
		Code: awslambda.Code_FromAsset(jsii.String(filepath.Join(infratest.AssetRoot(t), "worker")), nil),
	})
	list := infratest.NagFindings(stack)
	findings := strings.Join(list, "\n")
	if strings.Contains(findings, "synthesis failed") {
		t.Fatalf("findings did not come back as annotations:\n%s", findings)
	}
	t.Logf("%d findings on the bare queue and function", len(list))
	for _, rule := range []string{
		"AwsSolutions-SQS3", "AwsSolutions-SQS4", "AwsSolutions-IAM4",
		"Serverless-SQSRedrivePolicy", "Serverless-LambdaDLQ", "Serverless-LambdaDefaultMemorySize",
	} {
		if !strings.Contains(findings, rule) {
			t.Errorf("no %s finding on a bare queue and function; findings:\n%s", rule, findings)
		}
	}
}
