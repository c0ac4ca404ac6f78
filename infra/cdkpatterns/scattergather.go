package cdkpatterns

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/lambdas/contract"
)

// The aggregate table's key and TTL attribute, as the aggregator's store
// reads them.
const (
	AggregateTablePartitionKey = "pk"
	AggregateTableTTLAttribute = "expiresAt"
)

// aggregatorTableActions: item reads and writes, conditional ones
// included; no Scan, no streams, no table management.
var aggregatorTableActions = []string{
	"dynamodb:GetItem", "dynamodb:Query",
	"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
}

// ScatterGatherProps shapes scatter-gather.
type ScatterGatherProps struct {
	// TopicKey encrypts the scatter topic; nil: AWSManagedSNSKey.
	TopicKey awskms.IKey
	// Responders: the queues subscribed to the scatter topic, each with
	// its filter policy (the processors that consume them are yours).
	Responders []SubscriberProps
	// Responses: the queue the responders reply to, which the aggregator
	// consumes. Its VisibilityTimeout defaults to
	// LambdaVisibilityTimeout(Aggregator).
	Responses QueueWithDLQProps
	// Results: where the aggregator sends each completed aggregate.
	Results QueueWithDLQProps
	// ExpectedResponses completes an aggregate that no scatterer opened
	// (a quorum of this many); default len(Responders). Aggregates a
	// patterns.Scatterer opens carry their own rule.
	ExpectedResponses int
	// TableKey encrypts the table with a customer managed key; nil: the
	// AWS-managed key alias/aws/dynamodb.
	TableKey awskms.IKey
	// TableRemovalPolicy: what CloudFormation does with the table when it
	// leaves the stack; default RETAIN, as for any table (aggregates in
	// flight are lost with it). DESTROY suits throwaway stacks.
	TableRemovalPolicy awscdk.RemovalPolicy
	// Aggregator: the function's options.
	Aggregator FunctionOptions
	// FunctionScope is where the aggregator goes; nil: scope.
	FunctionScope constructs.Construct
}

// ScatterGather is the scatter topic and its responder queues, the
// response queue with the aggregator on it, the aggregator's state table,
// and the result queue.
type ScatterGather struct {
	Scatter    TopicQueueChain
	Responses  QueueWithDLQ
	Results    QueueWithDLQ
	Table      awsdynamodb.Table
	Aggregator QueueFunction
}

// GrantScatter lets grantee (a patterns.Scatterer) publish to the scatter
// topic, open aggregates in the table (PutItem, conditional) and send
// deadline messages to the response queue.
func (s ScatterGather) GrantScatter(grantee awsiam.IGrantable) {
	s.Scatter.GrantPublish(grantee)
	grant(grantee, []string{"dynamodb:PutItem"}, *s.Table.TableArn())
	grantTableKey(grantee, s.Table.EncryptionKey())
	s.Responses.GrantSend(grantee)
}

// GrantRespond lets grantee (a responder's processor) send to the response queue.
func (s ScatterGather) GrantRespond(grantee awsiam.IGrantable) { s.Responses.GrantSend(grantee) }

// NewScatterGather provisions scatter-gather: a scatter topic with the
// responder queues chained to it (NewTopicQueueChain), a response queue
// (+DLQ) consumed by the aggregator (lambdas/aggregator), a result queue
// (+DLQ), and a DynamoDB table for the aggregates: partition key "pk"
// (string), TTL on "expiresAt", on-demand, point-in-time recovery,
// encrypted with a KMS key. The aggregator may read and write items of the
// table (no Scan, no table management) and send to the result queue.
func NewScatterGather(scope constructs.Construct, id string, props *ScatterGatherProps) ScatterGather {
	p := ScatterGatherProps{}
	if props != nil {
		p = *props
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	if p.ExpectedResponses == 0 {
		p.ExpectedResponses = len(p.Responders)
	}
	if p.ExpectedResponses < 1 {
		invalid(c, fmt.Sprintf("ExpectedResponses %d: want at least 1 (or Responders)", p.ExpectedResponses))
	}
	if p.Responses.VisibilityTimeout == nil {
		p.Responses.VisibilityTimeout = LambdaVisibilityTimeout(p.Aggregator)
	}

	scatter := NewTopicQueueChain(c, "Scatter", &TopicQueueChainProps{TopicKey: p.TopicKey, Subscribers: p.Responders})
	responses := NewQueueWithDLQ(c, "Responses", &p.Responses)
	results := NewQueueWithDLQ(c, "Results", &p.Results)

	table := newStateTable(c, "Aggregates", StateTableProps{Key: p.TableKey, RemovalPolicy: p.TableRemovalPolicy})

	aggregator := NewQueueFunction(functionScope(c, p.FunctionScope, id), "Aggregator", &QueueFunctionProps{
		Name:  "aggregator",
		Queue: responses,
		Environment: map[string]string{
			contract.EnvAggregateTable:    *table.TableName(),
			contract.EnvResultQueueURL:    *results.Queue.QueueUrl(),
			contract.EnvExpectedResponses: strconv.Itoa(p.ExpectedResponses),
		},
		FunctionOptions: p.Aggregator,
	})
	grant(aggregator.Role, aggregatorTableActions, *table.TableArn())
	grantTableKey(aggregator.Role, p.TableKey)
	results.GrantSend(aggregator.Role)
	// A deadline message that comes early (a deadline past the 15 minutes
	// SQS can delay) is sent again to the response queue.
	responses.GrantSend(aggregator.Role)

	return ScatterGather{Scatter: scatter, Responses: responses, Results: results, Table: table, Aggregator: aggregator}
}
