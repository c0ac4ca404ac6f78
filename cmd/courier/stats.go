package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns/dlq"
)

type stats struct {
	URL      string `json:"url"`
	Visible  int    `json:"visible"`
	InFlight int    `json:"inFlight"`
	Delayed  int    `json:"delayed"`
	// DLQ is the queue's dead-letter queue, with its counts.
	DLQ *stats `json:"deadLetterQueue,omitempty"`
	// OldestSampled is the oldest sent time among -sample peeked
	// messages: a lower bound of the age of the oldest message (SQS's API
	// does not give that age; CloudWatch's ApproximateAgeOfOldestMessage does).
	OldestSampled *time.Time `json:"oldestSampled,omitempty"`
	Sampled       int        `json:"sampled,omitempty"`
}

func queueStats(ctx context.Context, client *sqs.Client, url string) (stats, error) {
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return stats{}, fmt.Errorf("queue %s: %w", url, err)
	}
	n := func(k types.QueueAttributeName) int { v, _ := strconv.Atoi(out.Attributes[string(k)]); return v }
	return stats{
		URL: url, Visible: n(types.QueueAttributeNameApproximateNumberOfMessages),
		InFlight: n(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		Delayed:  n(types.QueueAttributeNameApproximateNumberOfMessagesDelayed),
	}, nil
}

func runStats(ctx context.Context, e *env, c *cmdline) error {
	fs := c.flags()
	sample := fs.Int("sample", 0, "peek this many messages of each queue to show the oldest among them (a peek is a receive)")
	pos, err := c.parse(c.args, 1, -1)
	if err != nil {
		return err
	}
	if *sample < 0 {
		return usagef("-sample %d", *sample)
	}
	client, err := c.sqs(ctx)
	if err != nil {
		return err
	}
	var all []stats
	for _, arg := range pos {
		url, err := queueURL(ctx, client, arg)
		if err != nil {
			return err
		}
		st, err := queueStats(ctx, client, url)
		if err != nil {
			return err
		}
		switch d, err := dlq.Find(ctx, client, url); {
		case err == nil:
			ds, err := queueStats(ctx, client, d.URL)
			if err != nil {
				return err
			}
			st.DLQ = &ds
		case !errors.Is(err, dlq.ErrNoDeadLetterQueue):
			return err
		}
		if *sample > 0 {
			msgs, err := dlq.Peek(ctx, client, url, func(o *dlq.PeekOptions) { o.Max = *sample })
			if err != nil {
				return err
			}
			st.Sampled = len(msgs)
			for _, m := range msgs {
				if t := m.SentAt; !t.IsZero() && (st.OldestSampled == nil || t.Before(*st.OldestSampled)) {
					st.OldestSampled = &t
				}
			}
		}
		all = append(all, st)
	}
	if c.g.json {
		return printJSON(e.out, all)
	}
	now := time.Now()
	var rows [][]string
	for _, st := range all {
		dl := "-"
		if st.DLQ != nil {
			dl = fmt.Sprintf("%d (%s)", st.DLQ.Visible+st.DLQ.InFlight, lastPart(st.DLQ.URL))
		}
		oldest := "n/a"
		if *sample > 0 {
			oldest = "-"
			if st.OldestSampled != nil {
				oldest = fmt.Sprintf(">= %s (of %d)", sentAge(*st.OldestSampled, now), st.Sampled)
			}
		}
		rows = append(rows, []string{lastPart(st.URL), strconv.Itoa(st.Visible), strconv.Itoa(st.InFlight), strconv.Itoa(st.Delayed), dl, oldest})
	}
	table(e.out, []string{"QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "DEAD LETTERS", "OLDEST"}, rows)
	if *sample == 0 {
		fmt.Fprintln(e.out, "\nOLDEST: SQS's API does not give the age of the oldest message (CloudWatch's\nApproximateAgeOfOldestMessage does); -sample N peeks N messages for a lower bound.")
	}
	return nil
}

func lastPart(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			return url[i+1:]
		}
	}
	return url
}
