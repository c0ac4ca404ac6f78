package patterns

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// Publish-subscribe: a Publisher sends each message to an SNS topic, and
// SNS delivers a copy to every subscription. A subscriber that is not a
// queue (an HTTP endpoint, a Lambda function) gets the message only while it
// is reachable: SNS retries for a while, then drops it. Topic-queue chaining
// (Chain) fixes that: each subscriber reads its own queue, which keeps the
// message until it is handled.

// TopicRef is a parsed SNS topic ARN: arn:PARTITION:sns:REGION:ACCOUNT:NAME.
type TopicRef struct {
	ARN, Region, Account, Name string
}

// FIFO reports whether the topic is a FIFO topic.
func (t TopicRef) FIFO() bool { return strings.HasSuffix(t.Name, ".fifo") }

// ParseTopicARN checks that arn is an SNS topic ARN and splits it. The
// error wraps ErrInvalidARN (as ParseQueueURL's wraps ErrInvalidQueueURL).
func ParseTopicARN(arn string) (TopicRef, error) {
	a, err := ParseARN(arn, "sns")
	if err != nil {
		return TopicRef{}, err
	}
	return TopicRef{ARN: arn, Region: a.Region, Account: a.Account, Name: a.Name}, nil
}

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	// Concurrency is how many PublishBatch requests the Publisher has in
	// flight, for all Publish calls together (their messages share
	// batches). Default 4.
	Concurrency int
	// EntryRetries and RetryBackoff: as for ProducerOptions.
	EntryRetries int
	RetryBackoff time.Duration
	// ClaimCheck, when set, publishes bodies above 256 KiB (or its
	// Threshold) through S3, with a pointer in the Extended Client
	// format. Every subscription shares the object: no consumer removes
	// it (a lifecycle rule on the bucket does), so subscribers' ClaimChecks
	// must not set RemoveAfterDelete.
	ClaimCheck *ClaimCheck
	// Tracer, when set, traces each Publish and carries the trace context
	// in the messages (patterns/oteltrace).
	Tracer Tracer
	// Metrics, when set, counts and times each Publish: messages published
	// and not, by error (patterns/otelmetric).
	Metrics Metrics
}

// Publisher publishes messages to one SNS topic in batches (PublishBatch:
// up to 10 entries and 256 KiB a request).
type Publisher struct {
	client SNSPublishAPI
	topic  TopicRef
	b      batcher
}

// NewPublisher returns a Publisher for topicARN.
func NewPublisher(client SNSPublishAPI, topicARN string, optFns ...func(*PublisherOptions)) (*Publisher, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SNS client", ErrInvalidConfig)
	}
	t, err := ParseTopicARN(topicARN)
	if err != nil {
		return nil, err
	}
	o := PublisherOptions{Concurrency: 4, EntryRetries: 3, RetryBackoff: 100 * time.Millisecond}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Concurrency < 1 || o.EntryRetries < 0 {
		return nil, fmt.Errorf("%w: publisher options %+v", ErrInvalidConfig, o)
	}
	p := &Publisher{client: client, topic: t}
	p.b = batcher{
		op: "PublishBatch", resource: topicARN,
		maxMessage: MaxSNSMessageBytes, maxBatch: MaxSNSMessageBytes,
		concurrency: o.Concurrency, retries: o.EntryRetries, backoff: o.RetryBackoff,
		fifo: t.FIFO(), validate: p.validate, send: p.publishBatch,
		claim: o.ClaimCheck, tracer: o.Tracer, metrics: o.Metrics,
	}
	return p, nil
}

// TopicARN returns the topic the publisher publishes to.
func (p *Publisher) TopicARN() string { return p.topic.ARN }

// Publish publishes msgs with the guarantees of Producer.Send: nil only when
// SNS accepted every message (each then has its ID set), otherwise a
// *SendError naming those not published; bad messages fail before any
// request. On a FIFO topic each group keeps its order. Concurrent Publish
// calls share batches, as concurrent Producer.Sends do.
func (p *Publisher) Publish(ctx context.Context, msgs ...*Message) error {
	return p.b.sendAll(ctx, msgs)
}

func (p *Publisher) validate(m *Message) error {
	if p.topic.FIFO() {
		if err := ValidateGroupID(m.GroupID); err != nil {
			return err
		}
	} else if m.GroupID != "" || m.DeduplicationID != "" {
		return fmt.Errorf("%w: group and deduplication ids are for FIFO topics; %s is standard", ErrInvalidMessage, p.topic.Name)
	}
	if m.Delay != 0 {
		return fmt.Errorf("%w: SNS takes no per-message delay", ErrInvalidMessage)
	}
	if m.DeduplicationID != "" {
		return validateDedupID(m.DeduplicationID)
	}
	return nil
}

func (p *Publisher) publishBatch(ctx context.Context, msgs []*Message, sent []sentEntry) (map[int]entryFailure, error) {
	entries := make([]snstypes.PublishBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		e := snstypes.PublishBatchRequestEntry{
			Id:                aws.String(entryID(i)),
			Message:           aws.String(string(m.Body)),
			MessageAttributes: toSNSAttributes(m.wireAttributes()),
		}
		if m.GroupID != "" {
			e.MessageGroupId = aws.String(m.GroupID)
		}
		if m.DeduplicationID != "" {
			e.MessageDeduplicationId = aws.String(m.DeduplicationID)
		}
		entries[i] = e
	}
	out, err := p.client.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(p.topic.ARN), PublishBatchRequestEntries: entries},
		func(o *sns.Options) {
			if r, ok := fifoBatchRetry(p.topic.FIFO(), msgs, o.Retryer); ok {
				o.Retryer = r
			}
		})
	if err != nil {
		return nil, err
	}
	return batchOutcome("SNS", sent, out.Successful, out.Failed,
		func(s snstypes.PublishBatchResultEntry) (*string, sentEntry) {
			return s.Id, sentEntry{ID: aws.ToString(s.MessageId), SequenceNumber: aws.ToString(s.SequenceNumber)}
		},
		func(f snstypes.BatchResultErrorEntry) (*string, entryFailure) {
			return f.Id, entryFailure{Code: aws.ToString(f.Code), SenderFault: f.SenderFault, Message: aws.ToString(f.Message)}
		}), nil
}

func toSNSAttributes(attrs map[string]Attribute) map[string]snstypes.MessageAttributeValue {
	return attributeValues(attrs, func(dataType, value *string, binary []byte) snstypes.MessageAttributeValue {
		return snstypes.MessageAttributeValue{DataType: dataType, StringValue: value, BinaryValue: binary}
	})
}
