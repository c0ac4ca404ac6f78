package patterns_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// bigBody is n bytes of text that differ from one position to the next,
// so a truncated or shuffled copy shows.
func bigBody(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

// collectWith runs a Consumer with cfg until n messages were handled and
// returns them.
func collectWith(t *testing.T, b *backend.Backend, cfg testConsumer, n int) ([]*patterns.Message, *patterns.Consumer) {
	t.Helper()
	c, err := patterns.NewConsumer(b.SQS(), cfg.url, cfg.set)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*patterns.Message
	stop := runFor(t, func(ctx context.Context) error {
		return c.Run(ctx, func(_ context.Context, m *patterns.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m)
			return nil
		})
	})
	waitFor(t, time.Minute, "messages handled and deleted", func() bool { return c.Stats().Deleted >= int64(n) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got, c
}

// A 5 MiB body round-trips through a queue: the message carries a pointer
// in the Extended Client format, the consumer gets the body back, and the
// object is gone once the message is deleted (RemoveAfterDelete). A small
// body never touches S3.
func TestClaimCheckQueue(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		bucket := b.CreateBucket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		var s3Requests patterns.RequestCounter
		cc, err := patterns.NewClaimCheck(b.S3(&s3Requests), bucket)
		if err != nil {
			t.Fatal(err)
		}
		p, err := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
		if err != nil {
			t.Fatal(err)
		}
		small := &patterns.Message{Body: []byte("a small order")}
		if err := p.Send(context.Background(), small); err != nil {
			t.Fatal(err)
		}
		if n := s3Requests.Total(); n != 0 || small.Offloaded != nil {
			t.Fatalf("a small body made %d S3 requests", n)
		}
		body := bigBody(5 << 20)
		big := &patterns.Message{Body: body}
		big.SetAttr("kind", "scan")
		if err := p.Send(context.Background(), big); err != nil {
			t.Fatal(err)
		}
		if big.ID == "" || big.Offloaded == nil || !bytes.Equal(big.Body, body) {
			t.Fatalf("sent: id %q, offloaded %v; the caller's body must stay as it was", big.ID, big.Offloaded)
		}
		if keys := b.Objects(t, bucket); len(keys) != 1 || keys[0] != big.Offloaded.Key {
			t.Fatalf("bucket holds %v, want the one object", keys)
		}

		// The consumer of this one queue removes the objects: its own
		// configuration says so, not the message.
		ccConsumer, err := patterns.NewClaimCheck(b.S3(), bucket, func(o *patterns.ClaimCheckOptions) { o.RemoveAfterDelete = true })
		if err != nil {
			t.Fatal(err)
		}
		got, _ := collectWith(t, b, testConsumer{url: q.URL, ConsumerOptions: patterns.ConsumerOptions{WaitTime: time.Second, Logger: discardLogger(), ClaimCheck: ccConsumer}}, 2)
		bodies := map[string]*patterns.Message{}
		for _, m := range got {
			bodies[string(m.Body[:min(len(m.Body), 20)])] = m
		}
		m := bodies[string(body[:20])]
		switch {
		case m == nil:
			t.Fatalf("the large message was not handled: %d messages", len(got))
		case sha256.Sum256(m.Body) != sha256.Sum256(body):
			t.Errorf("the large body came back as %d bytes, not the 5 MiB sent", len(m.Body))
		case m.Attr("kind") != "scan" || m.Attributes[patterns.ExtendedPayloadSizeAttribute].Value != "":
			t.Errorf("attributes %v: want the user's, without the pointer's", m.Attributes)
		}
		waitFor(t, 10*time.Second, "the object removed after the delete", func() bool { return len(b.Objects(t, bucket)) == 0 })
	})
}

