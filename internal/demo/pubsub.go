package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/courier-aws/courier/patterns"
)

// pubSub: plain publish-subscribe next to the chained form. A pager
// subscribes its HTTP endpoint to the alerts topic; an audit service reads
// a queue chained to the same topic. While the pager is down, SNS cannot
// deliver to it and the alert is gone for it; the audit queue keeps every
// alert until its consumer runs.
func pubSub(ctx context.Context, env *Env) (Result, error) {
	if env.Endpoint == "" {
		return Result{Summary: "skipped: an HTTP subscriber on this machine is not reachable from AWS"}, nil
	}
	emulator, err := url.Parse(env.Endpoint)
	if err != nil {
		return Result{}, err
	}
	topic, err := env.Topic(ctx, "alerts", false)
	if err != nil {
		return Result{}, err
	}
	audit, _, err := env.Queue(ctx, "audit", QueueSpec{MaxReceiveCount: 3})
	if err != nil {
		return Result{}, err
	}
	if _, err := patterns.Chain(ctx, env.SetupSNS(), env.SetupSQS(), topic, audit, func(o *patterns.ChainOptions) { o.Raw = true }); err != nil {
		return Result{}, err
	}
	env.Trail.Add("alerts topic", "audit queue", "chained (queue policy: this topic only)")

	var mu sync.Mutex
	var paged []string
	pager, err := patterns.NewHTTPSubscriber(env.SetupSNS(), []string{topic}, func(_ context.Context, m *patterns.Message) error {
		mu.Lock()
		paged = append(paged, string(m.Body))
		mu.Unlock()
		env.Trail.Add("alerts topic", "pager (HTTP)", "POST "+string(m.Body))
		return nil
	}, func(o *patterns.HTTPSubscriberOptions) {
		o.Logger = quiet
		o.TrustCertURL = func(u *url.URL) bool { return u.Host == emulator.Host }
		o.SkipSignature = env.Backend == "moto"
	})
	if err != nil {
		return Result{}, err
	}
	// The pager's server stays up; while the pager is down it answers 503.
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "pager down", http.StatusServiceUnavailable)
			return
		}
		pager.ServeHTTP(w, r)
	}))
	defer srv.Close()
	// No retries: what SNS does once its delivery policy's retries are spent
	// (by default a few over about 20 seconds for HTTP), at once.
	out, err := env.SetupSNS().Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(topic), Protocol: aws.String("http"), Endpoint: aws.String(srv.URL + "/sns"),
		ReturnSubscriptionArn: true,
		Attributes:            map[string]string{"DeliveryPolicy": `{"healthyRetryPolicy":{"numRetries":0,"minDelayTarget":1,"maxDelayTarget":1}}`},
	})
	if err != nil {
		return Result{}, err
	}
	if err := waitUntil(ctx, func() bool {
		a, err := env.SetupSNS().GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: out.SubscriptionArn})
		return err == nil && a.Attributes["PendingConfirmation"] == "false"
	}); err != nil {
		return Result{}, fmt.Errorf("pager subscription never confirmed: %w", err)
	}
	env.Trail.Add("pager (HTTP)", "alerts topic", "subscription confirmed (token, signature checked)")

	pub, err := patterns.NewPublisher(env.SNS, topic)
	if err != nil {
		return Result{}, err
	}
	alert := func(s string) error {
		env.Trail.Add("monitor", "alerts topic", "publish "+s)
		return pub.Publish(ctx, &patterns.Message{Body: []byte(s)})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(paged) }
	for _, a := range []string{"cpu-high", "disk-full"} {
		if err := alert(a); err != nil {
			return Result{}, err
		}
	}
	if err := waitUntil(ctx, func() bool { return count() == 2 }); err != nil {
		return Result{}, fmt.Errorf("pager got %d of 2 alerts while online: %w", count(), err)
	}

	// The pager goes down; an alert is published; the pager comes back.
	down.Store(true)
	env.Trail.Add("pager (HTTP)", "pager (HTTP)", "goes down (answers 503)")
	if err := alert("db-down"); err != nil {
		return Result{}, err
	}
	time.Sleep(time.Second)
	down.Store(false)
	env.Trail.Add("pager (HTTP)", "pager (HTTP)", "back up")
	time.Sleep(2 * time.Second) // time for a redelivery, if the backend made one
	lost := count() == 2

	// The audit service starts only now and still gets all three.
	c, err := patterns.NewConsumer(env.SQS, audit, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet
	})
	if err != nil {
		return Result{}, err
	}
	var amu sync.Mutex
	audited := map[string]bool{}
	stop := consume(ctx, c, func(_ context.Context, m *patterns.Message) error {
		amu.Lock()
		audited[string(m.Body)] = true
		amu.Unlock()
		return nil
	})
	werr := waitUntil(ctx, func() bool { amu.Lock(); defer amu.Unlock(); return len(audited) == 3 })
	if err := errors.Join(werr, stop()); err != nil {
		return Result{}, fmt.Errorf("audit queue gave %d of 3 alerts: %w", len(audited), err)
	}
	env.Trail.Add("audit queue", "audit", "3 alerts, incl. db-down (kept while nobody read)")
	if !lost {
		return Result{}, fmt.Errorf("the pager got db-down although it was down when it was published (%d alerts): this backend redelivers", count())
	}
	return Result{Messages: 3, Summary: "HTTP subscriber: 2 of 3 alerts (db-down lost while it was down); chained queue: 3 of 3"}, nil
}
