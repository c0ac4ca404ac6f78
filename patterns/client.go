package patterns

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSSendAPI is the part of *sqs.Client a Producer uses.
type SQSSendAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// SQSReceiveAPI is the part of *sqs.Client a Consumer uses.
type SQSReceiveAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// SQSQueueAPI is what courier uses to create, tag, find and delete queues
// (reply queues, topic-queue chaining).
type SQSQueueAPI interface {
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, optFns ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	DeleteQueue(ctx context.Context, in *sqs.DeleteQueueInput, optFns ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	SetQueueAttributes(ctx context.Context, in *sqs.SetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error)
	ListQueues(ctx context.Context, in *sqs.ListQueuesInput, optFns ...func(*sqs.Options)) (*sqs.ListQueuesOutput, error)
	ListQueueTags(ctx context.Context, in *sqs.ListQueueTagsInput, optFns ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error)
	TagQueue(ctx context.Context, in *sqs.TagQueueInput, optFns ...func(*sqs.Options)) (*sqs.TagQueueOutput, error)
}

// SQSAPI is every SQS call courier makes; *sqs.Client satisfies it.
type SQSAPI interface {
	SQSSendAPI
	SQSReceiveAPI
	SQSQueueAPI
}

// SNSPublishAPI is the part of *sns.Client a Publisher uses.
type SNSPublishAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
	PublishBatch(ctx context.Context, in *sns.PublishBatchInput, optFns ...func(*sns.Options)) (*sns.PublishBatchOutput, error)
}

// SNSAPI is every SNS call courier makes; *sns.Client satisfies it.
type SNSAPI interface {
	SNSPublishAPI
	CreateTopic(ctx context.Context, in *sns.CreateTopicInput, optFns ...func(*sns.Options)) (*sns.CreateTopicOutput, error)
	DeleteTopic(ctx context.Context, in *sns.DeleteTopicInput, optFns ...func(*sns.Options)) (*sns.DeleteTopicOutput, error)
	Subscribe(ctx context.Context, in *sns.SubscribeInput, optFns ...func(*sns.Options)) (*sns.SubscribeOutput, error)
	Unsubscribe(ctx context.Context, in *sns.UnsubscribeInput, optFns ...func(*sns.Options)) (*sns.UnsubscribeOutput, error)
	SetSubscriptionAttributes(ctx context.Context, in *sns.SetSubscriptionAttributesInput, optFns ...func(*sns.Options)) (*sns.SetSubscriptionAttributesOutput, error)
}

var (
	_ SQSAPI = (*sqs.Client)(nil)
	_ SNSAPI = (*sns.Client)(nil)
)

// QueueRef is a parsed SQS queue URL: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME
// (emulators use other hosts; the path is what counts).
type QueueRef struct {
	URL     string
	Account string
	Name    string
}

// FIFO reports whether the queue is a FIFO queue.
func (q QueueRef) FIFO() bool { return strings.HasSuffix(q.Name, ".fifo") }

// ParseQueueURL checks that u is a queue URL and splits it. Only the shape
// is checked; whether the queue exists is for SQS to say.
func ParseQueueURL(u string) (QueueRef, error) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return QueueRef{}, fmt.Errorf("%w: %q is not an http(s) URL", ErrInvalidQueueURL, u)
	}
	parts := strings.Split(strings.Trim(pu.Path, "/"), "/")
	// Path-style emulator URLs may carry a prefix (LocalStack: /queue/REGION/ACCOUNT/NAME).
	if len(parts) < 2 {
		return QueueRef{}, fmt.Errorf("%w: %q has no /ACCOUNT/NAME path", ErrInvalidQueueURL, u)
	}
	account, name := parts[len(parts)-2], parts[len(parts)-1]
	if !validQueueName(name) {
		return QueueRef{}, fmt.Errorf("%w: %q: queue name %q must be 1-80 letters, digits, - or _ (FIFO: ending .fifo)", ErrInvalidQueueURL, u, name)
	}
	if account == "" {
		return QueueRef{}, fmt.Errorf("%w: %q has no account", ErrInvalidQueueURL, u)
	}
	return QueueRef{URL: u, Account: account, Name: name}, nil
}

func validQueueName(name string) bool {
	base := strings.TrimSuffix(name, ".fifo")
	if len(name) > 80 || base == "" {
		return false
	}
	for _, r := range base {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
