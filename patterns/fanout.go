package patterns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns/filter"
)

// Topic-queue chaining (fan-out): an SNS topic delivers every message to
// several SQS queues, one per subscriber. Each subscriber consumes its own
// queue at its own pace, and nothing published while it is down is lost.

// ChainOptions shapes one topic-to-queue subscription.
type ChainOptions struct {
	// Raw turns on raw message delivery: the queue gets the message body and
	// attributes as published. Off, it gets the SNS notification envelope;
	// the Consumer unwraps both, so handlers do not care which.
	Raw bool
	// FilterPolicy, when set, is the subscription's filter policy (JSON);
	// FilterPolicyScope is "MessageAttributes" (the default) or "MessageBody".
	FilterPolicy      string
	FilterPolicyScope string
	// Filter is a policy built or parsed with package filter (message
	// filter pattern); it takes precedence over FilterPolicy and carries
	// its own scope.
	Filter *filter.Policy
	// DeadLetterQueueARN, when set, is the subscription's redrive policy:
	// messages SNS cannot deliver to the queue (deleted queue, denied by
	// policy, KMS errors) go there instead of being dropped.
	DeadLetterQueueARN string
}

// Chain subscribes the queue at queueURL to topicARN, with a queue policy
// that lets only that topic send to the queue (aws:SourceArn), merged into
// the queue's existing policy. It returns the subscription ARN.
//
// SQS has no conditional write of a policy: two Chain calls on one queue
// at once can each read the policy, add their statement and write it, and
// the second write drops the first statement (SNS delivery is then denied
// with no error anywhere). So Chain reads the policy back after writing
// it, and again after a pause, and merges and writes again while its
// statement is missing; after policyAttempts writes it fails with
// ErrQueuePolicyConflict. Concurrent Chain calls thus converge to a policy
// with every statement, unless another writer keeps overwriting it.
func Chain(ctx context.Context, snsClient SNSAPI, sqsClient SQSQueueAPI, topicARN, queueURL string, optFns ...func(*ChainOptions)) (string, error) {
	var o ChainOptions
	for _, fn := range optFns {
		fn(&o)
	}
	topic, err := ParseTopicARN(topicARN)
	if err != nil {
		return "", err
	}
	if _, err := ParseQueueURL(queueURL); err != nil {
		return "", err
	}
	switch o.FilterPolicyScope {
	case "", "MessageAttributes", "MessageBody":
	default:
		return "", fmt.Errorf("%w: filter policy scope %q (want MessageAttributes or MessageBody)", ErrInvalidConfig, o.FilterPolicyScope)
	}
	// A policy SNS would refuse fails here, naming the problem, before any
	// request.
	if o.Filter == nil && o.FilterPolicy != "" {
		if o.Filter, err = filter.Parse(o.FilterPolicy, filter.Scope(o.FilterPolicyScope)); err != nil {
			return "", err
		}
	}
	queueARN, err := allowTopicConverged(ctx, sqsClient, queueURL, topic)
	if err != nil {
		return "", err
	}
	attrs := map[string]string{"RawMessageDelivery": strconv.FormatBool(o.Raw)}
	if o.Filter != nil {
		attrs["FilterPolicy"] = o.Filter.JSON()
		attrs["FilterPolicyScope"] = string(o.Filter.Scope())
	}
	if o.DeadLetterQueueARN != "" {
		rp, _ := json.Marshal(map[string]string{"deadLetterTargetArn": o.DeadLetterQueueARN})
		attrs["RedrivePolicy"] = string(rp)
	}
	out, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(topicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(queueARN),
		Attributes: attrs, ReturnSubscriptionArn: true,
	})
	if err != nil {
		return "", opError("Subscribe", topicARN, err)
	}
	return aws.ToString(out.SubscriptionArn), nil
}

// ErrQueuePolicyConflict: Chain's statement did not stay in the queue
// policy: something kept overwriting the policy while Chain wrote it.
var ErrQueuePolicyConflict = errors.New("courier: queue policy kept being overwritten")

// Chain's policy writes: at most policyAttempts; after each, a read at
// once and another after a pause of about policySettle, doubled after
// each lost write (with jitter, so that two Chains do not keep step). A
// concurrent Chain's read-merge-write is two requests: unless its write
// takes longer than the pause, a write that lands after the second read
// came from a read after ours, and kept our statement.
const (
	policyAttempts = 6
	policySettle   = 250 * time.Millisecond
)

