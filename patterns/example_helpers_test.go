package patterns_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/internal/backend"
)

// exampleClients returns clients for the local backend. In your code:
//
//	cfg, _ := config.LoadDefaultConfig(ctx) // honours AWS_ENDPOINT_URL
//	sqsClient := sqs.NewFromConfig(cfg)
func exampleClients() (*sqs.Client, *sns.Client) {
	b, ok := backend.First()
	if !ok {
		panic("examples need a backend; TestMain skips them without one")
	}
	return b.SQS(), b.SNS()
}

// exampleQueue makes a queue for an example and returns its URL and a
// function that deletes it.
func exampleQueue(client *sqs.Client, name string, attrs map[string]string) (string, func()) {
	var r [4]byte
	_, _ = rand.Read(r[:])
	full := "example-" + name + "-" + hex.EncodeToString(r[:])
	if attrs["FifoQueue"] == "true" {
		full += ".fifo"
	}
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(full), Attributes: attrs})
	if err != nil {
		panic(err)
	}
	return *out.QueueUrl, func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	}
}

// exampleTable makes a DynamoDB table shaped for courier's stores (string
// partition key "pk", TTL on "expiresAt"; infra provisions the same) and
// returns a client, its name and a function that deletes it.
func exampleTable() (*dynamodb.Client, string, func()) {
	b, _ := backend.First()
	client := b.DynamoDB()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := "example-" + hex.EncodeToString(r[:])
	ctx := context.Background()
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		panic(err)
	}
	if err := dynamodb.NewTableExistsWaiter(client).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		panic(err)
	}
	return client, name, func() { _, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}) }
}
