package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// API is the part of *sqs.Client this package uses.
type API interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ListDeadLetterSourceQueues(ctx context.Context, in *sqs.ListDeadLetterSourceQueuesInput, optFns ...func(*sqs.Options)) (*sqs.ListDeadLetterSourceQueuesOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	StartMessageMoveTask(ctx context.Context, in *sqs.StartMessageMoveTaskInput, optFns ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
	ListMessageMoveTasks(ctx context.Context, in *sqs.ListMessageMoveTasksInput, optFns ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error)
	CancelMessageMoveTask(ctx context.Context, in *sqs.CancelMessageMoveTaskInput, optFns ...func(*sqs.Options)) (*sqs.CancelMessageMoveTaskOutput, error)
}

var _ API = (*sqs.Client)(nil)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNoDeadLetterQueue: the queue has no redrive policy.
	ErrNoDeadLetterQueue = errors.New("courier: queue has no dead-letter queue")
	// ErrNoDestination: a dead letter's source queue cannot be told (no
	// DeadLetterQueueSourceArn and not exactly one source queue) and no
	// destination was given.
	ErrNoDestination = errors.New("courier: no destination to redrive to")
	// ErrMoveTask: SQS's message move task ended without moving everything
	// (failed or cancelled); the messages it did not move are still in the
	// dead-letter queue.
	ErrMoveTask = errors.New("courier: message move task did not complete")
	// ErrNotDeleted: a message was sent to its destination but could not
	// be deleted from the dead-letter queue; it is still there, and a
	// second redrive would deliver it twice.
	ErrNotDeleted = errors.New("courier: redriven message not deleted from the dead-letter queue")
)

// DeadLetterQueue is a queue's dead-letter queue, from its redrive policy.
type DeadLetterQueue struct {
	URL, ARN        string
	MaxReceiveCount int
}

// Find returns the dead-letter queue of the queue at queueURL, or
// ErrNoDeadLetterQueue when the queue has no redrive policy.
func Find(ctx context.Context, client API, queueURL string) (DeadLetterQueue, error) {
	attrs, err := queueAttributes(ctx, client, queueURL, types.QueueAttributeNameRedrivePolicy)
	if err != nil {
		return DeadLetterQueue{}, err
	}
	rp := attrs[string(types.QueueAttributeNameRedrivePolicy)]
	if rp == "" {
		return DeadLetterQueue{}, fmt.Errorf("%w: %s", ErrNoDeadLetterQueue, queueURL)
	}
	var policy struct {
		Target string          `json:"deadLetterTargetArn"`
		Max    json.RawMessage `json:"maxReceiveCount"` // a number on AWS, a string on some emulators
	}
	if err := json.Unmarshal([]byte(rp), &policy); err != nil || policy.Target == "" {
		return DeadLetterQueue{}, fmt.Errorf("courier: redrive policy of %s: cannot read %q", queueURL, rp)
	}
	d := DeadLetterQueue{ARN: policy.Target}
	d.MaxReceiveCount, _ = strconv.Atoi(strings.Trim(string(policy.Max), `"`))
	if d.URL, err = urlOf(ctx, client, d.ARN); err != nil {
		return DeadLetterQueue{}, err
	}
	return d, nil
}

// Sources returns the URLs of the queues whose redrive policy names the
// queue at dlqURL.
func Sources(ctx context.Context, client API, dlqURL string) ([]string, error) {
	var urls []string
	in := &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlqURL)}
	for {
		out, err := client.ListDeadLetterSourceQueues(ctx, in)
		if err != nil {
			return nil, &patterns.OpError{Op: "ListDeadLetterSourceQueues", Resource: dlqURL, Err: err}
		}
		urls = append(urls, out.QueueUrls...)
		if aws.ToString(out.NextToken) == "" {
			return urls, nil
		}
		in.NextToken = out.NextToken
	}
}

func queueAttributes(ctx context.Context, client API, queueURL string, names ...types.QueueAttributeName) (map[string]string, error) {
	if _, err := patterns.ParseQueueURL(queueURL); err != nil {
		return nil, err
	}
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL), AttributeNames: names})
	if err != nil {
		return nil, &patterns.OpError{Op: "GetQueueAttributes", Resource: queueURL, Err: err}
	}
	return out.Attributes, nil
}

func arnOf(ctx context.Context, client API, queueURL string) (string, error) {
	attrs, err := queueAttributes(ctx, client, queueURL, types.QueueAttributeNameQueueArn)
	if err != nil {
		return "", err
	}
	return attrs[string(types.QueueAttributeNameQueueArn)], nil
}

// urlOf finds a queue's URL from its ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME).
func urlOf(ctx context.Context, client API, arn string) (string, error) {
	a, err := patterns.ParseARN(arn, "sqs")
	if err != nil {
		return "", err
	}
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(a.Name), QueueOwnerAWSAccountId: aws.String(a.Account)})
	if err != nil {
		return "", &patterns.OpError{Op: "GetQueueUrl", Resource: arn, Err: err}
	}
	return aws.ToString(out.QueueUrl), nil
}

func isFIFO(queueURL string) bool { return strings.HasSuffix(queueURL, ".fifo") }
