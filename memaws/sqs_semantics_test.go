package memaws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/memaws"
)

func TestSendValidation(t *testing.T) {
	s := memaws.New()
	c := s.SQS(func(o *memaws.ClientOptions) { o.RetryMaxAttempts = 1 })
	std := qCreate(t, c, "std", nil)
	small := qCreate(t, c, "small", map[string]string{"MaximumMessageSize": "1024"})
	fifo := qCreate(t, c, "f.fifo", map[string]string{"FifoQueue": "true"})
	str := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	many := map[string]types.MessageAttributeValue{}
	for i := range 11 {
		many[fmt.Sprintf("a%d", i)] = str("v")
	}
	tests := []struct {
		name string
		in   sqs.SendMessageInput
		code string
	}{
		{"empty body", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("")}, "MissingParameter"},
		{"max size", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String(strings.Repeat("x", 1<<20))}, ""},
		{"too large", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String(strings.Repeat("x", 1<<20+1))}, "InvalidParameterValue"},
		{"attributes count in size", sqs.SendMessageInput{QueueUrl: &small, MessageBody: aws.String(strings.Repeat("x", 1020)),
			MessageAttributes: map[string]types.MessageAttributeValue{"k": str("v")}}, "InvalidParameterValue"},
		{"invalid character", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("a\x00b")}, "InvalidMessageContents"},
		{"invalid character U+FFFF", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("a\uffffb")}, "InvalidMessageContents"},
		{"valid unicode", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("tab\t é 😀")}, ""},
		{"11 attributes", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("x"), MessageAttributes: many}, "InvalidParameterValue"},
		{"attribute named AWS.", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("x"),
			MessageAttributes: map[string]types.MessageAttributeValue{"AWS.x": str("v")}}, "InvalidParameterValue"},
		{"attribute name with ..", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("x"),
			MessageAttributes: map[string]types.MessageAttributeValue{"a..b": str("v")}}, "InvalidParameterValue"},
		{"attribute type", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("x"),
			MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Text"), StringValue: aws.String("v")}}}, "InvalidParameterValue"},
		{"custom attribute type", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("x"),
			MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Number.int"), StringValue: aws.String("7")}}}, ""},
		{"not a number", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("x"),
			MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Number"), StringValue: aws.String("seven")}}}, "InvalidParameterValue"},
		{"delay too long", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("x"), DelaySeconds: 901}, "InvalidParameterValue"},
		{"dedup id on standard", sqs.SendMessageInput{QueueUrl: &std, MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")}, "InvalidParameterValue"},
		{"fifo without group", sqs.SendMessageInput{QueueUrl: &fifo, MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")}, "MissingParameter"},
		{"fifo without dedup id", sqs.SendMessageInput{QueueUrl: &fifo, MessageBody: aws.String("x"), MessageGroupId: aws.String("g")}, "InvalidParameterValue"},
		{"fifo with delay", sqs.SendMessageInput{QueueUrl: &fifo, MessageBody: aws.String("x"), MessageGroupId: aws.String("g"),
			MessageDeduplicationId: aws.String("d"), DelaySeconds: 5}, "InvalidParameterValue"},
		{"fifo ok", sqs.SendMessageInput{QueueUrl: &fifo, MessageBody: aws.String("x"), MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			_, err := c.SendMessage(context.Background(), &in)
			if got := qCode(err); got != tt.code || (tt.code == "" && err != nil) {
				t.Fatalf("error %v (code %q), want code %q", err, got, tt.code)
			}
		})
	}
}

func TestReceiveAndQueueValidation(t *testing.T) {
	s, c, url := qServer(t, "v", nil)
	_ = s
	ctx := context.Background()
	recv := func(fn func(*sqs.ReceiveMessageInput)) error {
		in := &sqs.ReceiveMessageInput{QueueUrl: &url}
		fn(in)
		_, err := c.ReceiveMessage(ctx, in)
		return err
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"max 11", func() error { return recv(func(in *sqs.ReceiveMessageInput) { in.MaxNumberOfMessages = 11 }) }, "InvalidParameterValue"},
		{"wait 21", func() error { return recv(func(in *sqs.ReceiveMessageInput) { in.WaitTimeSeconds = 21 }) }, "InvalidParameterValue"},
		{"visibility 43201", func() error { return recv(func(in *sqs.ReceiveMessageInput) { in.VisibilityTimeout = 43201 }) }, "InvalidParameterValue"},
		{"bad handle", func() error {
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: aws.String("nonsense")})
			return err
		}, "ReceiptHandleIsInvalid"},
		{"queue attribute out of range", func() error {
			_, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"VisibilityTimeout": "43201"}})
			return err
		}, "InvalidAttributeValue"},
		{"unknown queue attribute", func() error {
			_, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"Colour": "red"}})
			return err
		}, "InvalidAttributeName"},
		{"redrive to a missing queue", func() error {
			_, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{
				"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:nope","maxReceiveCount":3}`}})
			return err
		}, "InvalidAttributeValue"},
		{"same queue, other attributes", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("v"), Attributes: map[string]string{"VisibilityTimeout": "7"}})
			return err
		}, "QueueAlreadyExists"},
		{"same queue, same attributes", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("v"), Attributes: map[string]string{"VisibilityTimeout": "30"}})
			return err
		}, ""},
		{"fifo name without FifoQueue", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("x.fifo")})
			return err
		}, "InvalidParameterValue"},
		{"empty batch", func() error {
			_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: []types.SendMessageBatchRequestEntry{}})
			return err
		}, "AWS.SimpleQueueService.EmptyBatchRequest"},
		{"11 entries", func() error {
			var es []types.SendMessageBatchRequestEntry
			for i := range 11 {
				es = append(es, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), MessageBody: aws.String("x")})
			}
			_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: es})
			return err
		}, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"},
		{"ids not distinct", func() error {
			es := []types.SendMessageBatchRequestEntry{{Id: aws.String("a"), MessageBody: aws.String("x")}, {Id: aws.String("a"), MessageBody: aws.String("y")}}
			_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: es})
			return err
		}, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
		{"invalid id", func() error {
			es := []types.SendMessageBatchRequestEntry{{Id: aws.String("a b"), MessageBody: aws.String("x")}}
			_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: es})
			return err
		}, "AWS.SimpleQueueService.InvalidBatchEntryId"},
		{"batch too long", func() error {
			es := []types.SendMessageBatchRequestEntry{
				{Id: aws.String("a"), MessageBody: aws.String(strings.Repeat("x", 600_000))},
				{Id: aws.String("b"), MessageBody: aws.String(strings.Repeat("x", 600_000))},
			}
			_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: es})
			return err
		}, "AWS.SimpleQueueService.BatchRequestTooLong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := qCode(err); got != tt.code || (tt.code == "" && err != nil) {
				t.Fatalf("error %v (code %q), want code %q", err, got, tt.code)
			}
		})
	}
}

func TestBatchPartialFailure(t *testing.T) {
	s := memaws.New()
	inj := memaws.InjectorFunc(func(call memaws.Call) memaws.Fault {
		if call.Operation == "SendMessageBatch" || call.Operation == "DeleteMessageBatch" {
			return memaws.Fault{FailEntries: map[int]memaws.EntryError{1: {Code: "InternalError", Message: "try again"}}}
		}
		return memaws.Fault{}
	})
	c := s.SQS(memaws.WithFaults(inj))
	url := qCreate(t, c, "partial", nil)
	ctx := context.Background()
	out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("A"), MessageAttributes: map[string]types.MessageAttributeValue{"k": {DataType: aws.String("String"), StringValue: aws.String("v")}}},
		{Id: aws.String("b"), MessageBody: aws.String("B")},
		{Id: aws.String("c"), MessageBody: aws.String("\x01")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 1 || aws.ToString(out.Successful[0].Id) != "a" || out.Successful[0].MD5OfMessageAttributes == nil {
		t.Fatalf("successful %+v", out.Successful)
	}
	failed := map[string]types.BatchResultErrorEntry{}
	for _, f := range out.Failed {
		failed[aws.ToString(f.Id)] = f
	}
	if f := failed["b"]; aws.ToString(f.Code) != "InternalError" || f.SenderFault {
		t.Fatalf("injected failure %+v", f)
	}
	if f := failed["c"]; aws.ToString(f.Code) != "InvalidMessageContents" || !f.SenderFault {
		t.Fatalf("invalid entry %+v", f)
	}
	msgs := qReceive(t, c, url, 10)
	if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "A" {
		t.Fatalf("queue holds %d messages", len(msgs))
	}
	del, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: []types.DeleteMessageBatchRequestEntry{
		{Id: aws.String("x"), ReceiptHandle: msgs[0].ReceiptHandle},
		{Id: aws.String("y"), ReceiptHandle: msgs[0].ReceiptHandle},
		{Id: aws.String("z"), ReceiptHandle: aws.String("garbage")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Successful) != 1 || len(del.Failed) != 2 || aws.ToString(del.Failed[1].Code) != "ReceiptHandleIsInvalid" {
		t.Fatalf("delete batch %+v", del)
	}
}

func TestLostResponseStillSends(t *testing.T) {
	s := memaws.New()
	lose := memaws.InjectorFunc(func(call memaws.Call) memaws.Fault {
		return memaws.Fault{LoseResponse: call.Operation == "SendMessage"}
	})
	c := s.SQS(memaws.WithFaults(lose), func(o *memaws.ClientOptions) { o.RetryMaxAttempts = 1 })
	url := qCreate(t, c, "lost", nil)
	if _, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("m")}); err == nil {
		t.Fatal("SendMessage succeeded; the response was to be lost")
	}
	if msgs := qReceive(t, s.SQS(), url, 10); len(msgs) != 1 {
		t.Fatalf("%d messages in the queue, want 1", len(msgs))
	}
}

func TestDuplicateDelivery(t *testing.T) {
	s := memaws.New()
	dup := memaws.InjectorFunc(func(call memaws.Call) memaws.Fault {
		return memaws.Fault{Duplicate: call.Operation == "ReceiveMessage" && call.Attempt == 1}
	})
	c := s.SQS(memaws.WithFaults(dup))
	url := qCreate(t, c, "dup", nil)
	qSend(t, c, url, "once", func(in *sqs.SendMessageInput) {
		in.MessageAttributes = map[string]types.MessageAttributeValue{"k": {DataType: aws.String("String"), StringValue: aws.String("v")}}
	})
	first := qReceive(t, c, url, 1)
	second := qReceive(t, s.SQS(), url, 1)
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("received %d then %d", len(first), len(second))
	}
	if aws.ToString(first[0].MessageId) != aws.ToString(second[0].MessageId) || aws.ToString(second[0].Body) != "once" ||
		aws.ToString(second[0].MessageAttributes["k"].StringValue) != "v" || aws.ToString(first[0].ReceiptHandle) == aws.ToString(second[0].ReceiptHandle) {
		t.Fatalf("copy differs: %+v vs %+v", first[0], second[0])
	}
	ctx := context.Background()
	for _, m := range append(first, second...) {
		if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	if v, f, _ := qCounts(t, c, url); v+f != 0 {
		t.Fatalf("%d visible, %d in flight after deleting both", v, f)
	}
}

func TestVisibilityReceiveCountAndRedrive(t *testing.T) {
	s := memaws.New()
	c := s.SQS()
	ctx := context.Background()
	dlq := qCreate(t, c, "work-dlq", nil)
	rp, _ := json.Marshal(map[string]any{"deadLetterTargetArn": qARN(t, c, dlq), "maxReceiveCount": 2})
	url := qCreate(t, c, "work", map[string]string{"VisibilityTimeout": "30", "RedrivePolicy": string(rp)})
	sent := qSend(t, c, url, "poison")

	m1 := qReceive(t, c, url, 1)
	if len(m1) != 1 || m1[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("first receive %+v", m1)
	}
	if len(qReceive(t, c, url, 1)) != 0 {
		t.Fatal("message visible while in flight")
	}
	_, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m1[0].ReceiptHandle, VisibilityTimeout: 0})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m1[0].ReceiptHandle, VisibilityTimeout: 10})
	if qCode(err) != "AWS.SimpleQueueService.MessageNotInflight" {
		t.Fatalf("change visibility of a visible message: %v", err)
	}
	m2 := qReceive(t, c, url, 1)
	if len(m2) != 1 || m2[0].Attributes["ApproximateReceiveCount"] != "2" || m2[0].Attributes["ApproximateFirstReceiveTimestamp"] != m1[0].Attributes["ApproximateFirstReceiveTimestamp"] {
		t.Fatalf("second receive %+v", m2)
	}
	// A stale handle neither deletes (standard queue: the call succeeds) ...
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m1[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	s.Advance(31 * time.Second)
	// ... and the third receive moves it to the DLQ.
	if m3 := qReceive(t, c, url, 1); len(m3) != 0 {
		t.Fatalf("third receive returned %+v; want it moved to the DLQ", m3)
	}
	d := qReceive(t, c, dlq, 1)
	if len(d) != 1 || aws.ToString(d[0].MessageId) != aws.ToString(sent.MessageId) || d[0].Attributes["ApproximateReceiveCount"] != "1" ||
		d[0].Attributes["SentTimestamp"] != m1[0].Attributes["SentTimestamp"] || d[0].Attributes["DeadLetterQueueSourceArn"] != qARN(t, c, url) {
		t.Fatalf("dead letter %+v", d)
	}
	src, err := c.ListDeadLetterSourceQueues(ctx, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: &dlq})
	if err != nil || len(src.QueueUrls) != 1 || src.QueueUrls[0] != url {
		t.Fatalf("dead letter sources %v %v", src, err)
	}
}

func TestDelayedMessages(t *testing.T) {
	s, c, url := qServer(t, "delayed", map[string]string{"DelaySeconds": "10"})
	qSend(t, c, url, "queue delay")
	qSend(t, c, url, "own delay", func(in *sqs.SendMessageInput) { in.DelaySeconds = 60 })
	if v, _, d := qCounts(t, c, url); v != 0 || d != 2 {
		t.Fatalf("visible %d delayed %d", v, d)
	}
	s.Advance(10 * time.Second)
	if m := qReceive(t, c, url, 10, func(in *sqs.ReceiveMessageInput) { in.VisibilityTimeout = 900 }); len(m) != 1 || aws.ToString(m[0].Body) != "queue delay" {
		t.Fatalf("after 10s: %+v", m)
	}
	s.Advance(50 * time.Second)
	if m := qReceive(t, c, url, 10); len(m) != 1 || aws.ToString(m[0].Body) != "own delay" {
		t.Fatalf("after 60s: %+v", m)
	}
}

func TestRetention(t *testing.T) {
	s, c, url := qServer(t, "short", map[string]string{"MessageRetentionPeriod": "60"})
	qSend(t, c, url, "old")
	s.Advance(61 * time.Second)
	if m := qReceive(t, c, url, 10); len(m) != 0 {
		t.Fatalf("expired message received: %+v", m)
	}
}

func fifoSend(t *testing.T, c *sqs.Client, url, group, body string) *sqs.SendMessageOutput {
	t.Helper()
	return qSend(t, c, url, body, func(in *sqs.SendMessageInput) { in.MessageGroupId = aws.String(group) })
}

func TestFIFOOrderAndGroupLock(t *testing.T) {
	s, c, url := qServer(t, "order.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "30"})
	var seqs []string
	for i := range 4 {
		out := fifoSend(t, c, url, "g1", fmt.Sprint("a", i))
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	fifoSend(t, c, url, "g2", "b0")
	for i := 1; i < len(seqs); i++ {
		if len(seqs[i]) < 20 || seqs[i] <= seqs[i-1] {
			t.Fatalf("sequence numbers %v", seqs)
		}
	}
	m := qReceive(t, c, url, 2)
	if len(m) != 2 || aws.ToString(m[0].Body) != "a0" || aws.ToString(m[1].Body) != "a1" {
		t.Fatalf("first receive %v", bodies(m))
	}
	// g1 is held while a0 and a1 are in flight; g2 is not.
	if m2 := qReceive(t, c, url, 10); len(m2) != 1 || aws.ToString(m2[0].Body) != "b0" {
		t.Fatalf("second receive %v", bodies(m2))
	}
	ctx := context.Background()
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if m3 := qReceive(t, c, url, 10); len(m3) != 0 {
		t.Fatalf("g1 delivered while a1 is in flight: %v", bodies(m3))
	}
	// a1's visibility ends: it comes back first, then the rest in order
	// (and b0, whose visibility ended too).
	s.Advance(31 * time.Second)
	if m4 := qReceive(t, c, url, 10); strings.Join(bodies(m4), ",") != "a1,a2,a3,b0" {
		t.Fatalf("after the timeout %v", bodies(m4))
	}
	// A FIFO queue refuses a handle whose visibility timeout ended.
	_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m[1].ReceiptHandle})
	if qCode(err) != "ReceiptHandleIsInvalid" {
		t.Fatalf("delete with an expired FIFO handle: %v", err)
	}
}

func bodies(ms []types.Message) []string {
	var b []string
	for _, m := range ms {
		b = append(b, aws.ToString(m.Body))
	}
	return b
}

func TestFIFODeduplication(t *testing.T) {
	s, c, url := qServer(t, "dedup.fifo", map[string]string{"FifoQueue": "true"})
	ctx := context.Background()
	sendID := func(body, id string) *sqs.SendMessageOutput {
		return qSend(t, c, url, body, func(in *sqs.SendMessageInput) {
			in.MessageGroupId, in.MessageDeduplicationId = aws.String("g"), aws.String(id)
		})
	}
	first := sendID("one", "d1")
	if again := sendID("one again", "d1"); aws.ToString(again.MessageId) != aws.ToString(first.MessageId) {
		t.Fatalf("duplicate got id %s, want %s", aws.ToString(again.MessageId), aws.ToString(first.MessageId))
	}
	m := qReceive(t, c, url, 10)
	if len(m) != 1 || m[0].Attributes["MessageDeduplicationId"] != "d1" || m[0].Attributes["MessageGroupId"] != "g" || m[0].Attributes["SequenceNumber"] == "" {
		t.Fatalf("received %+v", m)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	// Still deduplicated after the delete, within five minutes ...
	sendID("one, third time", "d1")
	if m := qReceive(t, c, url, 10); len(m) != 0 {
		t.Fatalf("deduplicated message delivered after delete: %v", bodies(m))
	}
	// ... and not after.
	s.Advance(5*time.Minute + time.Second)
	if out := sendID("one, later", "d1"); aws.ToString(out.MessageId) == aws.ToString(first.MessageId) {
		t.Fatal("deduplicated after the five-minute window")
	}
	if m := qReceive(t, c, url, 10); len(m) != 1 {
		t.Fatalf("received %d after the window", len(m))
	}

	// Content-based deduplication: the body's SHA-256.
	cbd := qCreate(t, c, "cbd.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	a := fifoSend(t, c, cbd, "g", "same")
	b := fifoSend(t, c, cbd, "other-group", "same")
	if aws.ToString(a.MessageId) != aws.ToString(b.MessageId) {
		t.Fatal("same body not deduplicated")
	}
}

func TestLongPollWakesOnSend(t *testing.T) {
	_, c, url := qServer(t, "poll", nil)
	var wg sync.WaitGroup
	var got []types.Message
	start := time.Now()
	wg.Go(func() {
		got = qReceive(t, c, url, 1, func(in *sqs.ReceiveMessageInput) { in.WaitTimeSeconds = 20 })
	})
	time.Sleep(50 * time.Millisecond)
	qSend(t, c, url, "wake")
	wg.Wait()
	if len(got) != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("long poll returned %d messages after %v", len(got), time.Since(start))
	}
}

func TestLongPollEndsWithContext(t *testing.T) {
	_, c, url := qServer(t, "cancel", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's", err)
	}
}

// In a synctest bubble a 20 s long poll and a 30 s visibility timeout take
// no real time.
func TestVirtualTime(t *testing.T) {
	start := time.Now()
	synctest.Test(t, func(t *testing.T) {
		_, c, url := qServer(t, "virtual", map[string]string{"VisibilityTimeout": "30"})
		t0 := time.Now()
		if m := qReceive(t, c, url, 1, func(in *sqs.ReceiveMessageInput) { in.WaitTimeSeconds = 20 }); len(m) != 0 {
			t.Fatal("message from an empty queue")
		}
		if d := time.Since(t0); d != 20*time.Second {
			t.Fatalf("long poll took %v of virtual time, want 20s", d)
		}
		qSend(t, c, url, "m")
		if m := qReceive(t, c, url, 1); len(m) != 1 {
			t.Fatal("no message")
		}
		t1 := time.Now()
		// The message comes back when its visibility ends, within this poll.
		m := qReceive(t, c, url, 1, func(in *sqs.ReceiveMessageInput) { in.WaitTimeSeconds = 20 })
		m = append(m, qReceive(t, c, url, 1, func(in *sqs.ReceiveMessageInput) { in.WaitTimeSeconds = 20 })...)
		if len(m) != 1 || m[0].Attributes["ApproximateReceiveCount"] != "2" {
			t.Fatalf("after the visibility timeout: %+v", m)
		}
		if d := time.Since(t1); d != 30*time.Second {
			t.Fatalf("message came back after %v, want 30s", d)
		}
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v of real time", d)
	}
}

func TestQueueManagement(t *testing.T) {
	s := memaws.New()
	c := s.SQS()
	ctx := context.Background()
	url := qCreate(t, c, "mgmt-a", nil)
	qCreate(t, c, "mgmt-b", nil)
	qCreate(t, c, "other", nil)
	if !strings.HasPrefix(url, memaws.Endpoint+"/"+s.Account()+"/") {
		t.Fatalf("url %s", url)
	}
	l, err := c.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("mgmt")})
	if err != nil || len(l.QueueUrls) != 2 {
		t.Fatalf("list %v %v", l, err)
	}
	g, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("mgmt-a")})
	if err != nil || aws.ToString(g.QueueUrl) != url {
		t.Fatalf("get url %v %v", g, err)
	}
	// Any host routes by path, as AWS's do.
	other := "https://sqs.us-east-1.amazonaws.com/" + s.Account() + "/mgmt-a"
	qSend(t, c, other, "via another host")
	if _, err := c.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: &url, Tags: map[string]string{"team": "x", "env": "test"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagQueue(ctx, &sqs.UntagQueueInput{QueueUrl: &url, TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: &url})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["team"] != "x" {
		t.Fatalf("tags %v %v", tags, err)
	}
	if _, err := c.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: &url}); qCode(err) != "AWS.SimpleQueueService.PurgeQueueInProgress" {
		t.Fatalf("second purge: %v", err)
	}
	if v, _, _ := qCounts(t, c, url); v != 0 {
		t.Fatalf("%d messages after purge", v)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []types.QueueAttributeName{"All"}})
	if err != nil || attrs.Attributes["VisibilityTimeout"] != "30" || attrs.Attributes["MaximumMessageSize"] != "1048576" || attrs.Attributes["CreatedTimestamp"] == "" {
		t.Fatalf("attributes %v %v", attrs, err)
	}
	if _, err := c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("mgmt-a")})
	var nq *types.QueueDoesNotExist
	if !errors.As(err, &nq) {
		t.Fatalf("deleted queue: %v", err)
	}
	if _, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("mgmt-a")}); qCode(err) != "AWS.SimpleQueueService.QueueDeletedRecently" {
		t.Fatalf("recreate at once: %v", err)
	}
	s.Advance(time.Minute)
	qCreate(t, c, "mgmt-a", nil)
}

func TestMessageMoveTask(t *testing.T) {
	s := memaws.New()
	c := s.SQS()
	ctx := context.Background()
	dlq := qCreate(t, c, "mv-dlq", nil)
	rp, _ := json.Marshal(map[string]any{"deadLetterTargetArn": qARN(t, c, dlq), "maxReceiveCount": 1})
	src := qCreate(t, c, "mv", map[string]string{"VisibilityTimeout": "0", "RedrivePolicy": string(rp)})
	qSend(t, c, src, "x")
	qReceive(t, c, src, 1)
	qReceive(t, c, src, 1) // moves it
	if v, _, _ := qCounts(t, c, dlq); v != 1 {
		t.Fatalf("dlq holds %d", v)
	}
	if _, err := c.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(qARN(t, c, dlq))}); err != nil {
		t.Fatal(err)
	}
	if m := qReceive(t, c, src, 1); len(m) != 1 || aws.ToString(m[0].Body) != "x" {
		t.Fatalf("moved back: %+v", m)
	}
	l, err := c.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(qARN(t, c, dlq))})
	if err != nil || len(l.Results) != 1 || aws.ToString(l.Results[0].Status) != "COMPLETED" || l.Results[0].ApproximateNumberOfMessagesMoved != 1 {
		t.Fatalf("tasks %+v %v", l, err)
	}
}

func TestFIFOReceiveRequestAttemptID(t *testing.T) {
	s, c, url := qServer(t, "attempt.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	fifoSend(t, c, url, "g", "m1")
	fifoSend(t, c, url, "h", "m2")
	attempt := func(in *sqs.ReceiveMessageInput) { in.ReceiveRequestAttemptId = aws.String("try-1") }
	first := qReceive(t, c, url, 1, attempt)
	again := qReceive(t, c, url, 1, attempt)
	if len(first) != 1 || len(again) != 1 || aws.ToString(first[0].ReceiptHandle) != aws.ToString(again[0].ReceiptHandle) {
		t.Fatalf("retry returned %+v, first %+v", again, first)
	}
	s.Advance(6 * time.Minute)
	if m := qReceive(t, c, url, 10, attempt); len(m) != 2 {
		t.Fatalf("after the window: %v", bodies(m))
	}
}
