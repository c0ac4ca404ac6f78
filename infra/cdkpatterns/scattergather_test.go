package cdkpatterns_test

import (
	"slices"
	"testing"

	"github.com/courier-aws/courier/infra/internal/infratest"
	"github.com/courier-aws/courier/lambdas/contract"
)

func TestScatterGather(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["ScatterGather"]
	f.has(t, "ScatterGather", "AWS::DynamoDB::Table", map[string]any{
		"KeySchema":                        []any{map[string]any{"AttributeName": "pk", "KeyType": "HASH"}},
		"AttributeDefinitions":             []any{map[string]any{"AttributeName": "pk", "AttributeType": "S"}},
		"BillingMode":                      "PAY_PER_REQUEST",
		"TimeToLiveSpecification":          map[string]any{"AttributeName": "expiresAt", "Enabled": true},
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
		"SSESpecification":                 map[string]any{"SSEEnabled": true},
	})
	// Scatter topic, two responder queues, responses and results: 4 pairs.
	f.count(t, "ScatterGather", "AWS::SQS::Queue", 8)
	f.count(t, "ScatterGather", "AWS::SNS::Subscription", 2)
	f.has(t, "ScatterGather", "AWS::SQS::Queue", map[string]any{"VisibilityTimeout": 180})

	table := idOf(st, f.sg.Table.TableName())
	if dp := infratest.Resources(f.templates["ScatterGather"], "AWS::DynamoDB::Table")[table]["DeletionPolicy"]; dp != "Retain" {
		t.Errorf("table DeletionPolicy %v, want Retain by default", dp)
	}
	results := idOf(st, f.sg.Results.Queue.QueueArn())
	f.has(t, "ScatterGather", "AWS::Lambda::Function", map[string]any{
		"Environment": map[string]any{"Variables": map[string]any{
			contract.EnvLogLevel:          "info",
			contract.EnvAggregateTable:    ref(table),
			contract.EnvResultQueueURL:    ref(results),
			contract.EnvExpectedResponses: "2",
		}},
	})
	f.has(t, "ScatterGather", "AWS::Lambda::EventSourceMapping", map[string]any{
		"EventSourceArn":        arn(idOf(st, f.sg.Responses.Queue.QueueArn())),
		"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
	})

	got := policyActions(t, f.templates["ScatterGather"], idOf(st, f.sg.Aggregator.Role.RoleName()))
	want := []string{
		"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
		"logs:CreateLogStream", "logs:PutLogEvents",
		"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage",
	}
	if !slices.Equal(got, want) {
		t.Errorf("aggregator role allows %v, want exactly %v", got, want)
	}
	f.has(t, "ScatterGather", "AWS::IAM::Policy", map[string]any{
		"PolicyDocument": stmt(map[string]any{"Action": "sqs:SendMessage", "Resource": arn(results)}),
	})
}
