package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// callLog records the operations clients made on memaws.
type callLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *callLog) injector() memaws.Injector {
	return memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
		l.mu.Lock()
		l.ops = append(l.ops, c.Operation)
		l.mu.Unlock()
		return memaws.Fault{}
	})
}

func (l *callLog) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.ops {
		if o == op {
			n++
		}
	}
	return n
}

// receiveRaw takes one message off the queue as SQS holds it.
func receiveRaw(t *testing.T, client *sqs.Client, url string) sqstypes.Message {
	t.Helper()
	out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 1, MessageAttributeNames: []string{"All"},
	})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(out.Messages))
	}
	return out.Messages[0]
}

// resolveRaw decodes and resolves a received message as a Consumer with
// cc would.
func resolveRaw(t *testing.T, cc *patterns.ClaimCheck, url string, r sqstypes.Message) *patterns.Message {
	t.Helper()
	attrs := map[string]patterns.Attribute{}
	for k, a := range r.MessageAttributes {
		attrs[k] = patterns.Attribute{DataType: aws.ToString(a.DataType), Value: aws.ToString(a.StringValue), Binary: a.BinaryValue}
	}
	m, err := patterns.DecodeSQSMessage(patterns.SQSRecord{MessageID: aws.ToString(r.MessageId), Body: aws.ToString(r.Body), MessageAttributes: attrs, QueueURL: url}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cc.Resolve(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func nineAttributes() map[string]patterns.Attribute {
	a := map[string]patterns.Attribute{}
	for i := range 9 {
		a[fmt.Sprintf("a%d", i)] = patterns.StringAttr(strconv.Itoa(i))
	}
	return a
}

// A claim-checked message carries what the Extended Clients carry: the
// user's attributes plus ExtendedPayloadSize, nothing of courier's, so 9
// user attributes go (Java's client sends them), with tracing on too. One
// that needs 11 (a request: courier's header) is refused before any upload
// and any SQS request.
func TestClaimCheckNineUserAttributes(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(m *patterns.Message)
		refused bool
	}{
		{name: "plain", prepare: func(*patterns.Message) {}},
		{name: "traced", prepare: func(m *patterns.Message) {
			m.TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		}},
		{name: "with courier's header", prepare: func(m *patterns.Message) { m.CorrelationID = "c1" }, refused: true},
		{name: "8 and courier's header", prepare: func(m *patterns.Message) {
			m.CorrelationID = "c1"
			delete(m.Attributes, "a8")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memaws.New()
			url, bucket := memClaimSetup(t, mem)
			var calls callLog
			cc, err := patterns.NewClaimCheck(mem.S3(memaws.WithFaults(calls.injector())), bucket)
			if err != nil {
				t.Fatal(err)
			}
			p, err := patterns.NewProducer(mem.SQS(memaws.WithFaults(calls.injector())), url, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
			if err != nil {
				t.Fatal(err)
			}
			body := strings.Repeat("x", patterns.MaxSQSMessageBytes+1)
			m := &patterns.Message{Body: []byte(body), Attributes: nineAttributes()}
			tt.prepare(m)
			wantAttrs := len(m.Attributes)
			err = p.Send(context.Background(), m)
			if tt.refused {
				if !errors.Is(err, patterns.ErrTooManyAttributes) {
					t.Fatalf("Send: %v, want ErrTooManyAttributes", err)
				}
				if n := calls.count("PutObject") + calls.count("CreateMultipartUpload") + calls.count("SendMessage") + calls.count("SendMessageBatch"); n != 0 {
					t.Errorf("refused after %d requests (%v), want before any", n, calls.ops)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			raw := receiveRaw(t, mem.SQS(), url)
			if _, ok := raw.MessageAttributes[patterns.HeaderAttribute]; ok && m.CorrelationID == "" {
				t.Errorf("courier's header on a plain claim-checked message: %v", raw.MessageAttributes[patterns.HeaderAttribute])
			}
			if got := aws.ToString(raw.MessageAttributes[patterns.ExtendedPayloadSizeAttribute].StringValue); got != strconv.Itoa(len(body)) {
				t.Errorf("%s = %q, want %d", patterns.ExtendedPayloadSizeAttribute, got, len(body))
			}
			if len(raw.MessageAttributes) > patterns.MaxAttributes {
				t.Errorf("%d attributes on the wire", len(raw.MessageAttributes))
			}
			got := resolveRaw(t, cc, url, raw)
			if string(got.Body) != body || len(got.Attributes) != wantAttrs || got.CorrelationID != m.CorrelationID {
				t.Errorf("received body %d bytes, %d attributes, cid %q; want %d, %d, %q",
					len(got.Body), len(got.Attributes), got.CorrelationID, len(body), wantAttrs, m.CorrelationID)
			}
		})
	}
}

// The legacy pointer class of older Java clients (and the Python client's
// legacy mode), with the legacy size attribute, is read.
func TestClaimCheckLegacyPointerClass(t *testing.T) {
	mem := memaws.New()
	url, bucket := memClaimSetup(t, mem)
	ctx := context.Background()
	payload := strings.Repeat("legacy ", 1000)
	if _, err := mem.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("old/1"), Body: strings.NewReader(payload)}); err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{patterns.LegacyPayloadSizeAttribute, patterns.ExtendedPayloadSizeAttribute} {
		_, err := mem.SQS().SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl:    aws.String(url),
			MessageBody: aws.String(`["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"` + bucket + `","s3Key":"old/1"}]`),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				attr: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(len(payload)))},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		cc, err := patterns.NewClaimCheck(mem.S3(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		got := resolveRaw(t, cc, url, receiveRaw(t, mem.SQS(), url))
		if string(got.Body) != payload || got.Offloaded == nil || got.Offloaded.Key != "old/1" || len(got.Attributes) != 0 {
			t.Errorf("%s: body %.20q (%d bytes), offloaded %+v, attributes %v", attr, got.Body, len(got.Body), got.Offloaded, got.Attributes)
		}
	}
}
