package cdkpatterns_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/infra/cdkpatterns"
)

func TestRecipientListTargets(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["Recipients"]
	f.count(t, "Recipients", "AWS::SQS::Queue", 4)
	f.count(t, "Recipients", "AWS::SNS::Topic", 1)
	if len(f.recipients.Queues) != 2 || len(f.recipients.Topics) != 1 {
		t.Fatalf("targets: %d queues, %d topics", len(f.recipients.Queues), len(f.recipients.Topics))
	}
	got := policyActions(t, f.templates["Recipients"], idOf(st, f.router.RoleName()))
	if want := []string{"sns:Publish", "sqs:SendMessage"}; !slices.Equal(got, want) {
		t.Errorf("GrantSend allows %v, want exactly %v", got, want)
	}
	// Each destination, by ARN: the two queues (one statement, minimized)
	// and the topic.
	for _, q := range []string{"eu", "us"} {
		f.has(t, "Recipients", "AWS::IAM::Policy", map[string]any{"PolicyDocument": stmt(map[string]any{
			"Action":   "sqs:SendMessage",
			"Resource": assertions.Match_ArrayWith(&[]any{arn(idOf(st, f.recipients.Queues[q].Queue.QueueArn()))}),
		})})
	}
	f.has(t, "Recipients", "AWS::IAM::Policy", map[string]any{"PolicyDocument": stmt(map[string]any{
		"Action": "sns:Publish", "Resource": ref(idOf(st, f.recipients.Topics["audit"].TopicArn())),
	})})
}

func TestRecipientListTargetsInvalidProps(t *testing.T) {
	stack := awscdk.NewStack(nil, jsii.String("Invalid"), nil)
	cdkpatterns.NewRecipientListTargets(stack, "Dup", &cdkpatterns.RecipientListTargetsProps{Queues: []string{"a"}, Topics: []string{"a"}})
	wantProblem(t, stack, "Dup", `two targets named "a"`)
	cdkpatterns.NewRecipientListTargets(stack, "Empty", nil)
	wantProblem(t, stack, "Empty", "no Queues and no Topics")
}
