package patterns

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// ProducerOptions configures a Producer.
type ProducerOptions struct {
	// MaxMessageBytes is the largest message (body plus attributes) sent;
	// default MaxSQSMessageBytes. Set it to the queue's MaximumMessageSize
	// when that is lower.
	MaxMessageBytes int
	// Concurrency is how many batch requests the Producer has in flight,
	// for all Send calls together (their messages share batches). Default 4.
	Concurrency int
	// EntryRetries is how often an entry that SQS failed for a transient
	// reason is sent again (same entry id, same deduplication id). Default 3.
	EntryRetries int
	// RetryBackoff is the base of the exponential backoff between those
	// resends. Default 100ms.
	RetryBackoff time.Duration
	// TenantKey, on a standard queue, gives each message without a GroupID
	// the tenant key it returns as its MessageGroupId. SQS fair queues use
	// it to keep one noisy tenant from delaying the others' messages; the
	// queue needs no other setting, and order is not affected.
	TenantKey func(*Message) string
	// ClaimCheck, when set, sends bodies too large for the queue (or
	// above its Threshold) through S3, with a pointer in the Extended
	// Client format.
	ClaimCheck *ClaimCheck
	// Tracer, when set, traces each Send and carries the trace context in
	// the messages (patterns/oteltrace).
	Tracer Tracer
	// Metrics, when set, counts and times each Send: messages sent and
	// not sent, by error (patterns/otelmetric).
	Metrics Metrics
	Logger  *slog.Logger
}

// Producer sends messages to one SQS queue in batches
// (SendMessageBatch: up to 10 entries and 1 MiB a request).
type Producer struct {
	client    SQSSendAPI
	queue     QueueRef
	tenantKey func(*Message) string
	b         batcher
}

// NewProducer returns a Producer for the queue at queueURL.
func NewProducer(client SQSSendAPI, queueURL string, optFns ...func(*ProducerOptions)) (*Producer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	q, err := ParseQueueURL(queueURL)
	if err != nil {
		return nil, err
	}
	o := ProducerOptions{MaxMessageBytes: MaxSQSMessageBytes, Concurrency: 4, EntryRetries: 3, RetryBackoff: 100 * time.Millisecond}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.MaxMessageBytes <= 0 || o.MaxMessageBytes > MaxSQSMessageBytes || o.Concurrency < 1 || o.EntryRetries < 0 {
		return nil, fmt.Errorf("%w: producer options %+v", ErrInvalidConfig, o)
	}
	if o.TenantKey != nil && q.FIFO() {
		return nil, fmt.Errorf("%w: TenantKey is for standard queues; FIFO messages carry their own GroupID", ErrInvalidConfig)
	}
	p := &Producer{client: client, queue: q, tenantKey: o.TenantKey}
	p.b = batcher{
		op: "SendMessageBatch", resource: queueURL,
		maxMessage: o.MaxMessageBytes, maxBatch: MaxSQSMessageBytes,
		concurrency: o.Concurrency, retries: o.EntryRetries, backoff: o.RetryBackoff,
		fifo: q.FIFO(), validate: p.validate, send: p.sendBatch,
		claim: o.ClaimCheck, tracer: o.Tracer, metrics: o.Metrics,
	}
	return p, nil
}

// QueueURL returns the queue the producer sends to.
func (p *Producer) QueueURL() string { return p.queue.URL }

// Send sends msgs and returns nil only when SQS accepted every one of them;
// each message's ID (and SequenceNumber, FIFO) is then set. Otherwise the
// error is a *SendError naming the messages not sent; the others were sent.
// Messages that SQS would refuse (too large, bad group id, ...) fail before
// any request is made, and then none is sent.
//
// Send is safe for concurrent use, and concurrent Sends share batches: a
// service calling Send with one message from many goroutines makes about
// one request per ten messages. A Send with nothing else in flight goes at
// once. When ctx ends first, Send returns at once: its messages not yet in
// a request are not sent, and those in one are reported not sent with
// their outcome unknown (the request carries on for the other callers in
// it; do not change those messages until it could have ended). On a FIFO
// queue a group's messages are sent in the order of the Send calls, and
// after one fails, the group's messages waiting behind it are not sent
// (ErrGroupStopped).
func (p *Producer) Send(ctx context.Context, msgs ...*Message) error {
	return p.b.sendAll(ctx, msgs)
}

