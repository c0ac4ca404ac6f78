package patterns_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// A tenant key travels as MessageGroupId on a standard queue (SQS fair
// queues); the emulators accept and return it but do not emulate fairness
// itself, so this test checks what is sent and received.
func TestFairQueueTenantKey(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{})
		p, err := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) {
			o.TenantKey = func(m *patterns.Message) string { return m.Attr("tenant") }
		})
		if err != nil {
			t.Fatal(err)
		}
		m := &patterns.Message{Body: []byte("job")}
		m.SetAttr("tenant", "acme")
		if err := p.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		c, _ := patterns.NewConsumer(b.SQS(), q.URL, quiet)
		got := make(chan string, 1)
		stop := runFor(t, func(ctx context.Context) error {
			return c.Run(ctx, func(ctx context.Context, m *patterns.Message) error { got <- m.GroupID; return nil })
		})
		select {
		case g := <-got:
			if g != "acme" {
				t.Errorf("received group %q, want the tenant key acme", g)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("message not received")
		}
		_ = stop()

		// A tenant key that is not a valid group id fails before any request.
		var rc patterns.RequestCounter
		p2, _ := patterns.NewProducer(b.SQS(&rc), q.URL, func(o *patterns.ProducerOptions) {
			o.TenantKey = func(*patterns.Message) string { return "no spaces allowed" }
		})
		if err := p2.Send(context.Background(), &patterns.Message{Body: []byte("x")}); !errors.Is(err, patterns.ErrInvalidGroupID) || rc.Total() != 0 {
			t.Errorf("bad tenant key: err %v after %d requests", err, rc.Total())
		}
	})
}

// Too many attributes (counting courier's own) are refused, naming the
// limit, and nothing is sent.
func TestAttributeBudget(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{})
		var rc patterns.RequestCounter
		p, _ := patterns.NewProducer(b.SQS(&rc), q.URL)
		m := &patterns.Message{Body: []byte("x"), CorrelationID: "c1"}
		for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
			m.SetAttr(k, "v")
		}
		err := p.Send(context.Background(), m, &patterns.Message{Body: []byte("fine")})
		if !errors.Is(err, patterns.ErrTooManyAttributes) {
			t.Fatalf("err = %v, want ErrTooManyAttributes", err)
		}
		if rc.Total() != 0 {
			t.Errorf("%d requests sent, want none", rc.Total())
		}
		t.Log(err)
	})
}
