package memaws_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/courier-aws/courier/memaws"
)

// newQueue makes a queue on a fresh Server.
func qServer(t testing.TB, name string, attrs map[string]string) (*memaws.Server, *sqs.Client, string) {
	t.Helper()
	s := memaws.New()
	c := s.SQS()
	return s, c, qCreate(t, c, name, attrs)
}

func qCreate(t testing.TB, c *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

func qARN(t *testing.T, c *sqs.Client, url string) string {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["QueueArn"]
}

func qSend(t *testing.T, c *sqs.Client, url, body string, optFns ...func(*sqs.SendMessageInput)) *sqs.SendMessageOutput {
	t.Helper()
	in := &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}
	for _, fn := range optFns {
		fn(in)
	}
	out, err := c.SendMessage(context.Background(), in)
	if err != nil {
		t.Fatalf("SendMessage %q: %v", body, err)
	}
	return out
}

func qReceive(t *testing.T, c *sqs.Client, url string, max int32, optFns ...func(*sqs.ReceiveMessageInput)) []types.Message {
	t.Helper()
	in := &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: max,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	}
	for _, fn := range optFns {
		fn(in)
	}
	out, err := c.ReceiveMessage(context.Background(), in)
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	return out.Messages
}

func qCounts(t *testing.T, c *sqs.Client, url string) (visible, inflight, delayed int) {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := func(k string) int { v, _ := strconv.Atoi(out.Attributes[k]); return v }
	return n("ApproximateNumberOfMessages"), n("ApproximateNumberOfMessagesNotVisible"), n("ApproximateNumberOfMessagesDelayed")
}

func qCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSendReceiveDelete(t *testing.T) {
	s, c, url := qServer(t, "q1", nil)
	ctx := context.Background()
	out := qSend(t, c, url, "hello", func(in *sqs.SendMessageInput) {
		in.MessageAttributes = map[string]types.MessageAttributeValue{
			"kind": {DataType: aws.String("String"), StringValue: aws.String("greeting")},
			"n":    {DataType: aws.String("Number"), StringValue: aws.String("42")},
			"bin":  {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
		}
	})
	if aws.ToString(out.MD5OfMessageAttributes) == "" || aws.ToString(out.MessageId) == "" {
		t.Fatalf("send output %+v", out)
	}
	msgs := qReceive(t, c, url, 10)
	if len(msgs) != 1 {
		t.Fatalf("received %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if aws.ToString(m.Body) != "hello" || aws.ToString(m.MessageId) != aws.ToString(out.MessageId) {
		t.Fatalf("message %+v", m)
	}
	if aws.ToString(m.MD5OfMessageAttributes) != aws.ToString(out.MD5OfMessageAttributes) {
		t.Fatalf("attribute MD5 %s on receive, %s on send", aws.ToString(m.MD5OfMessageAttributes), aws.ToString(out.MD5OfMessageAttributes))
	}
	if string(m.MessageAttributes["bin"].BinaryValue) != "\x00\x01\x02" || aws.ToString(m.MessageAttributes["n"].StringValue) != "42" {
		t.Fatalf("attributes %+v", m.MessageAttributes)
	}
	if m.Attributes["ApproximateReceiveCount"] != "1" || m.Attributes["SentTimestamp"] == "" || m.Attributes["SenderId"] == "" {
		t.Fatalf("system attributes %v", m.Attributes)
	}
	if v, f, _ := qCounts(t, c, url); v != 0 || f != 1 {
		t.Fatalf("counts visible=%d inflight=%d, want 0 1", v, f)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	s.Advance(time.Hour)
	if v, f, _ := qCounts(t, c, url); v != 0 || f != 0 {
		t.Fatalf("counts after delete visible=%d inflight=%d", v, f)
	}
}

// The SDK checks the body MD5 itself; this checks the attribute MD5
// against AWS's algorithm, laid out byte by byte.
func TestAttributeMD5MatchesSDKsAlgorithm(t *testing.T) {
	_, c, url := qServer(t, "md5", nil)
	out := qSend(t, c, url, "body", func(in *sqs.SendMessageInput) {
		in.MessageAttributes = map[string]types.MessageAttributeValue{
			"a": {DataType: aws.String("String"), StringValue: aws.String("x")},
		}
	})
	// 00000001 'a' 00000006 'String' 01 00000001 'x', as the guide lays it out.
	sum := md5.Sum([]byte("\x00\x00\x00\x01a\x00\x00\x00\x06String\x01\x00\x00\x00\x01x"))
	if got, want := aws.ToString(out.MD5OfMessageAttributes), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("MD5OfMessageAttributes %s, want %s", got, want)
	}
}

func TestUnknownQueueIsTypedError(t *testing.T) {
	s := memaws.New()
	_, err := s.SQS().SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/123456789012/nope"), MessageBody: aws.String("x"),
	})
	var nq *types.QueueDoesNotExist
	if !errors.As(err, &nq) {
		t.Fatalf("error %v (%T), want *types.QueueDoesNotExist", err, err)
	}
}
