package interop_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// largeSize is above the 256 KiB the Extended Clients offload from by
// default, and below SQS's 1 MiB.
const largeSize = 300 << 10

// extendedJob is what extended.py sqs-send and sns-publish read.
type extendedJob struct {
	Body       string              `json:"body"`
	Attributes map[string]jsonAttr `json:"attributes"`
}

// extendedMessage is a message extended.py sqs-receive took.
type extendedMessage struct {
	Length     int                 `json:"length"`
	SHA256     string              `json:"sha256"`
	Head       string              `json:"head"`
	Attributes map[string]jsonAttr `json:"attributes"`
}

// checkCourierGot fails unless m is body with exactly attrs, resolved from
// an object in bucket.
func checkCourierGot(t *testing.T, what string, m *patterns.Message, body string, attrs map[string]patterns.Attribute, bucket string) {
	t.Helper()
	if string(m.Body) != body {
		t.Errorf("%s: body of %d bytes (starts %.40q), want the %d bytes sent (starts %.40q)", what, len(m.Body), m.Body, len(body), body)
	}
	if d := attrDiff(toJSONAttrs(attrs), toJSONAttrs(m.Attributes)); d != "" {
		t.Errorf("%s: attributes differ: %s", what, d)
	}
	if m.Offloaded == nil || m.Offloaded.Bucket != bucket {
		t.Errorf("%s: Offloaded %+v, want a pointer into %s", what, m.Offloaded, bucket)
	}
}

// checkPythonGot fails unless got is the one message body with exactly attrs.
func checkPythonGot(t *testing.T, got []extendedMessage, body string, attrs map[string]patterns.Attribute) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("the Python Extended Client received %d messages, want 1", len(got))
	}
	sum := sha256.Sum256([]byte(body))
	if m := got[0]; m.Length != len(body) || m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("the Python Extended Client got a body of %d bytes starting %q, want the %d bytes sent starting %.40q", m.Length, m.Head, len(body), body)
	}
	if d := attrDiff(toJSONAttrs(attrs), got[0].Attributes); d != "" {
		t.Errorf("the Python Extended Client got other attributes: %s", d)
	}
}

// The Python SQS Extended Client sends a 300 KiB body with 9 attributes;
// a courier Consumer with a ClaimCheck gets the body and exactly the 9
// attributes (ExtendedPayloadSize removed), and leaves the object.
//
// No Binary attribute here: amazon-sqs-extended-client 1.0.1 cannot send
// one on a large message (its size check calls .encode() on the bytes).
func TestPythonExtendedClientToCourierConsumer(t *testing.T) {
	needPeers(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		bucket := b.CreateBucket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		body, attrs := largeBody(largeSize), userAttributes(true, false)

		var sent struct {
			MessageID string `json:"message_id"`
		}
		runPeer(t, b, extendedJob{Body: body, Attributes: toJSONAttrs(attrs)}, &sent, "extended.py", "sqs-send", q.URL, bucket)
		keys := b.Objects(t, bucket)
		if len(keys) != 1 {
			t.Fatalf("the Python Extended Client left %v in the bucket, want one object", keys)
		}

		cc, err := patterns.NewClaimCheck(b.S3(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		got := consume(t, b, q.URL, cc, 1)
		checkCourierGot(t, "courier Consumer", got[0], body, attrs, bucket)
		if got[0].ID != sent.MessageID {
			t.Errorf("message id %q, want the one the Python client sent, %q", got[0].ID, sent.MessageID)
		}
		if got[0].Offloaded != nil && got[0].Offloaded.Key != keys[0] {
			t.Errorf("resolved from key %q, want the Python client's %q", got[0].Offloaded.Key, keys[0])
		}
	})
}

// A courier Producer with a ClaimCheck (Threshold 262144, the Extended
// Clients' default) sends a 300 KiB body with 9 attributes, one of them
// Binary; the Python SQS Extended Client receives the body and exactly the
// 9 attributes, and with delete_payload_from_s3 on removes the object when
// it deletes the message (this queue is the object's only reader).
func TestCourierProducerToPythonExtendedClient(t *testing.T) {
	needPeers(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		bucket := b.CreateBucket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		cc, err := patterns.NewClaimCheck(b.S3(), bucket, func(o *patterns.ClaimCheckOptions) { o.Threshold = 262144 })
		if err != nil {
			t.Fatal(err)
		}
		p, err := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
		if err != nil {
			t.Fatal(err)
		}
		body, attrs := largeBody(largeSize), userAttributes(true, true)
		m := &patterns.Message{Body: []byte(body), Attributes: attrs}
		if err := p.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if m.Offloaded == nil {
			t.Fatal("the 300 KiB body was not offloaded")
		}

		var got []extendedMessage
		runPeer(t, b, nil, &got, "extended.py", "sqs-receive", q.URL, "1", peerWait, "--delete-payload")
		checkPythonGot(t, got, body, attrs)
		if keys := b.Objects(t, bucket); len(keys) != 0 {
			t.Errorf("bucket holds %v after the Python client deleted the message with delete_payload_from_s3", keys)
		}
	})
}

