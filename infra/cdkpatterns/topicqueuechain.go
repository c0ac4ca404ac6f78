package cdkpatterns

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// AWSManagedSNSKey is the alias of the AWS-managed key that encrypts a
// topic when no key is given: encryption at rest with no key to pay for;
// publishers of the same account need no KMS grant. (A topic that AWS
// services such as CloudWatch alarms or EventBridge publish to needs a
// customer managed key instead, whose policy can let them in.)
const AWSManagedSNSKey = "alias/aws/sns"

// SubscriberProps is one queue chained to a topic.
type SubscriberProps struct {
	// Name identifies the subscriber (construct id and map key).
	Name string
	// Queue shapes the queue and its DLQ (Fifo is set by the chain).
	Queue QueueWithDLQProps
	// RawMessageDelivery delivers the message body as is, attributes as
	// SQS message attributes, instead of the SNS JSON envelope.
	RawMessageDelivery bool
	// FilterPolicy filters on message attributes; FilterPolicyWithMessageBody
	// on the (JSON) body. At most one of them.
	FilterPolicy                map[string]awssns.SubscriptionFilter
	FilterPolicyWithMessageBody map[string]awssns.FilterOrPolicy
}

// Subscriber is a queue (+DLQ) subscribed to a topic.
type Subscriber struct {
	QueueWithDLQ
	Subscription awssns.Subscription
}

// TopicQueueChainProps shapes a topic and the queues chained to it.
type TopicQueueChainProps struct {
	// TopicKey encrypts the topic; nil: AWSManagedSNSKey.
	TopicKey    awskms.IKey
	Subscribers []SubscriberProps
}

// TopicQueueChain is a topic and its subscribed queues.
type TopicQueueChain struct {
	Topic       awssns.Topic
	TopicKey    awskms.IKey // nil: AWSManagedSNSKey
	Subscribers map[string]Subscriber
}

// GrantPublish lets grantee publish to the topic (sns:Publish, and the
// topic key's kms:GenerateDataKey and kms:Decrypt when it is yours).
func (t TopicQueueChain) GrantPublish(grantee awsiam.IGrantable) {
	grantPublish(grantee, t.Topic, t.TopicKey)
}

// NewTopicQueueChain provisions topic-queue chaining (publish-subscribe,
// fan-out, message filter): an encrypted, TLS-only topic, and per
// subscriber a queue (+DLQ) subscribed with its filter policy and raw
// delivery setting. Each subscription's redrive policy sends what SNS
// cannot deliver to the queue's DLQ, and each queue policy lets the topic,
// and only it (aws:SourceArn), send to the queue and its DLQ.
func NewTopicQueueChain(scope constructs.Construct, id string, props *TopicQueueChainProps) TopicQueueChain {
	p := TopicQueueChainProps{}
	if props != nil {
		p = *props
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	topic := newTopic(c, topicProps{key: p.TopicKey})
	return TopicQueueChain{Topic: topic, TopicKey: p.TopicKey, Subscribers: subscribeAll(c, topic, p.Subscribers, false, false)}
}

type topicProps struct {
	key                       awskms.IKey
	fifo                      bool
	contentBasedDeduplication bool
	highThroughput            bool
}

func newTopic(c constructs.Construct, p topicProps) awssns.Topic {
	key := p.key
	if key == nil {
		key = awskms.Alias_FromAliasName(c, jsii.String("TopicKey"), jsii.String(AWSManagedSNSKey))
	}
	tp := &awssns.TopicProps{
		MasterKey:  key,
		EnforceSSL: jsii.Bool(true),
	}
	if p.fifo {
		tp.Fifo = jsii.Bool(true)
		if p.contentBasedDeduplication {
			tp.ContentBasedDeduplication = jsii.Bool(true)
		}
		if p.highThroughput {
			tp.FifoThroughputScope = awssns.FifoThroughputScope_MESSAGE_GROUP
		}
	}
	return awssns.NewTopic(c, jsii.String("Topic"), tp)
}

// subscribeAll makes each subscriber's queue and subscription, in order.
func subscribeAll(c constructs.Construct, topic awssns.Topic, subs []SubscriberProps, fifo, highThroughput bool) map[string]Subscriber {
	out := make(map[string]Subscriber, len(subs))
	for _, s := range subs {
		var problems []string
		if s.Name == "" {
			problems = append(problems, "a subscriber has no Name")
			s.Name = fmt.Sprintf("Subscriber%d", len(out))
		}
		if _, dup := out[s.Name]; dup {
			invalid(c, fmt.Sprintf("two subscribers named %q", s.Name))
			continue
		}
		qp := s.Queue
		qp.Fifo = fifo
		if fifo {
			qp.HighThroughput = highThroughput
		}
		q := NewQueueWithDLQ(c, s.Name, &qp)

		sp := &awssnssubscriptions.SqsSubscriptionProps{
			RawMessageDelivery: jsii.Bool(s.RawMessageDelivery),
			// What SNS cannot deliver to the queue (deleted, KMS key
			// disabled, policy) goes where the queue's own failures go.
			DeadLetterQueue: q.DeadLetterQueue,
		}
		switch {
		case s.FilterPolicy != nil && s.FilterPolicyWithMessageBody != nil:
			problems = append(problems, fmt.Sprintf("subscriber %q: FilterPolicy and FilterPolicyWithMessageBody both set; SNS takes one scope", s.Name))
		case s.FilterPolicy != nil:
			sp.FilterPolicy = &s.FilterPolicy
		case s.FilterPolicyWithMessageBody != nil:
			sp.FilterPolicyWithMessageBody = &s.FilterPolicyWithMessageBody
		}
		invalid(c, problems...)
		sub := topic.AddSubscription(awssnssubscriptions.NewSqsSubscription(q.Queue, sp))
		out[s.Name] = Subscriber{QueueWithDLQ: q, Subscription: sub}
	}
	return out
}
