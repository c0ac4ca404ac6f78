package cdkpatterns_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/courier-aws/courier/infra/internal/infratest"
)

func TestTopicQueueChain(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["Chain"]
	topic := idOf(st, f.chain.Topic.TopicArn())

	// Encrypted with the AWS-managed key, TLS only.
	f.has(t, "Chain", "AWS::SNS::Topic", map[string]any{
		"KmsMasterKeyId": map[string]any{"Fn::Join": []any{"", []any{
			"arn:", ref("AWS::Partition"), ":kms:", ref("AWS::Region"), ":", ref("AWS::AccountId"), ":alias/aws/sns",
		}}},
	})
	f.has(t, "Chain", "AWS::SNS::TopicPolicy", map[string]any{
		"Topics": []any{ref(topic)},
		"PolicyDocument": map[string]any{"Statement": []any{map[string]any{
			"Action": "sns:Publish", "Effect": "Deny",
			"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
		}}},
	})

	f.count(t, "Chain", "AWS::SNS::Subscription", 3)
	for name, want := range map[string]map[string]any{
		"all": {"RawMessageDelivery": false, "FilterPolicy": assertions.Match_Absent()},
		"eu": {
			"RawMessageDelivery": true,
			"FilterPolicy":       map[string]any{"region": []any{"eu-west-1", "eu-central-1"}},
			"FilterPolicyScope":  assertions.Match_Absent(),
		},
		"large": {
			"RawMessageDelivery": true,
			"FilterPolicyScope":  "MessageBody",
			"FilterPolicy":       map[string]any{"total": []any{map[string]any{"numeric": []any{">", 100}}}},
		},
	} {
		s := f.chain.Subscribers[name]
		want["Protocol"] = "sqs"
		want["TopicArn"] = ref(topic)
		want["Endpoint"] = arn(idOf(st, s.Queue.QueueArn()))
		want["RedrivePolicy"] = map[string]any{"deadLetterTargetArn": arn(idOf(st, s.DeadLetterQueue.QueueArn()))}
		f.has(t, "Chain", "AWS::SNS::Subscription", want)

		// Only this topic may send to the queue and to its DLQ.
		for _, q := range []string{idOf(st, s.Queue.QueueArn()), idOf(st, s.DeadLetterQueue.QueueArn())} {
			f.has(t, "Chain", "AWS::SQS::QueuePolicy", map[string]any{
				"Queues": []any{ref(q)},
				"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
					"Action":    "sqs:SendMessage",
					"Effect":    "Allow",
					"Principal": map[string]any{"Service": "sns.amazonaws.com"},
					"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": ref(topic)}},
				})})},
			})
		}
	}
	if p := infratest.SNSStatementsWithoutSourceArn(f.templates["Chain"]); len(p) != 0 {
		t.Errorf("SNS statements without aws:SourceArn: %v", p)
	}

	got := policyActions(t, f.templates["Chain"], idOf(st, f.chainPublisher.RoleName()))
	if want := []string{"sns:Publish"}; !slices.Equal(got, want) {
		t.Errorf("GrantPublish allows %v, want exactly %v (the AWS-managed key needs no grant)", got, want)
	}
}

func TestFIFOChain(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["Fifo"]
	f.has(t, "Fifo", "AWS::SNS::Topic", map[string]any{
		"FifoTopic": true, "ContentBasedDeduplication": true, "FifoThroughputScope": "MessageGroup",
		"KmsMasterKeyId": assertions.Match_AnyValue(),
	})
	f.count(t, "Fifo", "AWS::SQS::Queue", 4)
	f.count(t, "Fifo", "AWS::SNS::Subscription", 2)
	queues := infratest.Resources(f.templates["Fifo"], "AWS::SQS::Queue")
	for name, s := range f.fifo.Subscribers {
		for _, q := range []string{idOf(st, s.Queue.QueueArn()), idOf(st, s.DeadLetterQueue.QueueArn())} {
			p := infratest.Props(queues[q])
			if p["FifoQueue"] != true || p["DeduplicationScope"] != "messageGroup" || p["FifoThroughputLimit"] != "perMessageGroupId" {
				t.Errorf("%s: queue %s is not a high-throughput FIFO queue: %v", name, q, p)
			}
		}
	}
	f.has(t, "Fifo", "AWS::SNS::Subscription", map[string]any{
		"RawMessageDelivery": true,
		"Endpoint":           arn(idOf(st, f.fifo.Subscribers["balances"].Queue.QueueArn())),
		"RedrivePolicy":      map[string]any{"deadLetterTargetArn": arn(idOf(st, f.fifo.Subscribers["balances"].DeadLetterQueue.QueueArn()))},
	})
}
