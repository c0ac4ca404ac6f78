package infratest

import (
	"encoding/json"
	"strings"
	"testing"
)

// The policy checks are what fail the build on an unsafe template: each is
// shown here to catch what it is for, and to pass what is fine.

func parse(t *testing.T, s string) map[string]any {
	t.Helper()
	var tpl map[string]any
	if err := json.Unmarshal([]byte(s), &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func wantProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("problems %q, want %d containing %q", got, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
		}
	}
}

func TestQueueProblems(t *testing.T) {
	tpl := parse(t, `{"Resources": {
		"Main":  {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": true,
		          "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["DLQ", "Arn"]}, "maxReceiveCount": 5}}},
		"DLQ":   {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": "alias/x"}},
		"SubDLQ": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": true}},
		"Sub":   {"Type": "AWS::SNS::Subscription", "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["SubDLQ", "Arn"]}}}},
		"NoDLQ": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": true}},
		"Plain": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": false,
		          "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["DLQ", "Arn"]}}}}
	}}`)
	wantProblems(t, QueueProblems(tpl), "NoDLQ: no DLQ", "Plain: not encrypted")
}

func TestSNSStatementsWithoutSourceArn(t *testing.T) {
	tpl := parse(t, `{"Resources": {
		"Good": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"PolicyDocument": {"Statement": [
			{"Effect": "Deny", "Action": "sqs:*", "Principal": {"AWS": "*"}},
			{"Effect": "Allow", "Action": "sqs:SendMessage", "Principal": {"Service": "sns.amazonaws.com"},
			 "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": "Topic"}}}}]}}},
		"Bad": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"PolicyDocument": {"Statement": [
			{"Effect": "Allow", "Action": "sqs:SendMessage", "Principal": {"Service": ["sns.amazonaws.com"]}},
			{"Effect": "Allow", "Action": "sqs:SendMessage", "Principal": {"Service": "sns.amazonaws.com"},
			 "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}]}}}
	}}`)
	wantProblems(t, SNSStatementsWithoutSourceArn(tpl), "Bad statement 0", "Bad statement 1")
}

func TestWildcardActions(t *testing.T) {
	tpl := parse(t, `{"Resources": {
		"Fine": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
			{"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "arn:aws:sqs:*:1:courier-reply-*"},
			{"Effect": "Deny", "Action": "sqs:*", "Resource": "*"}]}}},
		"Star": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement":
			{"Effect": "Allow", "Action": "*", "Resource": "x"}}}},
		"Service": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"PolicyDocument": {"Statement": [
			{"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:*"], "Resource": "x"}]}}},
		"Partial": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": [
			{"Effect": "Allow", "Action": "kms:GenerateDataKey*", "Resource": "*"}]}}},
		"Inline": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
			{"Effect": "Allow", "NotAction": "iam:PassRole", "Resource": "*"}]}}]}}
	}}`)
	wantProblems(t, WildcardActions(tpl),
		`Star statement 0: wildcard action "*"`,
		`Service statement 0: wildcard action "sqs:*"`,
		`Partial statement 0: wildcard action "kms:GenerateDataKey*"`,
		"Inline inline policy 0 statement 0: Allow with NotAction",
	)
}

func TestContractProblems(t *testing.T) {
	tpl := parse(t, `{"Resources": {
		"Worker": {"Type": "AWS::Lambda::Function", "Properties": {
			"Tags": [{"Key": "courier:function", "Value": "worker"}],
			"Environment": {"Variables": {"COURIER_LOG_LEVEL": "info", "COURIER_IDEMPOTENCY_TABLE": "t", "COURIER_RETRY_BACKOFF": "1s,1m"}}}},
		"Responder": {"Type": "AWS::Lambda::Function", "Properties": {
			"Tags": [{"Key": "courier:function", "Value": "responder"}],
			"Environment": {"Variables": {"COURIER_LOG_LEVEL": "info", "COURIER_QUEUE_URL": "u", "EXTRA": "1"}}}},
		"Stranger": {"Type": "AWS::Lambda::Function", "Properties": {}}
	}}`)
	wantProblems(t, ContractProblems(tpl),
		"Responder (responder): environment [COURIER_LOG_LEVEL COURIER_QUEUE_URL EXTRA]",
		"Stranger: tag courier:function=\"\" names no function",
	)
}

func TestSuppressionsWithoutReason(t *testing.T) {
	tpl := parse(t, `{"Resources": {
		"A": {"Type": "X", "Metadata": {"cdk_nag": {"rules_to_suppress": [
			{"id": "AwsSolutions-IAM5", "reason": "Reply queues are created at run time, so only a name prefix is known."},
			{"id": "AwsSolutions-SQS3", "reason": "not needed"}]}}}
	}}`)
	wantProblems(t, SuppressionsWithoutReason(tpl), "A: suppression of AwsSolutions-SQS3")
}
