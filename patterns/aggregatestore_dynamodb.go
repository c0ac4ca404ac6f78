package patterns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBAPI is the part of *dynamodb.Client the DynamoDB aggregate
// store uses.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ DynamoDBAPI = (*dynamodb.Client)(nil)

// DynamoDBAggregateStore keeps aggregates in a DynamoDB table, one item
// per aggregate, so that any number of aggregators (processes, concurrent
// Lambda invocations) share them and each aggregate completes exactly once.
//
// The table has a string partition key ("pk") and TTL enabled on
// "expiresAt" (epoch seconds), as infra/cdkpatterns.NewScatterGather
// provisions it. Every change is one conditional write (UpdateItem with a
// condition expression), so two aggregators cannot both count a
// responder, both complete an aggregate, or count a response after
// completion:
//
//   - Add sets the attribute "r:<responder>" only if it is absent and the
//     aggregate is open and not expired (DynamoDB deletes expired items
//     only within a day or two, so expiry is part of the condition), and
//     returns the item as it is after the write. A failed condition
//     returns the item as it was (ReturnValuesOnConditionCheckFailure),
//     which tells a duplicate from a late response at no further cost.
//   - Complete sets "completedAt" only if it is absent: of concurrent
//     callers exactly one succeeds.
//
// An aggregate lives in one item, and an item holds at most 400 KB:
// gather large responses by reference (store the payload elsewhere and
// respond with its key).
type DynamoDBAggregateStore struct {
	client DynamoDBAPI
	table  string
	o      AggregateStoreOptions
	now    func() time.Time
}

// NewDynamoDBAggregateStore returns a store on table.
func NewDynamoDBAggregateStore(client DynamoDBAPI, table string, optFns ...func(*AggregateStoreOptions)) (*DynamoDBAggregateStore, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil DynamoDB client", ErrInvalidConfig)
	}
	if table == "" {
		return nil, fmt.Errorf("%w: no DynamoDB table name", ErrInvalidConfig)
	}
	o, err := newAggregateStoreOptions(optFns)
	if err != nil {
		return nil, err
	}
	return &DynamoDBAggregateStore{client: client, table: table, o: o, now: time.Now}, nil
}

// Attribute names of an aggregate item, besides the partition key and TTL
// attribute. Responses are the attributes "r:<key>".
const (
	ddbOpenedAt    = "openedAt"
	ddbExpected    = "expected"
	ddbQuorum      = "quorum"
	ddbDeadline    = "deadline"
	ddbCount       = "n"
	ddbCompletedAt = "completedAt"
	ddbReason      = "reason"
	ddbCompletedBy = "completedBy"
	ddbProcessedAt = "processedAt"
	ddbResponse    = "r:"
)

// dynamoAggregate is the fixed part of an aggregate item.
type dynamoAggregate struct {
	OpenedAt    int64    `dynamodbav:"openedAt"`
	Expected    []string `dynamodbav:"expected"`
	Quorum      int      `dynamodbav:"quorum"`
	Deadline    int64    `dynamodbav:"deadline"`
	CompletedAt int64    `dynamodbav:"completedAt"`
	Reason      string   `dynamodbav:"reason"`
	CompletedBy string   `dynamodbav:"completedBy"`
	ProcessedAt int64    `dynamodbav:"processedAt"`
}

