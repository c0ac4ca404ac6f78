package adapter

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// VisibilityAPI is what Options.Backoff needs of an SQS client. An event
// names its queue by ARN; GetQueueUrl turns that into the URL (once per
// queue and execution environment), which also works on an emulator.
type VisibilityAPI interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// queueURLs caches queue ARN -> URL for the life of the handler.
type queueURLs struct{ m sync.Map }

func (q *queueURLs) get(ctx context.Context, client VisibilityAPI, arn string) (string, error) {
	if u, ok := q.m.Load(arn); ok {
		return u.(string), nil
	}
	a, err := patterns.ParseARN(arn, "sqs")
	if err != nil {
		return "", fmt.Errorf("event source: %w", err)
	}
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(a.Name), QueueOwnerAWSAccountId: aws.String(a.Account)})
	if err != nil {
		return "", fmt.Errorf("courier: GetQueueUrl %s: %w", arn, err)
	}
	q.m.Store(arn, *out.QueueUrl)
	return *out.QueueUrl, nil
}

// backoff sets the visibility of the records whose handler failed from
// their receive counts, in batches of 10 per queue. A failure here only
// logs: the record is reported failed either way and comes back, at the
// latest, after the queue's visibility timeout.
func (b *batch) backoff(ctx context.Context, urls *queueURLs) {
	// The invocation may be close to its deadline; these few requests get
	// a little time of their own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	byQueue := map[string][]types.ChangeMessageVisibilityBatchRequestEntry{}
	for i, rec := range b.records {
		if !b.handlerFailed[i] {
			continue
		}
		n, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
		secs := patterns.VisibilitySeconds(b.o.Backoff(max(n, 1)))
		byQueue[rec.EventSourceARN] = append(byQueue[rec.EventSourceARN], types.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(rec.ReceiptHandle), VisibilityTimeout: secs,
		})
	}
	for arn, entries := range byQueue {
		url, err := urls.get(ctx, b.o.SQS, arn)
		if err != nil {
			b.o.Logger.Warn("courier: backoff not applied; the queue's visibility timeout holds", "queue", arn, "err", err)
			continue
		}
		for len(entries) > 0 {
			n := min(10, len(entries))
			out, err := b.o.SQS.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries[:n]})
			switch {
			case err != nil:
				b.o.Logger.Warn("courier: backoff not applied; the queue's visibility timeout holds", "queue", arn, "count", n, "err", err)
			case len(out.Failed) > 0:
				b.o.Logger.Warn("courier: backoff not applied to some records", "queue", arn, "count", len(out.Failed), "first_code", aws.ToString(out.Failed[0].Code))
			}
			entries = entries[n:]
		}
	}
}
