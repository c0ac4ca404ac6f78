package cdkpatterns_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/infra/cdkpatterns"
	"github.com/courier-aws/courier/infra/internal/infratest"
)

func TestQueueWithDLQDefaults(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["Queues"]
	dlq := idOf(st, f.queue.DeadLetterQueue.QueueArn())
	f.has(t, "Queues", "AWS::SQS::Queue", map[string]any{
		"SqsManagedSseEnabled": true,
		"VisibilityTimeout":    30,
		"RedrivePolicy":        map[string]any{"deadLetterTargetArn": arn(dlq), "maxReceiveCount": 5},
	})
	dlqProps := infratest.Props(infratest.Resources(f.templates["Queues"], "AWS::SQS::Queue")[dlq])
	if dlqProps["MessageRetentionPeriod"] != float64(14*24*3600) || dlqProps["SqsManagedSseEnabled"] != true {
		t.Errorf("DLQ: %v, want 14 days' retention and SQS-managed SSE", dlqProps)
	}
	// TLS only: each queue's policy denies every SQS action without TLS.
	for _, q := range []string{idOf(st, f.queue.Queue.QueueArn()), dlq} {
		f.has(t, "Queues", "AWS::SQS::QueuePolicy", map[string]any{
			"Queues": []any{ref(q)},
			"PolicyDocument": map[string]any{"Statement": []any{map[string]any{
				"Action": "sqs:*", "Effect": "Deny",
				"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
			}}},
		})
	}
}

func TestQueueWithDLQKMS(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["Queues"]
	f.has(t, "Queues", "AWS::SQS::Queue", map[string]any{
		"KmsMasterKeyId": assertions.Match_AnyValue(), // the key of the Keys stack
		"RedrivePolicy":  map[string]any{"deadLetterTargetArn": arn(idOf(st, f.kmsQueue.DeadLetterQueue.QueueArn()))},
	})
	got := policyActions(t, f.templates["Queues"], idOf(st, f.queueSender.RoleName()))
	want := []string{"kms:Decrypt", "kms:GenerateDataKey", "sqs:SendMessage"}
	if !slices.Equal(got, want) {
		t.Errorf("GrantSend on a KMS queue allows %v, want exactly %v", got, want)
	}
}

func TestQueueWithDLQFIFO(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["Queues"]
	fifo := map[string]any{
		"FifoQueue": true, "ContentBasedDeduplication": true,
		"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId",
	}
	queues := infratest.Resources(f.templates["Queues"], "AWS::SQS::Queue")
	for _, q := range []string{idOf(st, f.fifoQueue.Queue.QueueArn()), idOf(st, f.fifoQueue.DeadLetterQueue.QueueArn())} {
		p := infratest.Props(queues[q])
		for k, v := range fifo {
			if p[k] != v {
				t.Errorf("%s: %s = %v, want %v", q, k, p[k], v)
			}
		}
	}
	p := infratest.Props(queues[idOf(st, f.fifoQueue.Queue.QueueArn())])
	if rp := p["RedrivePolicy"].(map[string]any); rp["maxReceiveCount"] != float64(3) || p["VisibilityTimeout"] != float64(120) {
		t.Errorf("FIFO queue: %v", p)
	}
}

func TestQueueWithDLQInvalidProps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props cdkpatterns.QueueWithDLQProps
		want  string
	}{
		{"receive count", cdkpatterns.QueueWithDLQProps{MaxReceiveCount: 1001}, "MaxReceiveCount 1001"},
		{"dedup on standard", cdkpatterns.QueueWithDLQProps{ContentBasedDeduplication: true}, "FIFO queues only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := awscdk.NewStack(nil, jsii.String("Invalid"), nil)
			cdkpatterns.NewQueueWithDLQ(stack, "Q", &tc.props)
			wantProblem(t, stack, "Q", tc.want)
		})
	}
}