// dynamoResponse is one "r:<key>" attribute.
type dynamoResponse struct {
	Responder  string            `dynamodbav:"rid,omitempty"`
	Queue      string            `dynamodbav:"q,omitempty"`
	MessageID  string            `dynamodbav:"mid"`
	Body       []byte            `dynamodbav:"body"`
	Attributes map[string]string `dynamodbav:"attrs,omitempty"`
	Error      string            `dynamodbav:"err,omitempty"`
	At         int64             `dynamodbav:"at"` // unix milliseconds
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func (s *DynamoDBAggregateStore) key(cid string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{s.o.PartitionKey: &types.AttributeValueMemberS{Value: cid}}
}

func (s *DynamoDBAggregateStore) expiry(opened time.Time) int64 { return opened.Add(s.o.TTL).Unix() }

// Open implements AggregateStore: PutItem if no item has the key.
func (s *DynamoDBAggregateStore) Open(ctx context.Context, a *Aggregate) error {
	if err := checkOpen(a); err != nil {
		return err
	}
	item := s.key(a.CorrelationID)
	item[s.o.TTLAttribute] = num(s.expiry(a.OpenedAt))
	item[ddbOpenedAt] = num(ms(a.OpenedAt))
	item[ddbCount] = num(0)
	if len(a.Expected) > 0 {
		l := make([]types.AttributeValue, len(a.Expected))
		for i, e := range a.Expected {
			l[i] = &types.AttributeValueMemberS{Value: e}
		}
		item[ddbExpected] = &types.AttributeValueMemberL{Value: l}
	}
	if a.Quorum > 0 {
		item[ddbQuorum] = num(int64(a.Quorum))
	}
	if !a.Deadline.IsZero() {
		item[ddbDeadline] = num(ms(a.Deadline))
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": s.o.PartitionKey},
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return fmt.Errorf("%w: %s", ErrAggregateExists, a.CorrelationID)
	}
	return opError("PutItem", s.table, err)
}

// Add implements AggregateStore with one conditional UpdateItem.
func (s *DynamoDBAggregateStore) Add(ctx context.Context, cid string, r Response, implicit *Aggregate) (AddResult, error) {
	k := ddbResponse + r.key()
	rv, err := attributevalue.Marshal(dynamoResponse{
		Responder: r.Responder, Queue: r.Queue, MessageID: r.MessageID, Body: r.Body, Attributes: r.Attributes, Error: r.Error, At: ms(r.ReceivedAt),
	})
	if err != nil {
		return AddResult{}, fmt.Errorf("courier: aggregate %s: encode response: %w", cid, err)
	}
	now := s.now()
	names := map[string]string{"#r": k, "#n": ddbCount, "#c": ddbCompletedAt, "#exp": s.o.TTLAttribute, "#dl": ddbDeadline}
	values := map[string]types.AttributeValue{":r": rv, ":one": num(1), ":now": num(now.Unix()), ":at": num(ms(r.ReceivedAt))}
	update := "SET #r = :r"
	cond := "attribute_not_exists(#r) AND attribute_not_exists(#c) AND (attribute_not_exists(#dl) OR #dl > :at)"
	if implicit == nil {
		names["#pk"] = s.o.PartitionKey
		cond += " AND attribute_exists(#pk) AND #exp > :now"
	} else {
		if err := checkOpen(&Aggregate{CorrelationID: cid, OpenedAt: implicit.OpenedAt}); err != nil {
			return AddResult{}, err
		}
		cond += " AND (attribute_not_exists(#exp) OR #exp > :now)"
		names["#o"] = ddbOpenedAt
		values[":o"], values[":e"] = num(ms(implicit.OpenedAt)), num(s.expiry(implicit.OpenedAt))
		update += ", #o = if_not_exists(#o, :o), #exp = if_not_exists(#exp, :e)"
		if len(implicit.Expected) > 0 {
			ev, _ := attributevalue.Marshal(implicit.Expected)
			names["#x"], values[":x"] = ddbExpected, ev
			update += ", #x = if_not_exists(#x, :x)"
		}
		if implicit.Quorum > 0 {
			names["#q"], values[":q"] = ddbQuorum, num(int64(implicit.Quorum))
			update += ", #q = if_not_exists(#q, :q)"
		}
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(cid),
		UpdateExpression: aws.String(update + " ADD #n :one"), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &cf):
		return s.classify(ctx, cid, k, r, now, cf.Item)
	case err != nil:
		return AddResult{}, opError("UpdateItem", s.table, err)
	}
	a, err := s.decode(cid, out.Attributes)
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{Outcome: Added, Aggregate: a}, nil
}

// classify tells why Add's condition failed, from the item as it was.
func (s *DynamoDBAggregateStore) classify(ctx context.Context, cid, k string, resp Response, now time.Time, old map[string]types.AttributeValue) (AddResult, error) {
	if len(old) == 0 {
		// No item, or a DynamoDB that does not return it: look.
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.key(cid), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return AddResult{}, opError("GetItem", s.table, err)
		}
		if old = out.Item; len(old) == 0 {
			return AddResult{Outcome: Unknown}, nil
		}
	}
	if prev, ok := old[k]; ok {
		var r dynamoResponse
		if err := attributevalue.Unmarshal(prev, &r); err == nil && r.MessageID == resp.MessageID {
			a, err := s.decode(cid, old)
			if err != nil {
				return AddResult{}, err
			}
			return AddResult{Outcome: AlreadyAdded, Aggregate: a}, nil
		}
	}
	var exp, deadline int64
	_ = attributevalue.Unmarshal(old[s.o.TTLAttribute], &exp)
	_ = attributevalue.Unmarshal(old[ddbDeadline], &deadline)
	_, complete := old[ddbCompletedAt]
	_, answered := old[k]
	switch {
	case exp != 0 && exp <= now.Unix():
		return AddResult{Outcome: Unknown}, nil
	case complete || (deadline != 0 && deadline <= ms(resp.ReceivedAt)):
		a, err := s.decode(cid, old)
		if err != nil {
			return AddResult{}, err
		}
		return AddResult{Outcome: Late, Aggregate: a}, nil
	case answered:
		return AddResult{Outcome: Duplicate}, nil
	}
	return AddResult{}, fmt.Errorf("courier: aggregate %s: the conditional add failed for no reason the item shows", cid)
}

