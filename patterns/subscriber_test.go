package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// Plain publish-subscribe: SNS POSTs to an HTTP subscriber, which checks
// the signature (where the backend signs), confirms its subscription and
// hands each notification to the handler with its attributes.
func TestHTTPSubscriber(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		if b.Endpoint == "" {
			t.Skip("needs an endpoint SNS can reach; a loopback server is not one on AWS")
		}
		ctx := context.Background()
		snsClient := b.SNS()
		topic := b.CreateTopic(t, false, nil)
		emulator, _ := url.Parse(b.Endpoint)

		var mu sync.Mutex
		got := map[string]string{}
		sub, err := patterns.NewHTTPSubscriber(snsClient, []string{topic}, func(_ context.Context, m *patterns.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got[string(m.Body)] = m.Attr("color") + "/" + m.CorrelationID
			return nil
		}, func(o *patterns.HTTPSubscriberOptions) {
			o.Logger = discardLogger()
			o.TrustCertURL = func(u *url.URL) bool { return u.Host == emulator.Host }
			o.SkipSignature = !b.Caps.SignsHTTPNotifications
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(sub)
		defer srv.Close()
		out, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn: aws.String(topic), Protocol: aws.String("http"), Endpoint: aws.String(srv.URL + "/sns"),
			ReturnSubscriptionArn: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if b.Caps.SignsHTTPNotifications {
			waitFor(t, 20*time.Second, "subscription confirmed", func() bool {
				attrs, err := snsClient.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: out.SubscriptionArn})
				return err == nil && attrs.Attributes["PendingConfirmation"] == "false"
			})
		}

		pub, err := patterns.NewPublisher(snsClient, topic)
		if err != nil {
			t.Fatal(err)
		}
		const n = 5
		for i := range n {
			m := &patterns.Message{Body: []byte(fmt.Sprintf("event %d", i)), CorrelationID: fmt.Sprint("c", i)}
			m.SetAttr("color", "orange")
			if err := pub.Publish(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 30*time.Second, "5 notifications", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == n })
		for i := range n {
			want := fmt.Sprintf("orange/c%d", i)
			if !b.Caps.HTTPNotificationAttributes {
				want = "/" // the deviation FIDELITY.md records: attributes dropped
			}
			if v := got[fmt.Sprintf("event %d", i)]; v != want {
				t.Errorf("event %d arrived as %q, want %q (HTTPNotificationAttributes=%v)", i, v, want, b.Caps.HTTPNotificationAttributes)
			}
		}
	})
}

// SNS accepts a publish whatever its HTTP subscribers' health: delivery is
// asynchronous. moto delivers inline and loses the entry's result when the
// endpoint refuses the connection; courier then reports the message as not
// sent, never as sent (localstack/FIDELITY.md).
func TestPublishWithUnreachableHTTPSubscriber(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t) // an HTTP subscription: memaws opens no sockets
		ctx := context.Background()
		snsClient := b.SNS()
		topic := b.CreateTopic(t, false, nil)
		srv := httptest.NewServer(nil)
		endpoint := srv.URL
		srv.Close() // nothing listens there now
		if _, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn: aws.String(topic), Protocol: aws.String("http"), Endpoint: aws.String(endpoint),
		}); err != nil {
			t.Fatal(err)
		}
		pub, err := patterns.NewPublisher(snsClient, topic, func(o *patterns.PublisherOptions) { o.EntryRetries = 1 })
		if err != nil {
			t.Fatal(err)
		}
		m := &patterns.Message{Body: []byte("into the void")}
		err = pub.Publish(ctx, m)
		if b.Caps.PublishIndependentOfHTTPSubscribers {
			if err != nil || m.ID == "" {
				t.Fatalf("publish with an unreachable subscriber: %v (id %q); SNS accepts it", err, m.ID)
			}
			return
		}
		var se *patterns.SendError
		if !errors.As(err, &se) || m.ID != "" {
			t.Fatalf("PublishIndependentOfHTTPSubscribers=false: want a SendError and no id, got %v (id %q); has the backend been fixed?", err, m.ID)
		}
	})
}
