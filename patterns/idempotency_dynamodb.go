package patterns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBIdempotencyAPI is the part of *dynamodb.Client the DynamoDB
// idempotency store uses.
type DynamoDBIdempotencyAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ DynamoDBIdempotencyAPI = (*dynamodb.Client)(nil)

// IdempotencyStoreOptions shapes a DynamoDBIdempotencyStore.
type IdempotencyStoreOptions struct {
	// PartitionKey and TTLAttribute name the table's string partition
	// key and its TTL attribute (epoch seconds); default "pk" and
	// "expiresAt", the shape infra gives courier's tables.
	PartitionKey, TTLAttribute string
	// KeyPrefix goes before every key, so that one table can hold the
	// records of several handlers (and scatter-gather's aggregates);
	// default "idempotency#".
	KeyPrefix string
}

// DynamoDBIdempotencyStore keeps idempotency records in a DynamoDB
// table, one item per key, shared by every consumer process and Lambda
// invocation. Each step is one conditional write:
//
//   - Begin: PutItem if there is no item, or its TTL has passed (DynamoDB
//     deletes expired items only within a day or two), or it is in
//     progress past its inProgressUntil; a failed condition returns the
//     item as it was, which tells completed from in progress.
//   - Complete: UpdateItem to COMPLETED with the record's expiry, if the
//     delivery's token still owns it.
//   - Release: DeleteItem if the token still owns it and it is in progress.
type DynamoDBIdempotencyStore struct {
	client DynamoDBIdempotencyAPI
	table  string
	o      IdempotencyStoreOptions
	now    func() time.Time
}

// NewDynamoDBIdempotencyStore returns a store on table.
func NewDynamoDBIdempotencyStore(client DynamoDBIdempotencyAPI, table string, optFns ...func(*IdempotencyStoreOptions)) (*DynamoDBIdempotencyStore, error) {
	o := IdempotencyStoreOptions{PartitionKey: "pk", TTLAttribute: "expiresAt", KeyPrefix: "idempotency#"}
	for _, fn := range optFns {
		fn(&o)
	}
	switch {
	case client == nil:
		return nil, fmt.Errorf("%w: nil DynamoDB client", ErrInvalidConfig)
	case table == "":
		return nil, fmt.Errorf("%w: no DynamoDB table name", ErrInvalidConfig)
	case o.PartitionKey == "" || o.TTLAttribute == "" || o.PartitionKey == o.TTLAttribute:
		return nil, fmt.Errorf("%w: idempotency store options %+v", ErrInvalidConfig, o)
	}
	return &DynamoDBIdempotencyStore{client: client, table: table, o: o, now: time.Now}, nil
}

const (
	idemStatus     = "status"
	idemToken      = "token"
	idemUntil      = "inProgressUntil" // unix milliseconds
	idemInProgress = "IN_PROGRESS"
	idemCompleted  = "COMPLETED"
)

func (s *DynamoDBIdempotencyStore) key(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{s.o.PartitionKey: &types.AttributeValueMemberS{Value: s.o.KeyPrefix + k}}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// Begin implements IdempotencyStore.
func (s *DynamoDBIdempotencyStore) Begin(ctx context.Context, key, token string, until time.Time) (IdempotencyState, error) {
	now := s.now()
	item := s.key(key)
	item[idemStatus], item[idemToken] = str(idemInProgress), str(token)
	item[idemUntil] = num(until.UnixMilli())
	item[s.o.TTLAttribute] = num(until.Unix() + 1)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(#pk) OR #exp < :nows OR (#st = :inprog AND #until < :nowms)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": s.o.PartitionKey, "#exp": s.o.TTLAttribute, "#st": idemStatus, "#until": idemUntil,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":nows": num(now.Unix()), ":nowms": num(now.UnixMilli()), ":inprog": str(idemInProgress),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return IdempotencyStarted, nil
	case !errors.As(err, &cf):
		return 0, opError("PutItem", s.table, err)
	}
	old := cf.Item
	if len(old) == 0 {
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.key(key), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return 0, opError("GetItem", s.table, err)
		}
		old = out.Item
	}
	if st, ok := old[idemStatus].(*types.AttributeValueMemberS); ok && st.Value == idemCompleted {
		return IdempotencyCompleted, nil
	}
	return IdempotencyInProgress, nil
}

// Complete implements IdempotencyStore.
func (s *DynamoDBIdempotencyStore) Complete(ctx context.Context, key, token string, expires time.Time) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(key),
		UpdateExpression:         aws.String("SET #st = :done, #exp = :exp REMOVE #until"),
		ConditionExpression:      aws.String("#tok = :tok"),
		ExpressionAttributeNames: map[string]string{"#st": idemStatus, "#exp": s.o.TTLAttribute, "#until": idemUntil, "#tok": idemToken},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":done": str(idemCompleted), ":exp": num(expires.Unix()), ":tok": str(token),
		},
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return errNotOwner
	}
	return opError("UpdateItem", s.table, err)
}

// Release implements IdempotencyStore.
func (s *DynamoDBIdempotencyStore) Release(ctx context.Context, key, token string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: s.key(key),
		ConditionExpression:       aws.String("#tok = :tok AND #st = :inprog"),
		ExpressionAttributeNames:  map[string]string{"#tok": idemToken, "#st": idemStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(token), ":inprog": str(idemInProgress)},
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return errNotOwner
	}
	return opError("DeleteItem", s.table, err)
}
