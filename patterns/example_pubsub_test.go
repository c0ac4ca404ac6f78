package patterns_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/courier-aws/courier/patterns"
)

// exampleTopic makes a topic for an example and returns its ARN and a
// function that deletes it.
func exampleTopic(client *sns.Client, name string, fifo bool) (string, func()) {
	full := "example-" + name + "-" + fmt.Sprint(time.Now().UnixNano())
	attrs := map[string]string{}
	if fifo {
		full += ".fifo"
		attrs["FifoTopic"] = "true"
		attrs["ContentBasedDeduplication"] = "true"
	}
	out, err := client.CreateTopic(context.Background(), &sns.CreateTopicInput{Name: aws.String(full), Attributes: attrs})
	if err != nil {
		panic(err)
	}
	return *out.TopicArn, func() {
		_, _ = client.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: out.TopicArn})
	}
}

// collectBodies runs a Consumer on queueURL until it has handled n messages and
// returns their bodies in the order the handler saw them.
func collectBodies(queueURL string, n int) []string {
	sqsClient, _ := exampleClients()
	c, err := patterns.NewConsumer(sqsClient, queueURL, func(o *patterns.ConsumerOptions) { o.WaitTime = time.Second })
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []string
	_ = c.Run(ctx, func(_ context.Context, m *patterns.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(m.Body))
		if len(got) == n {
			cancel()
		}
		return nil
	})
	return got
}

// Publish-subscribe: a Publisher sends to a topic; every subscriber gets a
// copy. Here the subscribers are queues chained to the topic, so a
// subscriber that is offline still gets its copy when it comes back.
func ExamplePublisher() {
	sqsClient, snsClient := exampleClients()
	topicARN, dropTopic := exampleTopic(snsClient, "orders", false)
	defer dropTopic()
	billing, dropBilling := exampleQueue(sqsClient, "billing", nil)
	defer dropBilling()
	shipping, dropShipping := exampleQueue(sqsClient, "shipping", nil)
	defer dropShipping()
	for _, q := range []string{billing, shipping} {
		if _, err := patterns.Chain(context.Background(), snsClient, sqsClient, topicARN, q, func(o *patterns.ChainOptions) { o.Raw = true }); err != nil {
			fmt.Println(err)
			return
		}
	}

	pub, err := patterns.NewPublisher(snsClient, topicARN)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = pub.Publish(context.Background(),
		&patterns.Message{Body: []byte("order 1")}, &patterns.Message{Body: []byte("order 2")})
	fmt.Println("published:", err)

	for _, q := range []string{billing, shipping} {
		got := collectBodies(q, 2)
		sort.Strings(got)
		fmt.Println(got)
	}
	// Output:
	// published: <nil>
	// [order 1 order 2]
	// [order 1 order 2]
}

// Topic-queue chaining: Chain subscribes a queue to a topic with a queue
// policy that admits only that topic. With raw delivery off the queue gets
// SNS's notification envelope; the Consumer unwraps it, so the handler sees
// the same Message either way.
func ExampleChain() {
	sqsClient, snsClient := exampleClients()
	topicARN, dropTopic := exampleTopic(snsClient, "events", false)
	defer dropTopic()
	raw, dropRaw := exampleQueue(sqsClient, "raw", nil)
	defer dropRaw()
	enveloped, dropEnveloped := exampleQueue(sqsClient, "enveloped", nil)
	defer dropEnveloped()
	for q, isRaw := range map[string]bool{raw: true, enveloped: false} {
		if _, err := patterns.Chain(context.Background(), snsClient, sqsClient, topicARN, q, func(o *patterns.ChainOptions) { o.Raw = isRaw }); err != nil {
			fmt.Println(err)
			return
		}
	}
	pub, _ := patterns.NewPublisher(snsClient, topicARN)
	m := &patterns.Message{Body: []byte(`{"event":"signed-up"}`)}
	m.SetAttr("tenant", "acme")
	if err := pub.Publish(context.Background(), m); err != nil {
		fmt.Println(err)
		return
	}

	for _, q := range []string{raw, enveloped} {
		sqsClient, _ := exampleClients()
		c, _ := patterns.NewConsumer(sqsClient, q, func(o *patterns.ConsumerOptions) { o.WaitTime = time.Second })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = c.Run(ctx, func(_ context.Context, m *patterns.Message) error {
			fmt.Printf("%s tenant=%s from topic: %v\n", m.Body, m.Attr("tenant"), m.TopicARN != "")
			cancel()
			return nil
		})
		cancel()
	}
	// Output:
	// {"event":"signed-up"} tenant=acme from topic: false
	// {"event":"signed-up"} tenant=acme from topic: true
}

// FIFO: messages of one group are handled one at a time, in the order they
// were sent; different groups run in parallel.
func Example_fifo() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "fifo",
		patterns.FIFOQueueAttributes(patterns.FIFOOptions{ContentBasedDeduplication: true, HighThroughput: true}))
	defer done()

	p, _ := patterns.NewProducer(sqsClient, queueURL)
	var msgs []*patterns.Message
	for i := range 5 {
		for _, account := range []string{"alice", "bob"} {
			msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf("%s:%d", account, i)), GroupID: account})
		}
	}
	if err := p.Send(context.Background(), msgs...); err != nil {
		fmt.Println(err)
		return
	}

	perGroup := map[string][]string{}
	for _, body := range collectBodies(queueURL, len(msgs)) {
		account, seq, _ := strings.Cut(body, ":")
		perGroup[account] = append(perGroup[account], seq)
	}
	fmt.Println("alice", perGroup["alice"])
	fmt.Println("bob", perGroup["bob"])
	// Output:
	// alice [0 1 2 3 4]
	// bob [0 1 2 3 4]
}

// Plain publish-subscribe: SNS pushes each message to an HTTP endpoint.
// HTTPSubscriber checks the topic and the signature, confirms the
// subscription, and runs the handler; a handler error answers 500 so SNS
// retries. A subscriber that is down past SNS's retries misses the message:
// where that matters, read a chained queue instead (Chain).
func ExampleHTTPSubscriber() {
	_, snsClient := exampleClients()
	topicARN, dropTopic := exampleTopic(snsClient, "alerts", false)
	defer dropTopic()

	got := make(chan string, 1)
	sub, err := patterns.NewHTTPSubscriber(snsClient, []string{topicARN}, func(_ context.Context, m *patterns.Message) error {
		got <- string(m.Body)
		return nil
	}, func(o *patterns.HTTPSubscriberOptions) { o.SkipSignature = true })
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(sub) // in production: your HTTPS server
	defer srv.Close()
	out, err := snsClient.Subscribe(context.Background(), &sns.SubscribeInput{
		TopicArn: aws.String(topicARN), Protocol: aws.String("http"), Endpoint: aws.String(srv.URL),
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// SNS delivers once the endpoint has confirmed the subscription.
	for range 100 {
		attrs, err := snsClient.GetSubscriptionAttributes(context.Background(),
			&sns.GetSubscriptionAttributesInput{SubscriptionArn: out.SubscriptionArn})
		if err == nil && attrs.Attributes["PendingConfirmation"] == "false" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	pub, _ := patterns.NewPublisher(snsClient, topicARN)
	if err := pub.Publish(context.Background(), &patterns.Message{Body: []byte("disk almost full")}); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case body := <-got:
		fmt.Println(body)
	case <-time.After(20 * time.Second):
		fmt.Println("nothing arrived")
	}
	// Output: disk almost full
}
