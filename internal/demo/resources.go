package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// resources makes the demo's queues and topics with clients of their own
// (so set-up is not counted as the pattern's requests) and removes them.
type resources struct {
	sqs    *sqs.Client
	sns    *sns.Client
	mu     sync.Mutex
	queues []string
	topics []string
	suffix string
}

func newResources(cfg aws.Config) *resources {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &resources{sqs: sqs.NewFromConfig(cfg), sns: sns.NewFromConfig(cfg), suffix: hex.EncodeToString(b[:])}
}

// QueueSpec shapes a demo queue.
type QueueSpec struct {
	FIFO              bool
	VisibilitySeconds int
	MaxReceiveCount   int // > 0: with a dead-letter queue
}

// Queue makes a queue named courier-demo-<name>-<suffix> and returns its URL and ARN.
func (e *Env) Queue(ctx context.Context, name string, spec QueueSpec) (url, arn string, err error) {
	r := e.res
	attrs := map[string]string{}
	if spec.VisibilitySeconds > 0 {
		attrs["VisibilityTimeout"] = strconv.Itoa(spec.VisibilitySeconds)
	}
	if spec.MaxReceiveCount > 0 {
		_, dlqARN, err := e.Queue(ctx, name+"-dlq", QueueSpec{FIFO: spec.FIFO})
		if err != nil {
			return "", "", err
		}
		rp, _ := json.Marshal(map[string]any{"deadLetterTargetArn": dlqARN, "maxReceiveCount": spec.MaxReceiveCount})
		attrs["RedrivePolicy"] = string(rp)
	}
	full := fmt.Sprintf("courier-demo-%s-%s", name, r.suffix)
	if spec.FIFO {
		full += ".fifo"
		attrs["FifoQueue"] = "true"
	}
	out, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(full), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", full, err)
	}
	url = aws.ToString(out.QueueUrl)
	r.mu.Lock()
	r.queues = append(r.queues, url)
	r.mu.Unlock()
	ga, err := r.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", err
	}
	return url, ga.Attributes["QueueArn"], nil
}

// Topic makes a topic named courier-demo-<name>-<suffix>.
func (e *Env) Topic(ctx context.Context, name string, fifo bool) (string, error) {
	r := e.res
	full := fmt.Sprintf("courier-demo-%s-%s", name, r.suffix)
	attrs := map[string]string{}
	if fifo {
		full += ".fifo"
		attrs["FifoTopic"] = "true"
	}
	out, err := r.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(full), Attributes: attrs})
	if err != nil {
		return "", fmt.Errorf("create topic %s: %w", full, err)
	}
	arn := aws.ToString(out.TopicArn)
	r.mu.Lock()
	r.topics = append(r.topics, arn)
	r.mu.Unlock()
	return arn, nil
}

// SetupSQS and SetupSNS are uncounted clients for set-up steps.
func (e *Env) SetupSQS() *sqs.Client { return e.res.sqs }
func (e *Env) SetupSNS() *sns.Client { return e.res.sns }

func (r *resources) cleanup(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.queues {
		_, _ = r.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q)})
	}
	for _, t := range r.topics {
		_, _ = r.sns.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(t)})
	}
	r.queues, r.topics = nil, nil
}
