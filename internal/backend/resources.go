package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// SQS returns an SQS client for the backend; counters, when given, count
// its requests.
func (b *Backend) SQS(counters ...*patterns.RequestCounter) *sqs.Client {
	return sqs.NewFromConfig(b.Config(), func(o *sqs.Options) {
		for _, c := range counters {
			o.APIOptions = append(o.APIOptions, c.Install)
		}
	})
}

// SNS returns an SNS client for the backend.
func (b *Backend) SNS(counters ...*patterns.RequestCounter) *sns.Client {
	return sns.NewFromConfig(b.Config(), func(o *sns.Options) {
		for _, c := range counters {
			o.APIOptions = append(o.APIOptions, c.Install)
		}
	})
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// UniqueName returns a name unique to this test run: courier-<test>-<random>,
// at most 70 characters (room for ".fifo" and "-dlq").
func UniqueName(t testing.TB) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	base := unsafe.ReplaceAllString(t.Name(), "-")
	if len(base) > 48 {
		base = base[len(base)-48:]
	}
	return strings.Trim("c-"+strings.Trim(base, "-")+"-"+hex.EncodeToString(r[:]), "-")
}

// QueueOptions shapes a test queue.
type QueueOptions struct {
	FIFO              bool
	ContentDedup      bool
	VisibilityTimeout time.Duration // default 30s
	// MaxReceiveCount > 0 gives the queue a dead-letter queue.
	MaxReceiveCount int
	Attributes      map[string]string
}

// Queue is a test queue (and its DLQ, when asked for).
type Queue struct {
	URL, ARN       string
	DLQURL, DLQARN string
}

// CreateQueue makes a uniquely named queue, removed when the test ends.
func (b *Backend) CreateQueue(t testing.TB, o QueueOptions) Queue {
	t.Helper()
	client := b.SQS()
	name := UniqueName(t)
	var q Queue
	if o.MaxReceiveCount > 0 {
		q.DLQURL, q.DLQARN = b.createQueue(t, client, name+"-dlq", o.FIFO, map[string]string{})
	}
	attrs := map[string]string{}
	for k, v := range o.Attributes {
		attrs[k] = v
	}
	if o.VisibilityTimeout > 0 {
		attrs["VisibilityTimeout"] = strconv.Itoa(int(o.VisibilityTimeout / time.Second))
	}
	if o.ContentDedup {
		attrs["ContentBasedDeduplication"] = "true"
	}
	if o.MaxReceiveCount > 0 {
		rp, _ := json.Marshal(map[string]any{"deadLetterTargetArn": q.DLQARN, "maxReceiveCount": o.MaxReceiveCount})
		attrs["RedrivePolicy"] = string(rp)
	}
	q.URL, q.ARN = b.createQueue(t, client, name, o.FIFO, attrs)
	return q
}

func (b *Backend) createQueue(t testing.TB, client *sqs.Client, name string, fifo bool, attrs map[string]string) (string, string) {
	t.Helper()
	ctx := context.Background()
	if fifo {
		name += ".fifo"
		attrs["FifoQueue"] = "true"
	}
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("create queue %s on %s: %v", name, b.Name, err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	})
	ga, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("queue arn of %s: %v", url, err)
	}
	return url, ga.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// CreateTopic makes a uniquely named topic, removed when the test ends.
func (b *Backend) CreateTopic(t testing.TB, fifo bool, attrs map[string]string) string {
	t.Helper()
	client := b.SNS()
	name := UniqueName(t)
	if attrs == nil {
		attrs = map[string]string{}
	}
	if fifo {
		name += ".fifo"
		attrs["FifoTopic"] = "true"
	}
	out, err := client.CreateTopic(context.Background(), &sns.CreateTopicInput{Name: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("create topic %s on %s: %v", name, b.Name, err)
	}
	arn := aws.ToString(out.TopicArn)
	t.Cleanup(func() {
		_, _ = client.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: aws.String(arn)})
	})
	return arn
}

// Drain receives and deletes everything visible on a queue within wait and
// returns the messages' bodies.
func (b *Backend) Drain(t testing.TB, url string, wait time.Duration) []types.Message {
	t.Helper()
	client := b.SQS()
	ctx := context.Background()
	var all []types.Message
	// Receive until wait has passed and a receive came back empty: a
	// loaded emulator may take longer than wait to hand over what it has
	// (bounded: at most wait plus 30 s).
	deadline, hardStop := time.Now().Add(wait), time.Now().Add(wait+30*time.Second)
	for time.Now().Before(hardStop) {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("drain %s: %v", url, err)
		}
		for _, m := range out.Messages {
			all = append(all, m)
			_, _ = client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
		if len(out.Messages) == 0 && !time.Now().Before(deadline) {
			break
		}
	}
	return all
}

// Counts returns the queue's approximate visible and in-flight counts.
func (b *Backend) Counts(t testing.TB, url string) (visible, inflight int) {
	t.Helper()
	out, err := b.SQS().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("queue counts %s: %v", url, err)
	}
	visible, _ = strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
	inflight, _ = strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
	return visible, inflight
}