func (p *Producer) validate(m *Message) error {
	if p.tenantKey != nil && m.GroupID == "" {
		m.GroupID = p.tenantKey(m)
	}
	if p.queue.FIFO() {
		if err := ValidateGroupID(m.GroupID); err != nil {
			return err
		}
		if m.Delay != 0 {
			return fmt.Errorf("%w: FIFO queues take no per-message delay", ErrInvalidMessage)
		}
	} else if m.GroupID != "" {
		// A group id on a standard queue is a fair-queue tenant key.
		if err := ValidateGroupID(m.GroupID); err != nil {
			return err
		}
	}
	if m.DeduplicationID != "" {
		if err := validateDedupID(m.DeduplicationID); err != nil {
			return err
		}
	}
	return nil
}

func (p *Producer) sendBatch(ctx context.Context, msgs []*Message, sent []sentEntry) (map[int]entryFailure, error) {
	entries := make([]types.SendMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		e := types.SendMessageBatchRequestEntry{
			Id:                aws.String(entryID(i)),
			MessageBody:       aws.String(string(m.Body)),
			MessageAttributes: toSQSAttributes(m.wireAttributes()),
			DelaySeconds:      int32(m.Delay / time.Second),
		}
		if m.GroupID != "" {
			e.MessageGroupId = aws.String(m.GroupID)
		}
		if m.DeduplicationID != "" {
			e.MessageDeduplicationId = aws.String(m.DeduplicationID)
		}
		entries[i] = e
	}
	out, err := p.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.queue.URL), Entries: entries},
		func(o *sqs.Options) {
			if r, ok := fifoBatchRetry(p.queue.FIFO(), msgs, o.Retryer); ok {
				o.Retryer = r
			}
		})
	if err != nil {
		return nil, err
	}
	return batchOutcome("SQS", sent, out.Successful, out.Failed,
		func(s types.SendMessageBatchResultEntry) (*string, sentEntry) {
			return s.Id, sentEntry{ID: aws.ToString(s.MessageId), SequenceNumber: aws.ToString(s.SequenceNumber)}
		},
		func(f types.BatchResultErrorEntry) (*string, entryFailure) {
			return f.Id, entryFailure{Code: aws.ToString(f.Code), SenderFault: f.SenderFault, Message: aws.ToString(f.Message)}
		}), nil
}

func toSQSAttributes(attrs map[string]Attribute) map[string]types.MessageAttributeValue {
	return attributeValues(attrs, func(dataType, value *string, binary []byte) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: dataType, StringValue: value, BinaryValue: binary}
	})
}

func fromSQSAttributes(attrs map[string]types.MessageAttributeValue) map[string]Attribute {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]Attribute, len(attrs))
	for k, v := range attrs {
		out[k] = Attribute{DataType: aws.ToString(v.DataType), Value: aws.ToString(v.StringValue), Binary: v.BinaryValue}
	}
	return out
}

// ValidateGroupID checks a message group id as SQS and SNS do: 1 to 128
// characters, letters, digits and punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~).
func ValidateGroupID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: missing (FIFO queues and topics require a message group id)", ErrInvalidGroupID)
	}
	if len(id) > 128 {
		return fmt.Errorf("%w: %d characters, the limit is 128", ErrInvalidGroupID, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: %q has character %q at %d (allowed: letters, digits, punctuation)", ErrInvalidGroupID, id, c, i)
		}
	}
	return nil
}

// validateDedupID applies the same rules to a deduplication id.
func validateDedupID(id string) error {
	if len(id) > 128 {
		return fmt.Errorf("%w: deduplication id of %d characters, the limit is 128", ErrInvalidMessage, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: deduplication id %q has character %q at %d", ErrInvalidMessage, id, c, i)
		}
	}
	return nil
}
