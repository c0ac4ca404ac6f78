package patterns_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// A request that waits while another one creates the reply queue must
// still honour its own deadline. Found by internal/sim: requests queued
// on a mutex behind a slow CreateQueue ignored their contexts.
func TestRequesterWaitingForStartHonoursDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		ctx := context.Background()
		q, err := mem.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("requests")})
		if err != nil {
			t.Fatal(err)
		}
		slow := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
			if c.Operation == "CreateQueue" {
				return memaws.Fault{Delay: time.Minute}
			}
			return memaws.Fault{}
		})
		r, err := patterns.NewRequester(mem.SQS(memaws.WithFaults(slow)), func(o *patterns.RequesterOptions) { o.Logger = slog.New(slog.DiscardHandler) })
		if err != nil {
			t.Fatal(err)
		}
		first := make(chan error, 1)
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			_, err := r.Request(cctx, *q.QueueUrl, &patterns.Message{Body: []byte("first")})
			first <- err
		}()
		synctest.Wait() // the first request is inside CreateQueue
		began := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = r.Request(cctx, *q.QueueUrl, &patterns.Message{Body: []byte("second")})
		if took := time.Since(began); took > 6*time.Second {
			t.Errorf("second request returned after %v; its deadline was 5s", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second request: %v, want a deadline error", err)
		}
		<-first
		_ = r.Close(ctx)
	})
}