// Through SNS fan-out to two queues, one raw and one enveloped: both
// consumers get the 5 MiB body; the object is shared and stays.
func TestClaimCheckFanOut(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		bucket := b.CreateBucket(t)
		topic := b.CreateTopic(t, false, nil)
		var queues []string
		for _, raw := range []bool{true, false} {
			q := b.CreateQueue(t, backend.QueueOptions{})
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = raw }); err != nil {
				t.Fatal(err)
			}
			queues = append(queues, q.URL)
		}
		cc, err := patterns.NewClaimCheck(b.S3(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := patterns.NewPublisher(b.SNS(), topic, func(o *patterns.PublisherOptions) { o.ClaimCheck = cc })
		if err != nil {
			t.Fatal(err)
		}
		body := bigBody(5 << 20)
		if err := pub.Publish(ctx, &patterns.Message{Body: body}); err != nil {
			t.Fatal(err)
		}
		for i, q := range queues {
			got, _ := collectWith(t, b, testConsumer{url: q, ConsumerOptions: patterns.ConsumerOptions{WaitTime: time.Second, Logger: discardLogger(), ClaimCheck: cc}}, 1)
			if len(got) != 1 || !bytes.Equal(got[0].Body, body) {
				t.Errorf("queue %d (raw %v): %d messages; body resolved: %v", i, i == 0, len(got), len(got) == 1 && bytes.Equal(got[0].Body, body))
			}
		}
		time.Sleep(500 * time.Millisecond)
		if keys := b.Objects(t, bucket); len(keys) != 1 {
			t.Errorf("bucket holds %v after both deletes; the shared object must stay", keys)
		}
	})
}

// A pointer written by another Extended Client (here by hand: PutObject,
// then SendMessage with the pointer body and ExtendedPayloadSize) is read;
// its object is not courier's to remove. A pointer to a missing object
// fails the message, which is not deleted and ends in the DLQ.
func TestClaimCheckForeignAndMissing(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		bucket := b.CreateBucket(t)
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: time.Second, MaxReceiveCount: 2})
		payload := bigBody(300 << 10)
		if _, err := b.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("from-java"), Body: bytes.NewReader(payload)}); err != nil {
			t.Fatal(err)
		}
		send := func(key string, size int) {
			t.Helper()
			_, err := b.SQS().SendMessage(ctx, &sqs.SendMessageInput{
				QueueUrl:    aws.String(q.URL),
				MessageBody: aws.String(`["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"` + bucket + `","s3Key":"` + key + `"}]`),
				MessageAttributes: map[string]types.MessageAttributeValue{
					"ExtendedPayloadSize": {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(size))},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		send("from-java", len(payload))
		send("never-written", 1000)

		cc, err := patterns.NewClaimCheck(b.S3(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		got, c := collectWith(t, b, testConsumer{url: q.URL, ConsumerOptions: patterns.ConsumerOptions{WaitTime: time.Second, Logger: discardLogger(), ClaimCheck: cc}}, 1)
		if len(got) != 1 || !bytes.Equal(got[0].Body, payload) || got[0].Offloaded == nil || got[0].Offloaded.Key != "from-java" {
			t.Fatalf("the foreign pointer was not resolved: %d messages", len(got))
		}
		if c.Stats().Failed == 0 {
			t.Error("the pointer to a missing object did not fail")
		}
		waitFor(t, 30*time.Second, "the missing-object message in the DLQ", func() bool {
			// Receives (without deleting) drive the redrive policy.
			_, _ = b.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1, VisibilityTimeout: 0})
			for _, m := range b.Drain(t, q.DLQURL, 500*time.Millisecond) {
				if strings.Contains(aws.ToString(m.Body), "never-written") {
					return true
				}
			}
			return false
		})
		if keys := b.Objects(t, bucket); len(keys) != 1 {
			t.Errorf("bucket %v: the foreign object must stay", keys)
		}
		m := &patterns.Message{ID: "m", Body: []byte(`["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"` + bucket + `","s3Key":"gone"}]`),
			Attributes: map[string]patterns.Attribute{"SQSLargePayloadSize": patterns.NumberAttr(5)}}
		if err := cc.Resolve(ctx, m); !errors.Is(err, patterns.ErrPayloadUnavailable) || !strings.Contains(err.Error(), "s3://"+bucket+"/gone") {
			t.Errorf("missing object: %v; want ErrPayloadUnavailable naming the object", err)
		}
	})
}
