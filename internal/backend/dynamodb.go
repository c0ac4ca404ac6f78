package backend

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB returns a DynamoDB client for the backend.
func (b *Backend) DynamoDB() *dynamodb.Client { return dynamodb.NewFromConfig(b.Config()) }

// CreateTable makes a uniquely named table shaped as courier's stores
// expect it (and as infra provisions it): a string partition key "pk",
// on-demand capacity, TTL on "expiresAt". It is deleted when the test
// ends. A backend without DynamoDB skips the test, loudly.
func (b *Backend) CreateTable(t testing.TB) string {
	t.Helper()
	if !b.Caps.DynamoDB {
		t.Skipf("BACKEND LACKS DynamoDB: %s", b.Name)
	}
	ctx := context.Background()
	client := b.DynamoDB()
	name := UniqueName(t)
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table %s on %s: %v", name, b.Name, err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("table %s: %v", name, err)
	}
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expiresAt"), Enabled: aws.Bool(true)},
	}); err != nil {
		t.Fatalf("TTL on %s: %v", name, err)
	}
	return name
}
