package patterns_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// When the heartbeat cannot extend a message (SQS refuses every
// extension) and its visibility timeout ends, the handler's context ends
// with ErrLeaseLost and, on a FIFO queue, the rest of the run is not
// handled: the group has come back to whoever receives next. Found by
// internal/sim (seed 21357: a FIFO handler that finished after its
// message had come back handled the group out of order).
func TestConsumerLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		q, err := mem.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("g.fifo"),
			Attributes: map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "30"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"a0", "a1", "a2"} {
			if _, err := mem.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(b), MessageGroupId: aws.String("a")}); err != nil {
				t.Fatal(err)
			}
		}
		refuse := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
			if c.Operation == "ChangeMessageVisibilityBatch" {
				return memaws.Fault{Err: memaws.InternalError()}
			}
			return memaws.Fault{}
		})
		c, err := patterns.NewConsumer(mem.SQS(memaws.WithFaults(refuse), func(o *memaws.ClientOptions) { o.RetryMaxAttempts = 1 }), *q.QueueUrl, func(o *patterns.ConsumerOptions) {
			o.Workers = 1
			o.Logger = slog.New(slog.DiscardHandler)
		})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var handled []string
		var cause error
		done := make(chan error, 1)
		go func() {
			done <- c.Run(ctx, func(hctx context.Context, m *patterns.Message) error {
				if string(m.Body) == "a0" && m.ReceiveCount == 1 {
					<-hctx.Done() // slow: outlives its visibility
					mu.Lock()
					cause = context.Cause(hctx)
					mu.Unlock()
					return hctx.Err()
				}
				mu.Lock()
				handled = append(handled, string(m.Body))
				mu.Unlock()
				return nil
			})
		}()
		time.Sleep(5 * time.Minute)
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(cause, patterns.ErrLeaseLost) {
			t.Errorf("slow handler's context cause: %v, want ErrLeaseLost", cause)
		}
		want := []string{"a0", "a1", "a2"}
		if len(handled) != 3 || handled[0] != "a0" || handled[1] != "a1" || handled[2] != "a2" {
			t.Errorf("handled %v, want %v (the group in order, after a0 came back)", handled, want)
		}
		if n := c.Stats().LeaseLost; n == 0 {
			t.Errorf("Stats().LeaseLost = 0")
		}
	})
}
