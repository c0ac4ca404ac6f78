package patterns_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// A consumer that starts while SQS throttles it keeps trying instead of
// stopping for good. Found by internal/sim (a FIFO scenario whose only
// consumer was throttled at start: every message stayed on the queue).
func TestConsumerStartSurvivesThrottling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		q, err := mem.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mem.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("job")}); err != nil {
			t.Fatal(err)
		}
		var throttled atomic.Int32
		inj := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
			if c.Operation == "GetQueueAttributes" && throttled.Add(1) <= 3 {
				return memaws.Fault{Err: memaws.Throttled("sqs")}
			}
			return memaws.Fault{}
		})
		client := mem.SQS(memaws.WithFaults(inj), func(o *memaws.ClientOptions) { o.RetryMaxAttempts = 1 })
		c, err := patterns.NewConsumer(client, *q.QueueUrl, func(o *patterns.ConsumerOptions) { o.Logger = slog.New(slog.DiscardHandler) })
		if err != nil {
			t.Fatal(err)
		}
		handled := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- c.Run(ctx, func(_ context.Context, m *patterns.Message) error { handled <- string(m.Body); return nil })
		}()
		select {
		case b := <-handled:
			if b != "job" {
				t.Errorf("handled %q", b)
			}
		case err := <-done:
			t.Fatalf("Run stopped after throttling at start: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("nothing handled within a minute")
		}
		cancel()
		<-done
	})
}