// allowTopicConverged merges the topic's statement into the queue's
// policy and checks that it stays there, and returns the queue's ARN.
func allowTopicConverged(ctx context.Context, sqsClient SQSQueueAPI, queueURL string, topic TopicRef) (string, error) {
	read := func() (arn, policy string, err error) {
		ga, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(queueURL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn, types.QueueAttributeNamePolicy},
		})
		if err != nil {
			return "", "", opError("GetQueueAttributes", queueURL, err)
		}
		return ga.Attributes[string(types.QueueAttributeNameQueueArn)], ga.Attributes[string(types.QueueAttributeNamePolicy)], nil
	}
	queueARN, current, err := read()
	if err != nil {
		return "", err
	}
	if hasStatement(current, topic) {
		return queueARN, nil // chained before: nothing to write
	}
	wait := policySettle
	for attempt := 1; ; attempt++ {
		want, err := allowTopic(current, queueARN, topic)
		if err != nil {
			return "", err
		}
		if _, err := sqsClient.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
			QueueUrl: aws.String(queueURL), Attributes: map[string]string{string(types.QueueAttributeNamePolicy): want},
		}); err != nil {
			return "", opError("SetQueueAttributes", queueURL, err)
		}
		// Read back at once and again after a pause: a concurrent Chain
		// that read before our write may still write after it.
		stayed := true
		for _, pause := range []time.Duration{0, wait/2 + rand.N(wait/2+1)} {
			if pause > 0 {
				if err := sleepCtx(ctx, pause); err != nil {
					return "", err
				}
			}
			if _, current, err = read(); err != nil {
				return "", err
			}
			if !hasStatement(current, topic) {
				stayed = false
				break
			}
		}
		if stayed {
			return queueARN, nil
		}
		if attempt == policyAttempts {
			return "", fmt.Errorf("%w: %s: the statement for %s was gone after each of %d writes", ErrQueuePolicyConflict, queueURL, topic.ARN, attempt)
		}
		wait *= 2
	}
}

// hasStatement tells whether policy holds the statement that lets topic
// send: its Sid, naming the topic's ARN. Not compared byte for byte: SQS
// may store a policy in a form of its own.
func hasStatement(policy string, topic TopicRef) bool {
	var doc policyDoc
	if policy == "" || json.Unmarshal([]byte(policy), &doc) != nil {
		return false
	}
	for _, raw := range doc.Statement {
		var s struct{ Sid string }
		if json.Unmarshal(raw, &s) == nil && s.Sid == topicSid(topic) {
			return strings.Contains(string(raw), `"`+topic.ARN+`"`)
		}
	}
	return false
}

func topicSid(topic TopicRef) string { return "courier-sns-" + topic.Account + "-" + topic.Name }

// Unchain removes a subscription made by Chain.
func Unchain(ctx context.Context, snsClient SNSAPI, subscriptionARN string) error {
	_, err := snsClient.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(subscriptionARN)})
	return opError("Unsubscribe", subscriptionARN, err)
}

type policyDoc struct {
	Version   string            `json:"Version"`
	Id        string            `json:"Id,omitempty"`
	Statement []json.RawMessage `json:"Statement"`
}

type statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    string                       `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition"`
}

// allowTopic returns the queue policy existing plus a statement that lets
// the topic, and only the topic, send to the queue. A statement courier
// added before for the same topic is replaced, not duplicated.
func allowTopic(existing, queueARN string, topic TopicRef) (string, error) {
	doc := policyDoc{Version: "2012-10-17"}
	if existing != "" {
		if err := json.Unmarshal([]byte(existing), &doc); err != nil {
			return "", fmt.Errorf("%w: the queue's policy is not readable JSON: %v", ErrInvalidConfig, err)
		}
	}
	sid := topicSid(topic)
	kept := doc.Statement[:0]
	for _, raw := range doc.Statement {
		var s struct{ Sid string }
		if json.Unmarshal(raw, &s) == nil && s.Sid == sid {
			continue
		}
		kept = append(kept, raw)
	}
	st, _ := json.Marshal(statement{
		Sid: sid, Effect: "Allow",
		Principal: map[string]string{"Service": "sns.amazonaws.com"},
		Action:    "sqs:SendMessage", Resource: queueARN,
		Condition: map[string]map[string]string{"ArnEquals": {"aws:SourceArn": topic.ARN}},
	})
	doc.Statement = append(kept, st)
	b, err := json.Marshal(doc)
	return string(b), err
}
