package cdkpatterns_test

import (
	"slices"
	"testing"

	"github.com/courier-aws/courier/infra/internal/infratest"
	"github.com/courier-aws/courier/lambdas/contract"
)

func TestRequestResponse(t *testing.T) {
	f := getFixture(t)
	// The queues stay in scope, the function goes to FunctionScope.
	f.count(t, "RequestResponse", "AWS::SQS::Queue", 2)
	f.count(t, "RequestResponse", "AWS::Lambda::Function", 0)
	f.count(t, "RequestResponseCompute", "AWS::Lambda::Function", 1)
	f.has(t, "RequestResponse", "AWS::SQS::Queue", map[string]any{"VisibilityTimeout": 180})

	replyArns := map[string]any{"Fn::Join": []any{"", []any{
		"arn:", ref("AWS::Partition"), ":sqs:", ref("AWS::Region"), ":", ref("AWS::AccountId"), ":courier-reply-*",
	}}}
	f.has(t, "RequestResponseCompute", "AWS::IAM::Policy", map[string]any{
		"PolicyDocument": stmt(map[string]any{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": replyArns}),
	})
	f.has(t, "RequestResponseCompute", "AWS::Lambda::Function", map[string]any{
		"Environment": map[string]any{"Variables": map[string]any{contract.EnvReplyAllowlist: replyArns}},
	})
	f.has(t, "RequestResponseCompute", "AWS::Lambda::EventSourceMapping", map[string]any{
		"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
	})

	st := f.stacks["RequestResponseCompute"]
	got := policyActions(t, f.templates["RequestResponseCompute"], idOf(st, f.rr.Responder.Role.RoleName()))
	want := []string{"logs:CreateLogStream", "logs:PutLogEvents", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"}
	if !slices.Equal(got, want) {
		t.Errorf("responder role allows %v, want exactly %v", got, want)
	}
	for id, fe := range infratest.FunctionEnvironments(f.templates["RequestResponseCompute"]) {
		want, _ := contract.Lookup("responder")
		if fe.Name != "responder" || !slices.Equal(fe.Env, sorted(want.Env)) {
			t.Errorf("%s: %+v, want the responder's contract %v", id, fe, want.Env)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
