package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns/dlq"
)

// peekedJSON is a peeked message for programs.
type peekedJSON struct {
	ID              string            `json:"id"`
	Body            string            `json:"body"`
	Attributes      map[string]string `json:"attributes,omitempty"`
	GroupID         string            `json:"groupId,omitempty"`
	DeduplicationID string            `json:"deduplicationId,omitempty"`
	ReceiveCount    int               `json:"receiveCount"`
	FirstReceived   *time.Time        `json:"firstReceived,omitempty"`
	SentAt          *time.Time        `json:"sentAt,omitempty"`
	SourceARN       string            `json:"deadLetterSourceArn,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func attrStrings(attrs map[string]types.MessageAttributeValue) map[string]string {
	if len(attrs) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, a := range attrs {
		if a.StringValue != nil {
			out[k] = *a.StringValue
		} else {
			out[k] = fmt.Sprintf("(%s, %d bytes)", aws.ToString(a.DataType), len(a.BinaryValue))
		}
	}
	return out
}

func toPeekedJSON(msgs []dlq.Message) []peekedJSON {
	out := make([]peekedJSON, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, peekedJSON{
			ID: m.ID, Body: m.Body, Attributes: attrStrings(m.Attributes), GroupID: m.GroupID, DeduplicationID: m.DeduplicationID,
			ReceiveCount: m.ReceiveCount, FirstReceived: timePtr(m.FirstReceived), SentAt: timePtr(m.SentAt), SourceARN: m.SourceARN,
		})
	}
	return out
}

func printPeeked(w io.Writer, msgs []dlq.Message) {
	if len(msgs) == 0 {
		fmt.Fprintln(w, "no messages")
		return
	}
	now := time.Now()
	rows := make([][]string, 0, len(msgs))
	for _, m := range msgs {
		first := "-"
		if !m.FirstReceived.IsZero() {
			first = m.FirstReceived.UTC().Format(time.RFC3339)
		}
		group := m.GroupID
		if group == "" {
			group = "-"
		}
		rows = append(rows, []string{m.ID, sentAge(m.SentAt, now), strconv.Itoa(m.ReceiveCount), first, group, oneLine(m.Body, 60)})
	}
	table(w, []string{"ID", "AGE", "RECEIVES", "FIRST RECEIVED", "GROUP", "BODY"}, rows)
}

// warnReceives says, on a queue with a redrive policy, that a peek counts.
func warnReceives(ctx context.Context, e *env, client *sqs.Client, url string) {
	if d, err := dlq.Find(ctx, client, url); err == nil {
		fmt.Fprintf(e.err, "courier: note: a peek is a receive; it counts toward this queue's maxReceiveCount (%d) before messages go to %s\n", d.MaxReceiveCount, d.URL)
	}
}

func runPeek(ctx context.Context, e *env, c *cmdline) error {
	fs := c.flags()
	n := fs.Int("n", 10, "how many messages to show at most")
	hold := fs.Duration("hold", 30*time.Second, "how long the peeked messages are hidden at most (given back at once when done)")
	pos, err := c.parse(c.args, 1, 1)
	if err != nil {
		return err
	}
	if *n < 1 {
		return usagef("-n %d: want at least 1", *n)
	}
	client, err := c.sqs(ctx)
	if err != nil {
		return err
	}
	url, err := queueURL(ctx, client, pos[0])
	if err != nil {
		return err
	}
	warnReceives(ctx, e, client, url)
	msgs, err := dlq.Peek(ctx, client, url, func(o *dlq.PeekOptions) { o.Max, o.Hold = *n, *hold })
	if err != nil && len(msgs) == 0 {
		return err
	}
	if c.g.json {
		if perr := printJSON(e.out, toPeekedJSON(msgs)); perr != nil {
			return errors.Join(err, perr)
		}
	} else {
		printPeeked(e.out, msgs)
	}
	return err
}
