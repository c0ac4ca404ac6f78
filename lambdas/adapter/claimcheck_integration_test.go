package adapter_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/internal/lambdatest"
	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// Under the event source mapping, a claim-check pointer is resolved before
// the handler runs; the object stays (the mapping deletes the message after
// the invocation, which the adapter cannot see: a lifecycle rule expires it).
func TestSQSHandlerClaimCheck(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		bucket := b.CreateBucket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		cc, err := patterns.NewClaimCheck(b.S3(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
		body := []byte(strings.Repeat("x-ray image ", 200_000)) // 2.4 MB
		if err := p.Send(context.Background(), &patterns.Message{Body: body}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []byte
		h := adapter.SQSHandler(func(_ context.Context, m *patterns.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got = m.Body
			return nil
		}, func(o *adapter.Options) { o.ClaimCheck = cc; o.Logger = slog.New(slog.DiscardHandler) })
		r := lambdatest.Start(t, b, localrunner.Config{QueueURL: q.URL, ReportBatchItemFailures: true, FunctionTimeout: 10 * time.Second}, h)
		lambdatest.WaitFor(t, "the record handled and deleted", func() bool { return r.Stats().Deleted == 1 })
		mu.Lock()
		defer mu.Unlock()
		if !bytes.Equal(got, body) {
			t.Errorf("the handler got %d bytes, want the %d offloaded", len(got), len(body))
		}
		if keys := b.Objects(t, bucket); len(keys) != 1 {
			t.Errorf("bucket %v: the adapter must not remove the object", keys)
		}
	})
}
