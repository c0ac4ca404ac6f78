package cdkpatterns

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// FIFOChainProps shapes a FIFO topic and its FIFO queues.
type FIFOChainProps struct {
	// ContentBasedDeduplication on the topic: publishers may leave out the
	// deduplication id (SNS passes the one it computes to the queues).
	ContentBasedDeduplication bool
	// HighThroughput (default true): the topic's FifoThroughputScope and
	// each queue's DeduplicationScope are the message group, each queue's
	// FifoThroughputLimit is per message group id. Order within a group is
	// kept either way; deduplication then holds within a group only.
	HighThroughput *bool
	// TopicKey encrypts the topic; nil: AWSManagedSNSKey.
	TopicKey awskms.IKey
	// Subscribers: their queues (and DLQs) are FIFO.
	Subscribers []SubscriberProps
}

// FIFOChain is a FIFO topic and its FIFO queues.
type FIFOChain struct {
	Topic       awssns.Topic
	TopicKey    awskms.IKey // nil: AWSManagedSNSKey
	Subscribers map[string]Subscriber
}

// GrantPublish lets grantee publish to the topic.
func (f FIFOChain) GrantPublish(grantee awsiam.IGrantable) {
	grantPublish(grantee, f.Topic, f.TopicKey)
}

// NewFIFOChain provisions FIFO topic-queue chaining: a FIFO topic and
// FIFO queues (+FIFO DLQs) subscribed to it, secured as NewTopicQueueChain
// secures its topic and queues.
func NewFIFOChain(scope constructs.Construct, id string, props *FIFOChainProps) FIFOChain {
	p := FIFOChainProps{}
	if props != nil {
		p = *props
	}
	high := p.HighThroughput == nil || *p.HighThroughput
	c := constructs.NewConstruct(scope, jsii.String(id))
	topic := newTopic(c, topicProps{key: p.TopicKey, fifo: true, contentBasedDeduplication: p.ContentBasedDeduplication, highThroughput: high})
	return FIFOChain{Topic: topic, TopicKey: p.TopicKey, Subscribers: subscribeAll(c, topic, p.Subscribers, true, high)}
}
