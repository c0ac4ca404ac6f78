package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// tailedJSON is one message for programs (one JSON object a line).
type tailedJSON struct {
	ID           string            `json:"id"`
	Body         string            `json:"body"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	GroupID      string            `json:"groupId,omitempty"`
	TopicARN     string            `json:"topicArn,omitempty"`
	ReceiveCount int               `json:"receiveCount"`
	SentAt       *time.Time        `json:"sentAt,omitempty"`
	Error        string            `json:"error,omitempty"`
}

func runTail(ctx context.Context, e *env, c *cmdline) error {
	fs := c.flags()
	n := fs.Int("n", 0, "stop after this many messages (0: until interrupted)")
	timeout := fs.Duration("timeout", 0, "stop after this long (0: until interrupted)")
	del := fs.Bool("delete", false, "queue: consume (delete) what is printed; without it a printed message is hidden for -hold and then goes back to the queue's consumers")
	hold := fs.Duration("hold", 30*time.Second, "queue without -delete: how long a printed message stays hidden (so it is not printed again at once)")
	policy := fs.String("filter", "", "topic: a filter policy (JSON) for the temporary subscription")
	scope := fs.String("filter-scope", "MessageAttributes", "topic: MessageAttributes or MessageBody")
	pos, err := c.parse(c.args, 1, 1)
	if err != nil {
		return err
	}
	if *n < 0 || *timeout < 0 || *hold < time.Second {
		return usagef("-n, -timeout must not be negative; -hold at least 1s")
	}
	sqsClient, snsClient, err := c.clients(ctx)
	if err != nil {
		return err
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	t := &tail{e: e, client: sqsClient, json: c.g.json, max: *n, seen: map[string]bool{}}
	if isTopic(pos[0]) {
		url, cleanup, err := tempQueue(ctx, sqsClient, snsClient, pos[0], *policy, *scope)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := cleanup(); cerr != nil {
				fmt.Fprintf(e.err, "courier tail: removing %s: %v\n", url, cerr)
			}
		}()
		fmt.Fprintf(e.err, "courier: tailing %s through %s (removed on exit)\n", pos[0], url)
		t.url, t.consume = url, true
	} else {
		if *policy != "" {
			return usagef("-filter applies to a topic")
		}
		if t.url, err = queueURL(ctx, sqsClient, pos[0]); err != nil {
			return err
		}
		t.consume, t.hold = *del, *hold
		if !*del {
			warnReceives(ctx, e, sqsClient, t.url)
		}
		fmt.Fprintf(e.err, "courier: tailing %s\n", t.url)
	}
	err = t.run(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil // the end a person asked for (-timeout, Ctrl-C)
	}
	return err
}

// tempQueue makes a queue subscribed to the topic, and returns how to
// remove both.
func tempQueue(ctx context.Context, sqsClient *sqs.Client, snsClient *sns.Client, topic, policy, scope string) (string, func() error, error) {
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "courier-tail-" + hex.EncodeToString(r[:])
	attrs := map[string]string{"MessageRetentionPeriod": "3600"}
	if strings.HasSuffix(topic, ".fifo") {
		name += ".fifo"
		attrs["FifoQueue"] = "true"
	}
	out, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", nil, fmt.Errorf("creating the temporary queue: %w", err)
	}
	url := aws.ToString(out.QueueUrl)
	var sub string
	cleanup := func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		var errs []error
		if sub != "" {
			errs = append(errs, patterns.Unchain(cctx, snsClient, sub))
		}
		if _, err := sqsClient.DeleteQueue(cctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	if sub, err = patterns.Chain(ctx, snsClient, sqsClient, topic, url, func(o *patterns.ChainOptions) {
		o.FilterPolicy = policy
		o.FilterPolicyScope = scope
	}); err != nil {
		return "", nil, errors.Join(err, cleanup())
	}
	return url, cleanup, nil
}

type tail struct {
	e       *env
	client  *sqs.Client
	url     string
	json    bool
	consume bool
	hold    time.Duration
	max     int
	printed int
	seen    map[string]bool // without consume: printed already
}

func (t *tail) run(ctx context.Context) error {
	for t.max == 0 || t.printed < t.max {
		in := &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(t.url), MaxNumberOfMessages: 10, WaitTimeSeconds: 5,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		}
		if !t.consume {
			in.VisibilityTimeout = int32(t.hold / time.Second)
		}
		out, err := t.client.ReceiveMessage(ctx, in)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("receive %s: %w", t.url, err)
		}
		var done []types.DeleteMessageBatchRequestEntry
		var extra []types.ChangeMessageVisibilityBatchRequestEntry
		for i, sm := range out.Messages {
			id := aws.ToString(sm.MessageId)
			if !t.consume && t.seen[id] {
				continue
			}
			if t.max > 0 && t.printed >= t.max {
				// Received past -n: not printed, so given back.
				extra = append(extra, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: sm.ReceiptHandle})
				continue
			}
			t.seen[id] = true
			t.print(t.e.out, sm)
			t.printed++
			if t.consume {
				done = append(done, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: sm.ReceiptHandle})
			}
		}
		// What was printed is deleted (and what was not given back) even
		// when ctx has just ended.
		if len(done) > 0 {
			if _, err := t.client.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(t.url), Entries: done}); err != nil {
				return fmt.Errorf("delete from %s: %w", t.url, err)
			}
		}
		if len(extra) > 0 {
			if _, err := t.client.ChangeMessageVisibilityBatch(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(t.url), Entries: extra}); err != nil {
				return fmt.Errorf("give back to %s: %w", t.url, err)
			}
		}
	}
	return nil
}

func (t *tail) print(w io.Writer, sm types.Message) {
	attrs := map[string]patterns.Attribute{}
	for k, a := range sm.MessageAttributes {
		attrs[k] = patterns.Attribute{DataType: aws.ToString(a.DataType), Value: aws.ToString(a.StringValue), Binary: a.BinaryValue}
	}
	m, err := patterns.DecodeSQSMessage(patterns.SQSRecord{
		MessageID: aws.ToString(sm.MessageId), Body: aws.ToString(sm.Body), Attributes: sm.Attributes,
		MessageAttributes: attrs, QueueURL: t.url,
	}, false)
	strAttrs := map[string]string{}
	for k, a := range m.Attributes {
		if strings.HasPrefix(a.DataType, patterns.TypeBinary) {
			strAttrs[k] = fmt.Sprintf("(%s, %d bytes)", a.DataType, len(a.Binary))
		} else {
			strAttrs[k] = a.Value
		}
	}
	if t.json {
		j := tailedJSON{
			ID: m.ID, Body: string(m.Body), Attributes: strAttrs, Headers: m.Headers, GroupID: m.GroupID,
			TopicARN: m.TopicARN, ReceiveCount: m.ReceiveCount, SentAt: timePtr(m.SentAt),
		}
		if err != nil {
			j.Error = err.Error()
		}
		if len(j.Attributes) == 0 {
			j.Attributes = nil
		}
		line, _ := jsonLine(j)
		fmt.Fprintln(w, line)
		return
	}
	var head []string
	if !m.SentAt.IsZero() {
		head = append(head, m.SentAt.UTC().Format(time.RFC3339))
	}
	head = append(head, m.ID)
	if m.GroupID != "" {
		head = append(head, "group="+m.GroupID)
	}
	for _, k := range sortedKeys(strAttrs) {
		head = append(head, k+"="+strAttrs[k])
	}
	if m.CorrelationID != "" {
		head = append(head, "correlation="+m.CorrelationID)
	}
	if err != nil {
		head = append(head, "error="+err.Error())
	}
	fmt.Fprintf(w, "--- %s\n%s\n", strings.Join(head, "  "), strings.TrimRight(string(m.Body), "\n"))
}
