// Package adapter runs a patterns.Handler, the same handler a long-running
// Consumer runs, inside AWS Lambda: SQS events with partial batch responses
// (ReportBatchItemFailures), and SNS events.
//
//	func main() {
//		lambda.Start(adapter.SQSHandler(handle))
//	}
//
// The event source mapping must have FunctionResponseTypes
// ["ReportBatchItemFailures"]; without it Lambda ignores the response and
// retries the whole batch when the function returns an error.
package adapter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/courier-aws/courier/patterns"
)

// Options configures the adapters.
type Options struct {
	// Concurrency bounds the messages (standard queues) or groups (FIFO)
	// handled at once. Default 10.
	Concurrency int
	// Raw turns off SNS envelope unwrapping, as ConsumerConfig.Raw.
	Raw bool
	// DeadlineMargin: a message not started when less than this is left
	// before the invocation's deadline is reported failed without being
	// started, so that it is retried instead of cut off mid-way. Default 2s.
	DeadlineMargin time.Duration
	Logger         *slog.Logger
}

func options(optFns []func(*Options)) Options {
	o := Options{Concurrency: 10, DeadlineMargin: 2 * time.Second}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// SQSHandler returns a Lambda handler for SQS events that runs h on each
// record and reports the records that failed (decode error, handler error
// or panic, or no time left) as batch item failures; Lambda deletes the
// others. On a FIFO queue the records of one message group run in order,
// one at a time, and after a failure the group's remaining records are
// reported failed without being run, so the group's order holds when they
// come again; other groups go on. (AWS's guidance for FIFO is to stop at
// the first failure of the batch; stopping per group keeps the same order
// guarantee, since SQS orders within a group only, and retries less.)
func SQSHandler(h patterns.Handler, optFns ...func(*Options)) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	o := options(optFns)
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		runs := splitRuns(ev.Records)
		failed := make([][]string, len(runs))
		sem := make(chan struct{}, o.Concurrency)
		var wg sync.WaitGroup
		for i, run := range runs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				failed[i] = handleRun(ctx, h, o, run)
			}()
		}
		wg.Wait()
		var resp events.SQSEventResponse
		for _, f := range failed {
			for _, id := range f {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
			}
		}
		return resp, nil
	}
}

type run struct {
	fifo    bool
	records []events.SQSMessage
}

// splitRuns groups FIFO records by message group (in order) and gives each
// standard record a run of its own.
func splitRuns(records []events.SQSMessage) []run {
	var runs []run
	index := map[string]int{}
	for _, r := range records {
		if !strings.HasSuffix(r.EventSourceARN, ".fifo") {
			runs = append(runs, run{records: []events.SQSMessage{r}})
			continue
		}
		g := r.Attributes["MessageGroupId"]
		if i, ok := index[g]; ok {
			runs[i].records = append(runs[i].records, r)
			continue
		}
		index[g] = len(runs)
		runs = append(runs, run{fifo: true, records: []events.SQSMessage{r}})
	}
	return runs
}

// handleRun runs a run's records in order and returns the ids that failed.
func handleRun(ctx context.Context, h patterns.Handler, o Options, r run) []string {
	var failed []string
	for i, rec := range r.records {
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < o.DeadlineMargin {
			for _, rest := range r.records[i:] {
				failed = append(failed, rest.MessageId)
			}
			o.Logger.Warn("courier: too little time left; records left for a retry", "count", len(r.records)-i)
			return failed
		}
		if err := handleRecord(ctx, h, o, rec); err != nil {
			o.Logger.Warn("courier: record failed; it will be delivered again", "message_id", rec.MessageId, "err", err)
			failed = append(failed, rec.MessageId)
			if r.fifo {
				for _, rest := range r.records[i+1:] {
					failed = append(failed, rest.MessageId)
				}
				return failed
			}
		}
	}
	return failed
}

func handleRecord(ctx context.Context, h patterns.Handler, o Options, rec events.SQSMessage) (err error) {
	m, err := patterns.DecodeSQSMessage(Record(rec), o.Raw)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("courier: handler panicked: %v", p)
		}
	}()
	return h(ctx, m)
}

// Record converts a Lambda SQS record into the form patterns decodes.
func Record(rec events.SQSMessage) patterns.SQSRecord {
	attrs := make(map[string]patterns.Attribute, len(rec.MessageAttributes))
	for k, a := range rec.MessageAttributes {
		v := patterns.Attribute{DataType: a.DataType, Binary: a.BinaryValue}
		if a.StringValue != nil {
			v.Value = *a.StringValue
		}
		attrs[k] = v
	}
	return patterns.SQSRecord{
		MessageID:         rec.MessageId,
		ReceiptHandle:     rec.ReceiptHandle,
		Body:              rec.Body,
		Attributes:        rec.Attributes,
		MessageAttributes: attrs,
		QueueURL:          QueueURL(rec.EventSourceARN),
	}
}

// QueueURL turns a queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME) into its URL.
func QueueURL(arn string) string {
	p := strings.Split(arn, ":")
	if len(p) != 6 {
		return ""
	}
	return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", p[3], p[4], p[5])
}

// SNSHandler returns a Lambda handler for SNS events (a function subscribed
// to a topic directly). SNS has no partial batch response: if any record
// fails the invocation fails and SNS retries the delivery by its delivery
// policy, then drops it (or sends it to the subscription's DLQ). Chain a
// queue instead where a message must not be lost.
func SNSHandler(h patterns.Handler, optFns ...func(*Options)) func(context.Context, events.SNSEvent) error {
	o := options(optFns)
	return func(ctx context.Context, ev events.SNSEvent) error {
		var errs []string
		for _, rec := range ev.Records {
			m, err := snsMessage(rec.SNS)
			if err == nil {
				err = func() (err error) {
					defer func() {
						if p := recover(); p != nil {
							err = fmt.Errorf("courier: handler panicked: %v", p)
						}
					}()
					return h(ctx, m)
				}()
			}
			if err != nil {
				o.Logger.Warn("courier: SNS record failed", "message_id", rec.SNS.MessageID, "err", err)
				errs = append(errs, rec.SNS.MessageID+": "+err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("courier: %d of %d SNS records failed: %s", len(errs), len(ev.Records), strings.Join(errs, "; "))
		}
		return nil
	}
}

// snsMessage reads an SNS event record through the same envelope parser the
// Consumer uses, so attributes and courier headers come out the same way.
func snsMessage(e events.SNSEntity) (*patterns.Message, error) {
	env, err := json.Marshal(map[string]any{
		"Type": "Notification", "MessageId": e.MessageID, "TopicArn": e.TopicArn,
		"Message": e.Message, "MessageAttributes": e.MessageAttributes,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", patterns.ErrMalformedEnvelope, err)
	}
	m, err := patterns.ParseSNSEnvelope(env)
	if err != nil {
		return nil, err
	}
	m.ID = e.MessageID
	return m, nil
}
