package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// Message is a message as it sits in a queue, as Peek shows it.
type Message struct {
	ID   string
	Body string
	// Attributes are the message attributes as SQS holds them (courier's
	// own header attribute included: a redrive must carry it).
	Attributes      map[string]types.MessageAttributeValue
	GroupID         string
	DeduplicationID string
	SequenceNumber  string
	// ReceiveCount is ApproximateReceiveCount as SQS returned it: it
	// counts the Peek's own receive.
	ReceiveCount int
	// FirstReceived is ApproximateFirstReceiveTimestamp: the first time
	// the message was received (on a dead-letter queue: by whom SQS says).
	FirstReceived time.Time
	SentAt        time.Time
	// SourceARN is DeadLetterQueueSourceArn: the queue SQS moved it from.
	SourceARN string
	// System holds every system attribute SQS returned.
	System map[string]string

	receipt string
}

// PeekOptions shapes a Peek.
type PeekOptions struct {
	// Max is how many messages to return at most (default 10).
	Max int
	// Hold is the visibility timeout of Peek's receives, the longest the
	// messages are hidden from consumers if Peek cannot give them back
	// (default 30s, at least 1s).
	Hold time.Duration
	// Wait is the long poll of each receive (default 1s; 0 < Wait <= 20s).
	// Peek stops at the first receive that returns nothing new.
	Wait time.Duration
}

func peekOptions(optFns []func(*PeekOptions)) (PeekOptions, error) {
	o := PeekOptions{Max: 10, Hold: 30 * time.Second, Wait: time.Second}
	for _, fn := range optFns {
		fn(&o)
	}
	switch {
	case o.Max < 1:
		return o, fmt.Errorf("%w: PeekOptions.Max %d, want at least 1", patterns.ErrInvalidConfig, o.Max)
	case o.Hold < time.Second || o.Hold > 12*time.Hour:
		return o, fmt.Errorf("%w: PeekOptions.Hold %v, want 1s to 12h", patterns.ErrInvalidConfig, o.Hold)
	case o.Wait <= 0 || o.Wait > 20*time.Second:
		return o, fmt.Errorf("%w: PeekOptions.Wait %v, want (0, 20s]", patterns.ErrInvalidConfig, o.Wait)
	}
	return o, nil
}

// Peek returns up to Max messages of the queue at queueURL (and no more
// than its ApproximateNumberOfMessages when it starts) without consuming
// them: it receives them with a visibility timeout of Hold and then makes
// them visible again (see the package doc for why, and what a
// receive costs). On error it returns what it read, and still gives the
// messages back.
func Peek(ctx context.Context, client API, queueURL string, optFns ...func(*PeekOptions)) (msgs []Message, err error) {
	o, err := peekOptions(optFns)
	if err != nil {
		return nil, err
	}
	if _, err := patterns.ParseQueueURL(queueURL); err != nil {
		return nil, err
	}
	defer func() {
		// Give them back even when ctx has ended.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, release(rctx, client, queueURL, msgs))
	}()
	// Stop at what the queue held when Peek began, when that is fewer than
	// Max, rather than wait for a receive that returns nothing.
	want := o.Max
	if attrs, err := queueAttributes(ctx, client, queueURL, types.QueueAttributeNameApproximateNumberOfMessages); err != nil {
		return nil, err
	} else if n, _ := strconv.Atoi(attrs[string(types.QueueAttributeNameApproximateNumberOfMessages)]); n > 0 {
		want = min(want, n)
	}
	seen := map[string]bool{}
	for len(msgs) < want {
		got, err := receive(ctx, client, queueURL, min(10, want-len(msgs)), o.Hold, o.Wait)
		if err != nil {
			return msgs, err
		}
		fresh := 0
		for _, m := range got {
			if seen[m.ID] { // a standard queue may deliver one twice: give this copy back now
				if err := release(ctx, client, queueURL, []Message{m}); err != nil {
					return msgs, err
				}
				continue
			}
			seen[m.ID] = true
			msgs = append(msgs, m)
			fresh++
		}
		if fresh == 0 {
			break
		}
	}
	return msgs, nil
}

// receive gets up to n messages with every attribute.
func receive(ctx context.Context, client API, queueURL string, n int, vis, wait time.Duration) ([]Message, error) {
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: int32(n),
		VisibilityTimeout: int32(vis / time.Second), WaitTimeSeconds: int32(max(1, wait/time.Second)),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, &patterns.OpError{Op: "ReceiveMessage", Resource: queueURL, Err: err}
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, sm := range out.Messages {
		msgs = append(msgs, fromSQS(sm))
	}
	return msgs, nil
}

func fromSQS(sm types.Message) Message {
	sys := sm.Attributes
	m := Message{
		ID: aws.ToString(sm.MessageId), Body: aws.ToString(sm.Body), Attributes: sm.MessageAttributes,
		GroupID: sys["MessageGroupId"], DeduplicationID: sys["MessageDeduplicationId"], SequenceNumber: sys["SequenceNumber"],
		SourceARN: sys["DeadLetterQueueSourceArn"], System: sys, receipt: aws.ToString(sm.ReceiptHandle),
	}
	m.ReceiveCount, _ = strconv.Atoi(sys["ApproximateReceiveCount"])
	m.FirstReceived = millis(sys["ApproximateFirstReceiveTimestamp"])
	m.SentAt = millis(sys["SentTimestamp"])
	return m
}

func millis(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// release makes msgs visible again.
func release(ctx context.Context, client API, queueURL string, msgs []Message) error {
	return changeVisibility(ctx, client, queueURL, msgs, 0)
}

func changeVisibility(ctx context.Context, client API, queueURL string, msgs []Message, secs int32) error {
	var errs []error
	for start := 0; start < len(msgs); start += 10 {
		var entries []types.ChangeMessageVisibilityBatchRequestEntry
		for i, m := range msgs[start:min(start+10, len(msgs))] {
			if m.receipt == "" {
				continue
			}
			entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.receipt), VisibilityTimeout: secs,
			})
		}
		if len(entries) == 0 {
			continue
		}
		out, err := client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
		if err != nil {
			errs = append(errs, &patterns.OpError{Op: "ChangeMessageVisibilityBatch", Resource: queueURL, Err: err})
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("courier: ChangeMessageVisibilityBatch %s: entry %s: %s: %s", queueURL, aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}
