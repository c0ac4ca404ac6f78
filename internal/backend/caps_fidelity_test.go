package backend_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// These tests show the rows of localstack/FIDELITY.md whose capability no
// pattern test needs: where a backend has the capability they check AWS's
// behaviour, where it lacks it they check the deviation is still there, so
// a fixed emulator fails the test and its capability gets updated.

// stillDeviates reports the deviation of a backend that lacks a capability.
func stillDeviates(t *testing.T, b *backend.Backend, capability string, deviates bool, what string) {
	t.Helper()
	if !deviates {
		t.Errorf("%s lacks %s, but %s no longer happens: update internal/backend/caps.go and localstack/FIDELITY.md", b.Name, capability, what)
		return
	}
	t.Logf("%s lacks %s (localstack/FIDELITY.md): %s", b.Name, capability, what)
}

// SendMessage API reference: a body has at least one character, all of
// them in the allowed Unicode ranges.
func TestFidelityRejectsInvalidBody(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{})
		for _, body := range []string{"", "a\x00b"} {
			_, err := b.SQS().SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)})
			var ae smithy.APIError
			refused := errors.As(err, &ae)
			if err != nil && !refused {
				t.Fatalf("body %q: %v", body, err)
			}
			if b.Caps.RejectsInvalidBody {
				if !refused {
					t.Errorf("body %q was accepted; AWS refuses it", body)
				}
				continue
			}
			stillDeviates(t, b, "RejectsInvalidBody", !refused, "body "+strings.ReplaceAll(body, "\x00", `\x00`)+" accepted")
		}
	})
}

// SQS Developer Guide, "Amazon SQS message quotas": message attributes
// count toward the maximum message size. The queue's MaximumMessageSize is
// set to 1,024 bytes so that a 1,000-byte body fits and body plus a
// 100-byte attribute does not.
func TestFidelityAttributesCountInSize(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		q := b.CreateQueue(t, backend.QueueOptions{Attributes: map[string]string{"MaximumMessageSize": "1024"}})
		send := func(attrs map[string]types.MessageAttributeValue) error {
			_, err := b.SQS().SendMessage(context.Background(), &sqs.SendMessageInput{
				QueueUrl: aws.String(q.URL), MessageBody: aws.String(strings.Repeat("x", 1000)), MessageAttributes: attrs,
			})
			return err
		}
		if err := send(nil); err != nil {
			t.Fatalf("1,000-byte body alone on a 1,024-byte queue: %v", err)
		}
		err := send(map[string]types.MessageAttributeValue{"pad": {DataType: aws.String("String"), StringValue: aws.String(strings.Repeat("p", 100))}})
		var ae smithy.APIError
		refused := errors.As(err, &ae)
		if err != nil && !refused {
			t.Fatal(err)
		}
		if b.Caps.AttributesCountInSize {
			if !refused {
				t.Error("body + attribute over MaximumMessageSize was accepted; AWS counts attributes")
			}
			return
		}
		stillDeviates(t, b, "AttributesCountInSize", !refused, "body + attribute over MaximumMessageSize accepted")
	})
}

// SNS Developer Guide, "Amazon SNS raw message delivery": a raw delivery
// carries the published message attributes, Binary ones included.
func TestFidelityRawDeliveryBinaryAttributes(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		topic := b.CreateTopic(t, false, nil)
		q := b.CreateQueue(t, backend.QueueOptions{})
		if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = true }); err != nil {
			t.Fatal(err)
		}
		blob := []byte{0, 1, 2, 0xff}
		if _, err := b.SNS().Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("with a blob"),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{"blob": {DataType: aws.String("Binary"), BinaryValue: blob}}}); err != nil {
			t.Fatal(err)
		}
		// One attempt per receive: the deviation is an HTTP 500 that the
		// SDK's retries would only repeat.
		client := sqs.NewFromConfig(b.Config(), func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
		var got *types.Message
		var recvErr error
		for deadline := time.Now().Add(10 * time.Second); got == nil && time.Now().Before(deadline); {
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				recvErr = err
				break
			}
			if len(out.Messages) > 0 {
				got = &out.Messages[0]
			}
		}
		if b.Caps.RawDeliveryBinaryAttributes {
			if recvErr != nil || got == nil {
				t.Fatalf("raw delivery with a Binary attribute: received %v, err %v", got, recvErr)
			}
			if a := got.MessageAttributes["blob"]; aws.ToString(a.DataType) != "Binary" || !bytes.Equal(a.BinaryValue, blob) {
				t.Errorf("attribute blob = %s %v, want Binary %v", aws.ToString(a.DataType), a.BinaryValue, blob)
			}
			return
		}
		stillDeviates(t, b, "RawDeliveryBinaryAttributes", recvErr != nil, "ReceiveMessage fails on a raw delivery with a Binary attribute")
	})
}

// SNS Developer Guide, "Message deduplication for FIFO topics": a FIFO
// topic with content-based deduplication passes its deduplication id on,
// so a FIFO queue without it still receives the message.
func TestFidelityFIFOTopicToQueueWithoutContentDedup(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		topic := b.CreateTopic(t, true, map[string]string{"ContentBasedDeduplication": "true"})
		q := b.CreateQueue(t, backend.QueueOptions{FIFO: true})
		if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = true }); err != nil {
			t.Fatal(err)
		}
		_, err := b.SNS().Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("order 7 paid"), MessageGroupId: aws.String("order-7")})
		if !b.Caps.FIFOTopicToQueueWithoutContentDedup {
			stillDeviates(t, b, "FIFOTopicToQueueWithoutContentDedup", err != nil, "Publish refused")
			return
		}
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if msgs := b.Drain(t, q.URL, 3*time.Second); len(msgs) != 1 || aws.ToString(msgs[0].Body) != "order 7 paid" {
			t.Errorf("the FIFO queue got %d messages, want the one published", len(msgs))
		}
	})
}
