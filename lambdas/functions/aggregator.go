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
// on the response queue: a patterns.Aggregator whose store is a DynamoDB
// table (patterns.DynamoDBAggregateStore: conditional writes, so that any
// number of concurrent invocations complete each aggregate exactly once)
// and whose processor sends each completed aggregate to the result queue.
//
// Aggregates are opened, with their rule (all expected, quorum, deadline),
// by the patterns.Scatterer that sent the requests. A response to an
// aggregate no scatterer opened opens one whose rule is a quorum of
// COURIER_EXPECTED_RESPONSES (for requests sent by other means).

// AggregatorOptions is the aggregator's configuration.
type AggregatorOptions struct {
	Table          string // COURIER_AGGREGATE_TABLE: the DynamoDB table of the store
	ResultQueueURL string // COURIER_RESULT_QUEUE_URL: where completed aggregates go
	// Expected (COURIER_EXPECTED_RESPONSES) completes aggregates that no
	// scatterer opened: a quorum of this many responses.
	Expected int
}

// LoadAggregatorConfig reads the aggregator's configuration; all three
// variables are required.
func LoadAggregatorConfig(getenv Env) (AggregatorOptions, error) {
	var c AggregatorOptions
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

// Response is one gathered response, as the result message carries it.
type Response struct {
	// Responder is the responder's name (the "responder" header a
	// courier Responder sets on replies to scatter requests); empty from
	// a responder that does not name itself.
	Responder  string            `json:"responder,omitempty"`
	Queue      string            `json:"queue,omitempty"` // the responder's request queue
	MessageID  string            `json:"message_id"`
	Body       string            `json:"body"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Error      string            `json:"error,omitempty"` // an error reply's text
}

// Aggregate is a completed gather: the body of the result message.
type Aggregate struct {
	CorrelationID string     `json:"correlation_id"`
	Reason        string     `json:"reason"`            // all, quorum, deadline, predicate
	Missing       []string   `json:"missing,omitempty"` // expected responders that did not answer
	Responses     []Response `json:"responses"`
}

// ResponderHeader names the responder in a response.
const ResponderHeader = patterns.ResponderHeader

// Aggregator returns the aggregator's handler. A response without a
// correlation id, a late one or a duplicate is logged, counted and
// deleted. A store or send error fails the message, which SQS delivers
// again; a completed aggregate whose send failed is sent again on that
// redelivery. It is sent with the correlation id of its request (on a FIFO
// result queue also as group and deduplication id, so that a retried send
// within five minutes is dropped by SQS).
func Aggregator(client patterns.SQSAPI, store patterns.AggregateStore, cfg AggregatorOptions, log *slog.Logger) (patterns.Handler, error) {
	results, err := patterns.NewProducer(client, cfg.ResultQueueURL)
	if err != nil {
		return nil, err
	}
	fifo := false
	if q, err := patterns.ParseQueueURL(cfg.ResultQueueURL); err == nil {
		fifo = q.FIFO()
	}
	agg, err := patterns.NewAggregator(client, "", store, func(ctx context.Context, a *patterns.Aggregate) error {
		body, err := json.Marshal(resultOf(a))
		if err != nil {
			return fmt.Errorf("encode aggregate %s: %w", a.CorrelationID, err)
		}
		out := &patterns.Message{Body: body, CorrelationID: a.CorrelationID}
		if fifo {
			out.GroupID, out.DeduplicationID = a.CorrelationID, a.CorrelationID
		}
		if err := results.Send(ctx, out); err != nil {
			return fmt.Errorf("send aggregate %s: %w", a.CorrelationID, err)
		}
		log.InfoContext(ctx, "completed", "correlation_id", a.CorrelationID, "reason", a.Reason,
			"responses", len(a.Responses), "missing", a.Missing)
		return nil
	}, func(o *patterns.AggregatorOptions) {
		o.Logger = log
		o.Default = &patterns.Completion{Quorum: cfg.Expected}
	})
	if err != nil {
		return nil, err
	}
	return agg.Handler(), nil
}

func resultOf(a *patterns.Aggregate) Aggregate {
	out := Aggregate{CorrelationID: a.CorrelationID, Reason: string(a.Reason), Missing: a.Missing, Responses: []Response{}}
	for _, r := range a.Responses {
		out.Responses = append(out.Responses, Response{
			Responder: r.Responder, Queue: r.Queue, MessageID: r.MessageID, Body: string(r.Body), Attributes: r.Attributes, Error: r.Error,
		})
	}
	return out
}
