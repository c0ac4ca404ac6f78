package cdkpatterns

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// idempotencyActions: what patterns.DynamoDBIdempotencyStore does (a
// conditional put, update and delete, and a read when the emulator or
// DynamoDB does not return the old item).
var idempotencyActions = []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}

// StateTableProps shapes a table of courier's DynamoDB stores.
type StateTableProps struct {
	// Key encrypts the table with a customer managed key; nil: the
	// AWS-managed key alias/aws/dynamodb.
	Key awskms.IKey
	// RemovalPolicy: default RETAIN, as for any table.
	RemovalPolicy awscdk.RemovalPolicy
}

// IdempotencyTable is the table of a consumer's idempotency records
// (patterns.Idempotent with a DynamoDBIdempotencyStore).
type IdempotencyTable struct {
	Table awsdynamodb.Table
	key   awskms.IKey
}

// NewIdempotencyTable provisions the table idempotent handlers keep their
// records in: the shape of every courier store (string partition key
// "pk", TTL on "expiresAt", on-demand, point-in-time recovery, KMS).
func NewIdempotencyTable(scope constructs.Construct, id string, props *StateTableProps) IdempotencyTable {
	p := StateTableProps{}
	if props != nil {
		p = *props
	}
	return IdempotencyTable{Table: newStateTable(scope, id, p), key: p.Key}
}

// Grant lets grantee (the consumer's role) keep records in the table.
func (t IdempotencyTable) Grant(grantee awsiam.IGrantable) {
	grant(grantee, idempotencyActions, *t.Table.TableArn())
	grantTableKey(grantee, t.key)
}

// grantTableKey: what DynamoDB needs, for the caller, on a customer
// managed table key (CDK's table grants add kms:ReEncrypt* and
// kms:GenerateDataKey* besides).
func grantTableKey(grantee awsiam.IGrantable, key awskms.IKey) {
	if key != nil {
		grant(grantee, []string{"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"}, *key.KeyArn())
	}
}

// newStateTable is a table of courier's stores.
func newStateTable(scope constructs.Construct, id string, p StateTableProps) awsdynamodb.Table {
	tp := &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String(AggregateTablePartitionKey), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String(AggregateTableTTLAttribute),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		Encryption:    awsdynamodb.TableEncryption_AWS_MANAGED,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	}
	if p.RemovalPolicy != "" {
		tp.RemovalPolicy = p.RemovalPolicy
	}
	if p.Key != nil {
		tp.Encryption = awsdynamodb.TableEncryption_CUSTOMER_MANAGED
		tp.EncryptionKey = p.Key
	}
	return awsdynamodb.NewTable(scope, jsii.String(id), tp)
}
