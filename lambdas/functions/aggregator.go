package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/patterns"
)

// The aggregator is the gather half of scatter-gather as a Lambda function
// on the response queue: it groups responses by correlation id and, when
// an aggregate holds the expected number, sends it to the result queue
// (the processor's input). Its state lives in an AggregateStore so that
// many concurrent invocations complete each aggregate once.
//
// What this package defines is the Lambda glue and the smallest store
// interface it needs; the stores themselves (DynamoDB with conditional
// writes and TTL, in memory) and richer completion rules (quorum,
// deadline, predicate) belong to scatter-gather in patterns.

// AggregatorConfig is the aggregator's configuration.
type AggregatorConfig struct {
	Table          string // COURIER_AGGREGATE_TABLE: the DynamoDB table of the store
	ResultQueueURL string // COURIER_RESULT_QUEUE_URL: where completed aggregates go
	Expected       int    // COURIER_EXPECTED_RESPONSES: responses that complete an aggregate
}

// LoadAggregatorConfig reads the aggregator's configuration; all three
// variables are required.
func LoadAggregatorConfig(getenv Env) (AggregatorConfig, error) {
	var c AggregatorConfig
	var err error
	if c.Table, err = required(getenv, contract.EnvAggregateTable); err != nil {
		return c, err
	}
	if c.ResultQueueURL, err = required(getenv, contract.EnvResultQueueURL); err != nil {
		return c, err
	}
	if _, err := patterns.ParseQueueURL(c.ResultQueueURL); err != nil {
		return c, fmt.Errorf("%s: %w", contract.EnvResultQueueURL, err)
	}
	s, err := required(getenv, contract.EnvExpectedResponses)
	if err != nil {
		return c, err
	}
	if c.Expected, err = strconv.Atoi(s); err != nil || c.Expected < 1 {
		return c, fmt.Errorf("%w: %s=%q: want a whole number of at least 1", patterns.ErrInvalidConfig, contract.EnvExpectedResponses, s)
	}
	return c, nil
}

// Response is one gathered response.
type Response struct {
	// Key identifies the response within its aggregate: the "responder"
	// header when the responder sets one (so that a responder that ran
	// twice counts once), else the SQS message id (so that a redelivery
	// counts once).
	Key        string            `json:"key"`
	MessageID  string            `json:"message_id"`
	Body       string            `json:"body"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Aggregate is a completed gather, the body sent to the result queue.
type Aggregate struct {
	CorrelationID string     `json:"correlation_id"`
	Responses     []Response `json:"responses"`
}

// ResponderHeader names the responder in a response, for Response.Key.
const ResponderHeader = "responder"

// AggregateStore keeps open aggregates. Scatter-gather's stores satisfy it.
type AggregateStore interface {
	// Add records r in the aggregate correlationID (a Key already there
	// counts once) and returns the aggregate to the one Add that completes
	// it (brings it to expected responses; of concurrent Adds, exactly
	// one), and again to a later Add of that same message (MessageID: SQS
	// delivering it again) until MarkProcessed, so that when sending the
	// aggregate failed, the redelivered response sends it again. Every
	// other Add returns nil, a duplicate response under another message
	// id included.
	Add(ctx context.Context, correlationID string, r Response, expected int) (*Aggregate, error)
	// MarkProcessed records that the aggregate reached its processor.
	MarkProcessed(ctx context.Context, correlationID string) error
}

// Aggregator returns the aggregator's handler. A response without a
// correlation id can never complete anything: it is logged and dropped. A
// store or send error fails the message, which SQS delivers again. A
// completed aggregate is sent with the correlation id of its request (on
// a FIFO result queue also as group and deduplication id, so that a
// retried send within five minutes is dropped by SQS).
func Aggregator(client patterns.SQSSendAPI, store AggregateStore, cfg AggregatorConfig, log *slog.Logger) (patterns.Handler, error) {
	results, err := patterns.NewProducer(client, cfg.ResultQueueURL)
	if err != nil {
		return nil, err
	}
	fifo := false
	if q, err := patterns.ParseQueueURL(cfg.ResultQueueURL); err == nil {
		fifo = q.FIFO()
	}
	return func(ctx context.Context, m *patterns.Message) error {
		cid := m.CorrelationID
		if cid == "" {
			log.WarnContext(ctx, "response without a correlation id; dropped", "message_id", m.ID)
			return nil
		}
		key := m.Header(ResponderHeader)
		if key == "" {
			key = m.ID
		}
		agg, err := store.Add(ctx, cid, Response{Key: key, MessageID: m.ID, Body: string(m.Body), Attributes: attributeValues(m.Attributes)}, cfg.Expected)
		if err != nil {
			return fmt.Errorf("courier: aggregator: add response %s to %s: %w", m.ID, cid, err)
		}
		if agg == nil {
			log.InfoContext(ctx, "gathered", "correlation_id", cid, "message_id", m.ID, "key", key)
			return nil
		}
		body, err := json.Marshal(agg)
		if err != nil {
			return fmt.Errorf("courier: aggregator: encode aggregate %s: %w", cid, err)
		}
		out := &patterns.Message{Body: body, CorrelationID: cid}
		if fifo {
			out.GroupID, out.DeduplicationID = cid, cid
		}
		if err := results.Send(ctx, out); err != nil {
			return fmt.Errorf("courier: aggregator: send aggregate %s: %w", cid, err)
		}
		if err := store.MarkProcessed(ctx, cid); err != nil {
			// Sent already: a redelivered response would send it again.
			log.WarnContext(ctx, "aggregate sent but not marked processed", "correlation_id", cid, "err", err)
		}
		log.InfoContext(ctx, "completed", "correlation_id", cid, "responses", len(agg.Responses))
		return nil
	}, nil
}
