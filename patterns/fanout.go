package patterns

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

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
func Chain(ctx context.Context, snsClient SNSAPI, sqsClient SQSQueueAPI, topicARN, queueURL string, o ChainOptions) (string, error) {
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
	ga, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn, types.QueueAttributeNamePolicy},
	})
	if err != nil {
		return "", opError("GetQueueAttributes", queueURL, err)
	}
	queueARN := ga.Attributes[string(types.QueueAttributeNameQueueArn)]
	policy, err := allowTopic(ga.Attributes[string(types.QueueAttributeNamePolicy)], queueARN, topic)
	if err != nil {
		return "", err
	}
	if _, err := sqsClient.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), Attributes: map[string]string{string(types.QueueAttributeNamePolicy): policy},
	}); err != nil {
		return "", opError("SetQueueAttributes", queueURL, err)
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
	sid := "courier-sns-" + topic.Account + "-" + topic.Name
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