// subscribe makes a queue subscribed to topic, raw or enveloped.
func subscribe(t *testing.T, b *backend.Backend, topic string, raw bool) string {
	t.Helper()
	q := b.CreateQueue(t, backend.QueueOptions{})
	if _, err := patterns.Chain(context.Background(), b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) { o.Raw = raw }); err != nil {
		t.Fatal(err)
	}
	return q.URL
}

// The Python SNS Extended Client publishes a 300 KiB body with 9
// attributes to a topic; courier Consumers of two subscribed queues, one
// with raw delivery and one with SNS's envelope, get the body and exactly
// the 9 attributes from the Python client's bucket, which their ClaimCheck
// names in ReadBuckets. The shared object stays.
func TestPythonSNSExtendedClientToCourier(t *testing.T) {
	needPeers(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		bucket := b.CreateBucket(t)
		topic := b.CreateTopic(t, false, nil)
		queues := map[bool]string{true: subscribe(t, b, topic, true), false: subscribe(t, b, topic, false)}
		body, attrs := largeBody(largeSize), userAttributes(false, false)

		var sent struct {
			MessageID string `json:"message_id"`
		}
		runPeer(t, b, extendedJob{Body: body, Attributes: toJSONAttrs(attrs)}, &sent, "extended.py", "sns-publish", topic, bucket)

		// courier's own bucket, reading the Python sender's (ReadBuckets).
		cc, err := patterns.NewClaimCheck(b.S3(), b.CreateBucket(t), func(o *patterns.ClaimCheckOptions) { o.ReadBuckets = []string{bucket} })
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range []bool{true, false} {
			got := consume(t, b, queues[raw], cc, 1)
			checkCourierGot(t, fmt.Sprintf("courier Consumer (raw delivery %v)", raw), got[0], body, attrs, bucket)
		}
		if keys := b.Objects(t, bucket); len(keys) != 1 {
			t.Errorf("bucket holds %v, want the one shared object", keys)
		}
	})
}

// A courier Publisher with a ClaimCheck publishes a 300 KiB body with 9
// attributes; the Python SQS Extended Client reads it from a queue
// subscribed with raw delivery, with delete_payload_from_s3 off (the
// object is the topic's, shared by every subscription), so it stays.
func TestCourierPublisherToPythonExtendedClient(t *testing.T) {
	needPeers(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		bucket := b.CreateBucket(t)
		topic := b.CreateTopic(t, false, nil)
		q := subscribe(t, b, topic, true)
		cc, err := patterns.NewClaimCheck(b.S3(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := patterns.NewPublisher(b.SNS(), topic, func(o *patterns.PublisherOptions) { o.ClaimCheck = cc })
		if err != nil {
			t.Fatal(err)
		}
		// SNS raw delivery carries Binary attributes; on moto 5.2.5 a raw
		// delivered message with one makes ReceiveMessage answer HTTP 500
		// ("Strings must be encoded before hashing", localstack/FIDELITY.md;
		// Caps.RawDeliveryBinaryAttributes), so there all 9 are String and Number.
		binary := b.Caps.RawDeliveryBinaryAttributes
		if !binary {
			t.Logf("%s: no Binary attribute (a raw-delivered Binary attribute breaks its ReceiveMessage)", b.Name)
		}
		body, attrs := largeBody(largeSize), userAttributes(false, binary)
		m := &patterns.Message{Body: []byte(body), Attributes: attrs}
		if err := pub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if m.Offloaded == nil {
			t.Fatal("the 300 KiB body was not offloaded")
		}

		var got []extendedMessage
		runPeer(t, b, nil, &got, "extended.py", "sqs-receive", q, "1", peerWait)
		checkPythonGot(t, got, body, attrs)
		if keys := b.Objects(t, bucket); len(keys) != 1 {
			t.Errorf("bucket holds %v, want the topic's object, kept", keys)
		}
	})
}
