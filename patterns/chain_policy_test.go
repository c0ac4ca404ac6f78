package patterns_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/patterns"
)

// policyQueue is one queue's attributes, as SQS keeps them: the last
// SetQueueAttributes wins, with no condition.
type policyQueue struct {
	patterns.SQSQueueAPI // nil: only the calls below are made

	arn     string
	readers sync.WaitGroup // the first reads wait for each other
	mu      sync.Mutex
	policy  string
	reads   int
	writes  int
	lose    bool // every write is overwritten at once by someone else
}

func (q *policyQueue) GetQueueAttributes(_ context.Context, _ *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	q.mu.Lock()
	q.reads++
	first, p := q.reads <= 2, q.policy
	q.mu.Unlock()
	if first {
		// Both Chains have read the policy before either writes: the
		// interleaving that loses a statement.
		q.readers.Done()
		q.readers.Wait()
	}
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"QueueArn": q.arn, "Policy": p}}, nil
}

func (q *policyQueue) SetQueueAttributes(_ context.Context, in *sqs.SetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.writes++
	if !q.lose {
		q.policy = in.Attributes["Policy"]
	}
	return &sqs.SetQueueAttributesOutput{}, nil
}

type subscribeOnly struct{ patterns.SNSAPI }

func (subscribeOnly) Subscribe(_ context.Context, in *sns.SubscribeInput, _ ...func(*sns.Options)) (*sns.SubscribeOutput, error) {
	return &sns.SubscribeOutput{SubscriptionArn: aws.String(*in.TopicArn + ":sub")}, nil
}

const (
	chainQueueURL = "https://sqs.us-east-1.amazonaws.com/111122223333/billing"
	chainQueueARN = "arn:aws:sqs:us-east-1:111122223333:billing"
)

// Two Chain calls on one queue at once: both read the policy, both write
// it, the second write drops the first statement. Each Chain reads the
// policy back and writes again until its statement stays: both are there.
func TestChainConcurrentPolicyConverges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &policyQueue{arn: chainQueueARN}
		q.readers.Add(2)
		topics := []string{"arn:aws:sns:us-east-1:111122223333:orders", "arn:aws:sns:us-east-1:111122223333:refunds"}
		var wg sync.WaitGroup
		for _, topic := range topics {
			wg.Go(func() {
				if _, err := patterns.Chain(context.Background(), subscribeOnly{}, q, topic, chainQueueURL); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, topic := range topics {
			if !strings.Contains(q.policy, `"`+topic+`"`) {
				t.Errorf("the statement for %s was lost after %d writes: %s", topic, q.writes, q.policy)
			}
		}
		if q.writes < 3 {
			t.Errorf("%d writes: the lost statement was not written again", q.writes)
		}
	})
}

// A policy that something keeps overwriting: Chain gives up after a
// bounded number of writes and says so, rather than report success.
func TestChainPolicyOverwrittenFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &policyQueue{arn: chainQueueARN, lose: true}
		q.readers.Add(2)
		go q.GetQueueAttributes(context.Background(), nil) // the other first reader
		_, err := patterns.Chain(context.Background(), subscribeOnly{}, q, "arn:aws:sns:us-east-1:111122223333:orders", chainQueueURL)
		if !errors.Is(err, patterns.ErrQueuePolicyConflict) {
			t.Fatalf("Chain: %v, want ErrQueuePolicyConflict", err)
		}
		if q.writes < 2 || q.writes > 10 {
			t.Fatalf("%d writes, want a few and a bound", q.writes)
		}
	})
}