// Complete implements AggregateStore with one conditional UpdateItem:
// completedAt is set only where it is absent.
func (s *DynamoDBAggregateStore) Complete(ctx context.Context, cid string, reason CompletionReason, by string, at time.Time) (*Aggregate, error) {
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(cid),
		UpdateExpression:    aws.String("SET #c = :at, #why = :why, #by = :by"),
		ConditionExpression: aws.String("attribute_exists(#pk) AND attribute_not_exists(#c)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": s.o.PartitionKey, "#c": ddbCompletedAt, "#why": ddbReason, "#by": ddbCompletedBy,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at": num(ms(at)), ":why": &types.AttributeValueMemberS{Value: string(reason)}, ":by": &types.AttributeValueMemberS{Value: by},
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &cf):
		old := cf.Item
		if len(old) == 0 {
			if a, err := s.Get(ctx, cid); a == nil || err != nil {
				return nil, err
			} else if a.CompletedBy == by && !a.Processed {
				return a, nil
			}
			return nil, nil
		}
		a, err := s.decode(cid, old)
		if err != nil || a.CompletedBy != by || a.Processed {
			return nil, err
		}
		return a, nil // the same message again: its processor failed
	case err != nil:
		return nil, opError("UpdateItem", s.table, err)
	}
	return s.decode(cid, out.Attributes)
}

// MarkProcessed implements AggregateStore.
func (s *DynamoDBAggregateStore) MarkProcessed(ctx context.Context, cid string) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(cid),
		UpdateExpression:          aws.String("SET #p = :now"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#pk": s.o.PartitionKey, "#p": ddbProcessedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(ms(s.now()))},
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return nil // expired and gone
	}
	return opError("UpdateItem", s.table, err)
}

// Get implements AggregateStore (a strongly consistent read).
func (s *DynamoDBAggregateStore) Get(ctx context.Context, cid string) (*Aggregate, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.key(cid), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, opError("GetItem", s.table, err)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	var exp int64
	_ = attributevalue.Unmarshal(out.Item[s.o.TTLAttribute], &exp)
	if exp != 0 && exp <= s.now().Unix() {
		return nil, nil // expired, not yet deleted
	}
	return s.decode(cid, out.Item)
}

// decode turns an item into an Aggregate.
func (s *DynamoDBAggregateStore) decode(cid string, item map[string]types.AttributeValue) (*Aggregate, error) {
	var d dynamoAggregate
	if err := attributevalue.UnmarshalMap(item, &d); err != nil {
		return nil, fmt.Errorf("courier: aggregate %s in %s: %w", cid, s.table, err)
	}
	a := &Aggregate{
		CorrelationID: cid, Expected: d.Expected, Quorum: d.Quorum, Deadline: fromMS(d.Deadline), OpenedAt: fromMS(d.OpenedAt),
		CompletedAt: fromMS(d.CompletedAt), Reason: CompletionReason(d.Reason), CompletedBy: d.CompletedBy, Processed: d.ProcessedAt != 0,
	}
	for name, v := range item {
		if !strings.HasPrefix(name, ddbResponse) {
			continue
		}
		var r dynamoResponse
		if err := attributevalue.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("courier: aggregate %s in %s: response %s: %w", cid, s.table, name, err)
		}
		a.Responses = append(a.Responses, Response{
			Responder: r.Responder, Queue: r.Queue, MessageID: r.MessageID, Body: r.Body, Attributes: r.Attributes, Error: r.Error, ReceivedAt: fromMS(r.At),
		})
	}
	slices.SortFunc(a.Responses, func(x, y Response) int {
		return cmp.Or(x.ReceivedAt.Compare(y.ReceivedAt), strings.Compare(x.MessageID, y.MessageID))
	})
	if a.Complete() {
		a.Missing = a.missing()
	}
	return a, nil
}
