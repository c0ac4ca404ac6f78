package memaws_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/memaws"
)

// snsFixture is a Server with a topic and helpers to chain queues to it.
type snsFixture struct {
	t     *testing.T
	mem   *memaws.Server
	sns   *sns.Client
	sqs   *sqs.Client
	topic string
}

func newSNSFixture(t *testing.T, fifo bool, optFns ...func(*memaws.Options)) *snsFixture {
	t.Helper()
	mem := memaws.New(optFns...)
	f := &snsFixture{t: t, mem: mem, sns: mem.SNS(), sqs: mem.SQS()}
	name, attrs := "events", map[string]string{}
	if fifo {
		name, attrs["FifoTopic"] = "events.fifo", "true"
	}
	out, err := f.sns.CreateTopic(context.Background(), &sns.CreateTopicInput{Name: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	f.topic = aws.ToString(out.TopicArn)
	return f
}

// queue makes a queue and returns its URL and ARN.
func (f *snsFixture) queue(name string, attrs map[string]string) (string, string) {
	f.t.Helper()
	ctx := context.Background()
	out, err := f.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		f.t.Fatalf("CreateQueue %s: %v", name, err)
	}
	ga, err := f.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl), ga.Attributes["QueueArn"]
}

// subscribe makes a queue and subscribes it with attrs.
func (f *snsFixture) subscribe(name string, qattrs, attrs map[string]string) string {
	f.t.Helper()
	url, arn := f.queue(name, qattrs)
	if _, err := f.sns.Subscribe(context.Background(), &sns.SubscribeInput{
		TopicArn: aws.String(f.topic), Protocol: aws.String("sqs"), Endpoint: aws.String(arn), Attributes: attrs, ReturnSubscriptionArn: true,
	}); err != nil {
		f.t.Fatalf("Subscribe %s: %v", name, err)
	}
	return url
}

// receive takes everything visible on the queue (no waiting: delivery is
// synchronous with Publish).
func (f *snsFixture) receive(url string) []sqstypes.Message {
	f.t.Helper()
	var all []sqstypes.Message
	for {
		out, err := f.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"},
		})
		if err != nil {
			f.t.Fatalf("ReceiveMessage: %v", err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

func str(v string) snstypes.MessageAttributeValue {
	return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func TestSNSPublishValidation(t *testing.T) {
	ctx := context.Background()
	std := newSNSFixture(t, false)
	fifo := newSNSFixture(t, true)
	big := strings.Repeat("x", 262144)
	entries := func(n int) []snstypes.PublishBatchRequestEntry {
		var es []snstypes.PublishBatchRequestEntry
		for i := range n {
			es = append(es, snstypes.PublishBatchRequestEntry{Id: aws.String("e" + string(rune('a'+i))), Message: aws.String("m")})
		}
		return es
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown topic", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(std.topic + "-nope"), Message: aws.String("m")})
			return err
		}, "NotFound"},
		{"malformed topic ARN", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String("events"), Message: aws.String("m")})
			return err
		}, "InvalidParameter"},
		{"empty message", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(std.topic), Message: aws.String("")})
			return err
		}, "InvalidParameter"},
		{"message of 256 KiB plus an attribute", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(std.topic), Message: aws.String(big),
				MessageAttributes: map[string]snstypes.MessageAttributeValue{"a": str("b")}})
			return err
		}, "InvalidParameter"},
		{"unknown attribute type", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(std.topic), Message: aws.String("m"),
				MessageAttributes: map[string]snstypes.MessageAttributeValue{"a": {DataType: aws.String("Text"), StringValue: aws.String("v")}}})
			return err
		}, "ParameterValueInvalid"},
		{"Number that is not a number", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(std.topic), Message: aws.String("m"),
				MessageAttributes: map[string]snstypes.MessageAttributeValue{"a": {DataType: aws.String("Number"), StringValue: aws.String("ten")}}})
			return err
		}, "ParameterValueInvalid"},
		{"String.Array that is not an array", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(std.topic), Message: aws.String("m"),
				MessageAttributes: map[string]snstypes.MessageAttributeValue{"a": {DataType: aws.String("String.Array"), StringValue: aws.String(`{"x":1}`)}}})
			return err
		}, "ParameterValueInvalid"},
		{"empty String value", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(std.topic), Message: aws.String("m"),
				MessageAttributes: map[string]snstypes.MessageAttributeValue{"a": str("")}})
			return err
		}, "ParameterValueInvalid"},
		{"deduplication id on a standard topic", func() error {
			_, err := std.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(std.topic), Message: aws.String("m"), MessageDeduplicationId: aws.String("d")})
			return err
		}, "InvalidParameter"},
		{"FIFO without a group", func() error {
			_, err := fifo.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(fifo.topic), Message: aws.String("m"), MessageDeduplicationId: aws.String("d")})
			return err
		}, "InvalidParameter"},
		{"FIFO without deduplication", func() error {
			_, err := fifo.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(fifo.topic), Message: aws.String("m"), MessageGroupId: aws.String("g")})
			return err
		}, "InvalidParameter"},
		{"empty batch", func() error {
			_, err := std.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(std.topic), PublishBatchRequestEntries: []snstypes.PublishBatchRequestEntry{}})
			return err
		}, "EmptyBatchRequest"},
		{"eleven entries", func() error {
			_, err := std.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(std.topic), PublishBatchRequestEntries: entries(11)})
			return err
		}, "TooManyEntriesInBatchRequest"},
		{"repeated entry id", func() error {
			es := entries(2)
			es[1].Id = es[0].Id
			_, err := std.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(std.topic), PublishBatchRequestEntries: es})
			return err
		}, "BatchEntryIdsNotDistinct"},
		{"invalid entry id", func() error {
			es := entries(1)
			es[0].Id = aws.String("no spaces")
			_, err := std.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(std.topic), PublishBatchRequestEntries: es})
			return err
		}, "InvalidBatchEntryId"},
		{"batch over 256 KiB", func() error {
			es := entries(2)
			es[0].Message, es[1].Message = aws.String(big[:200000]), aws.String(big[:100000])
			_, err := std.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(std.topic), PublishBatchRequestEntries: es})
			return err
		}, "BatchRequestTooLong"},
		{"http subscription", func() error {
			_, err := std.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(std.topic), Protocol: aws.String("https"), Endpoint: aws.String("https://example.com/")})
			return err
		}, "InvalidParameter"},
		{"FIFO queue on a standard topic", func() error {
			_, err := std.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(std.topic), Protocol: aws.String("sqs"), Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:q.fifo")})
			return err
		}, "InvalidParameter"},
		{"invalid filter policy", func() error {
			_, err := std.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(std.topic), Protocol: aws.String("sqs"), Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:q"),
				Attributes: map[string]string{"FilterPolicy": `{"a":"not-an-array"}`}})
			return err
		}, "InvalidParameter"},
		{"topic with different attributes", func() error {
			_, err := std.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("events"), Attributes: map[string]string{"DisplayName": "other"}})
			return err
		}, "InvalidParameter"},
		{"FIFO topic name without .fifo", func() error {
			_, err := std.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("plain"), Attributes: map[string]string{"FifoTopic": "true"}})
			return err
		}, "InvalidParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorCode(tt.call()); got != tt.code {
				t.Errorf("code %q, want %q", got, tt.code)
			}
		})
	}
}

func TestSNSTopicsAndSubscriptions(t *testing.T) {
	ctx := context.Background()
	f := newSNSFixture(t, false)
	again, err := f.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("events")})
	if err != nil || aws.ToString(again.TopicArn) != f.topic {
		t.Fatalf("CreateTopic again: %v, %v", again, err)
	}
	_, qarn := f.queue("q1", nil)
	sub, err := f.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(f.topic), Protocol: aws.String("sqs"), Endpoint: aws.String(qarn),
		Attributes: map[string]string{"RawMessageDelivery": "true", "FilterPolicy": `{"color":["red"]}`}})
	if err != nil {
		t.Fatal(err)
	}
	ga, err := f.sns.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: sub.SubscriptionArn})
	if err != nil {
		t.Fatal(err)
	}
	if ga.Attributes["RawMessageDelivery"] != "true" || ga.Attributes["FilterPolicyScope"] != "MessageAttributes" || ga.Attributes["Endpoint"] != qarn || ga.Attributes["PendingConfirmation"] != "false" {
		t.Errorf("subscription attributes %v", ga.Attributes)
	}
	ta, err := f.sns.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(f.topic)})
	if err != nil || ta.Attributes["SubscriptionsConfirmed"] != "1" || ta.Attributes["TopicArn"] != f.topic {
		t.Errorf("topic attributes %v, %v", ta.Attributes, err)
	}
	lt, err := f.sns.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(f.topic)})
	if err != nil || len(lt.Subscriptions) != 1 || aws.ToString(lt.Subscriptions[0].Protocol) != "sqs" {
		t.Errorf("ListSubscriptionsByTopic %+v, %v", lt, err)
	}
	if _, err := f.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: sub.SubscriptionArn}); err != nil {
		t.Fatal(err)
	}
	ls, _ := f.sns.ListSubscriptions(ctx, &sns.ListSubscriptionsInput{})
	if len(ls.Subscriptions) != 0 {
		t.Errorf("after Unsubscribe: %d subscriptions", len(ls.Subscriptions))
	}
	if _, err := f.sns.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(f.topic)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sns.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(f.topic)}); err != nil {
		t.Errorf("DeleteTopic is idempotent: %v", err)
	}
	tl, _ := f.sns.ListTopics(ctx, &sns.ListTopicsInput{})
	if len(tl.Topics) != 0 {
		t.Errorf("after DeleteTopic: %d topics", len(tl.Topics))
	}
}

func TestSNSRawDelivery(t *testing.T) {
	ctx := context.Background()
	f := newSNSFixture(t, false)
	url := f.subscribe("raw", nil, map[string]string{"RawMessageDelivery": "true"})
	if _, err := f.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(f.topic), Message: aws.String("hello"), Subject: aws.String("ignored when raw"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"s":   str("v"),
			"n":   {DataType: aws.String("Number"), StringValue: aws.String("42")},
			"arr": {DataType: aws.String("String.Array"), StringValue: aws.String(`["a","b"]`)},
			"bin": {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
		}}); err != nil {
		t.Fatal(err)
	}
	msgs := f.receive(url)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	a := m.MessageAttributes
	if aws.ToString(m.Body) != "hello" || aws.ToString(a["s"].StringValue) != "v" || aws.ToString(a["n"].DataType) != "Number" ||
		aws.ToString(a["arr"].DataType) != "String" || aws.ToString(a["arr"].StringValue) != `["a","b"]` ||
		aws.ToString(a["bin"].DataType) != "Binary" || string(a["bin"].BinaryValue) != "\x00\x01\x02" {
		t.Errorf("raw delivery: body %q attrs %+v", aws.ToString(m.Body), a)
	}
}

func TestSNSEnvelope(t *testing.T) {
	ctx := context.Background()
	f := newSNSFixture(t, false)
	url := f.subscribe("env", nil, nil)
	out, err := f.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(f.topic), Message: aws.String(`{"a":"<b>"}`), Subject: aws.String("subj"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"s":   str("v"),
			"bin": {DataType: aws.String("Binary"), BinaryValue: []byte("hi")},
		}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.receive(url)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	if len(msgs[0].MessageAttributes) != 0 {
		t.Errorf("enveloped delivery carries SQS attributes: %v", msgs[0].MessageAttributes)
	}
	body := aws.ToString(msgs[0].Body)
	var env struct {
		Type, MessageId, TopicArn, Subject, Message, Timestamp, SignatureVersion, Signature, SigningCertURL, UnsubscribeURL string
		SequenceNumber                                                                                                      *string
		MessageAttributes                                                                                                   map[string]struct{ Type, Value string }
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("envelope is not JSON: %v\n%s", err, body)
	}
	if env.Type != "Notification" || env.MessageId != aws.ToString(out.MessageId) || env.TopicArn != f.topic || env.Subject != "subj" ||
		env.Message != `{"a":"<b>"}` || env.SignatureVersion != "1" || env.Signature == "" || env.SequenceNumber != nil ||
		!strings.HasPrefix(env.SigningCertURL, "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-") ||
		!strings.Contains(env.UnsubscribeURL, "Action=Unsubscribe&SubscriptionArn="+f.topic+":") {
		t.Errorf("envelope fields:\n%s", body)
	}
	if len(env.Timestamp) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(env.Timestamp, "Z") {
		t.Errorf("Timestamp %q: want RFC 3339 UTC with milliseconds", env.Timestamp)
	}
	if env.MessageAttributes["s"] != (struct{ Type, Value string }{"String", "v"}) || env.MessageAttributes["bin"] != (struct{ Type, Value string }{"Binary", "aGk="}) {
		t.Errorf("envelope attributes %v", env.MessageAttributes)
	}
	if !strings.HasPrefix(body, "{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : ") {
		t.Errorf("layout differs from AWS's:\n%s", body)
	}
}

func TestSNSFilterPolicies(t *testing.T) {
	ctx := context.Background()
	f := newSNSFixture(t, false)
	red := f.subscribe("red", nil, map[string]string{"RawMessageDelivery": "true", "FilterPolicy": `{"color":["red"],"size":[{"numeric":[">",10]}]}`})
	body := f.subscribe("body", nil, map[string]string{"RawMessageDelivery": "true", "FilterPolicyScope": "MessageBody", "FilterPolicy": `{"order":{"total":[{"numeric":[">=",100]}]}}`})
	none := f.subscribe("none", nil, map[string]string{"RawMessageDelivery": "true", "FilterPolicy": `{"color":[{"exists":false}]}`})
	publish := func(msg string, attrs map[string]snstypes.MessageAttributeValue) {
		if _, err := f.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(f.topic), Message: aws.String(msg), MessageAttributes: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	num := func(v string) snstypes.MessageAttributeValue {
		return snstypes.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(v)}
	}
	publish("red-big", map[string]snstypes.MessageAttributeValue{"color": str("red"), "size": num("11")})
	publish("red-small", map[string]snstypes.MessageAttributeValue{"color": str("red"), "size": num("3")})
	publish("blue", map[string]snstypes.MessageAttributeValue{"color": str("blue"), "size": num("11")})
	publish(`{"order":{"total":150}}`, map[string]snstypes.MessageAttributeValue{"other": str("x")})
	publish(`{"order":{"total":50}}`, nil)
	bodies := func(url string) []string {
		var out []string
		for _, m := range f.receive(url) {
			out = append(out, aws.ToString(m.Body))
		}
		return out
	}
	if got := bodies(red); len(got) != 1 || got[0] != "red-big" {
		t.Errorf("attribute scope got %v", got)
	}
	if got := bodies(body); len(got) != 1 || got[0] != `{"order":{"total":150}}` {
		t.Errorf("body scope got %v", got)
	}
	// "exists": false matches a message with other attributes, never one
	// with none.
	if got := bodies(none); len(got) != 1 || got[0] != `{"order":{"total":150}}` {
		t.Errorf("exists:false got %v", got)
	}
}

func TestSNSFIFOTopicToFIFOQueue(t *testing.T) {
	ctx := context.Background()
	f := newSNSFixture(t, true)
	// The queue has no content-based deduplication: SNS passes its own id.
	url := f.subscribe("ordered.fifo", map[string]string{"FifoQueue": "true"}, map[string]string{"RawMessageDelivery": "true"})
	std := f.subscribe("standard", nil, map[string]string{"RawMessageDelivery": "true"})
	var first *sns.PublishOutput
	for i, body := range []string{"a1", "a2", "a1"} {
		out, err := f.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(f.topic), Message: aws.String(body),
			MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String(body)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.SequenceNumber) == "" {
			t.Errorf("publish %d: no SequenceNumber", i)
		}
		if i == 0 {
			first = out
		}
		if i == 2 && aws.ToString(out.MessageId) != aws.ToString(first.MessageId) {
			t.Errorf("duplicate within 5 minutes got a new MessageId")
		}
	}
	msgs := f.receive(url)
	var got []string
	for _, m := range msgs {
		got = append(got, aws.ToString(m.Body))
		if m.Attributes["MessageGroupId"] != "g" || m.Attributes["MessageDeduplicationId"] != aws.ToString(m.Body) {
			t.Errorf("group/dedup not passed through: %v", m.Attributes)
		}
	}
	if strings.Join(got, ",") != "a1" && strings.Join(got, ",") != "a1,a2" {
		t.Errorf("FIFO queue got %v", got)
	}
	// FIFO receives one group message at a time: take the rest.
	for len(got) < 2 {
		for _, m := range msgs {
			_, _ = f.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
		msgs = f.receive(url)
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			got = append(got, aws.ToString(m.Body))
		}
	}
	if strings.Join(got, ",") != "a1,a2" {
		t.Errorf("FIFO queue got %v, want a1,a2", got)
	}
	// The standard queue gets them without group or deduplication id.
	for _, m := range f.receive(std) {
		if m.Attributes["MessageGroupId"] != "" {
			t.Errorf("group id passed to a standard queue")
		}
	}
	f.mem.Advance(6 * 60e9) // past the deduplication window
	if out, err := f.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(f.topic), Message: aws.String("a1"),
		MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("a1")}); err != nil || aws.ToString(out.MessageId) == aws.ToString(first.MessageId) {
		t.Errorf("after 5 minutes the id is new again: %v, %v", out, err)
	}
}

func TestSNSPublishBatchPartialFailure(t *testing.T) {
	ctx := context.Background()
	f := newSNSFixture(t, false, func(o *memaws.Options) {
		o.Faults = memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
			if c.Operation == "PublishBatch" {
				return memaws.Fault{FailEntries: map[int]memaws.EntryError{1: {Code: "InternalError", Message: "try again"}}}
			}
			return memaws.Fault{}
		})
	})
	url := f.subscribe("q", nil, map[string]string{"RawMessageDelivery": "true"})
	out, err := f.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(f.topic), PublishBatchRequestEntries: []snstypes.PublishBatchRequestEntry{
		{Id: aws.String("a"), Message: aws.String("A")}, {Id: aws.String("b"), Message: aws.String("B")}, {Id: aws.String("c"), Message: aws.String("C")},
		{Id: aws.String("d"), Message: aws.String("D"), MessageDeduplicationId: aws.String("x")}, // invalid on a standard topic
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 2 || len(out.Failed) != 2 {
		t.Fatalf("successful %d, failed %d", len(out.Successful), len(out.Failed))
	}
	fails := map[string]snstypes.BatchResultErrorEntry{}
	for _, e := range out.Failed {
		fails[aws.ToString(e.Id)] = e
	}
	if aws.ToString(fails["b"].Code) != "InternalError" || fails["b"].SenderFault || aws.ToString(fails["d"].Code) != "InvalidParameter" || !fails["d"].SenderFault {
		t.Errorf("failures %+v", out.Failed)
	}
	if n := len(f.receive(url)); n != 2 {
		t.Errorf("queue got %d messages, want 2", n)
	}
}

// A Publish whose response is lost took effect; the SDK's retry publishes
// again, and the queue holds both (SNS is at-least-once).
func TestSNSLostResponse(t *testing.T) {
	ctx := context.Background()
	f := newSNSFixture(t, false, func(o *memaws.Options) {
		o.Faults = memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
			return memaws.Fault{LoseResponse: c.Operation == "Publish" && c.Attempt == 1}
		})
	})
	url := f.subscribe("q", nil, map[string]string{"RawMessageDelivery": "true"})
	if _, err := f.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(f.topic), Message: aws.String("m")}); err != nil {
		t.Fatalf("Publish retried: %v", err)
	}
	if n := len(f.receive(url)); n != 2 {
		t.Errorf("queue got %d messages, want 2 (the lost attempt and the retry)", n)
	}
}

func TestSNSQueuePolicy(t *testing.T) {
	ctx := context.Background()
	for _, ignore := range []bool{false, true} {
		f := newSNSFixture(t, false, func(o *memaws.Options) { o.IgnoreQueuePolicies = ignore })
		other := strings.Replace(f.topic, ":events", ":other", 1)
		policy := func(arn string) string {
			return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*","Condition":{"ArnEquals":{"aws:SourceArn":"` + arn + `"}}}]}`
		}
		allowed := f.subscribe("allowed", map[string]string{"Policy": policy(f.topic)}, map[string]string{"RawMessageDelivery": "true"})
		denied := f.subscribe("denied", map[string]string{"Policy": policy(other)}, map[string]string{"RawMessageDelivery": "true"})
		none := f.subscribe("nopolicy", nil, map[string]string{"RawMessageDelivery": "true"})
		// A subscription to a queue that does not exist (yet) is allowed,
		// and publishing to it fails silently.
		if _, err := f.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(f.topic), Protocol: aws.String("sqs"), Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:later")}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sns.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(f.topic), Message: aws.String("m")}); err != nil {
			t.Fatal(err)
		}
		wantDenied := 0
		if ignore {
			wantDenied = 1
		}
		if a, d, n := len(f.receive(allowed)), len(f.receive(denied)), len(f.receive(none)); a != 1 || d != wantDenied || n != 1 {
			t.Errorf("ignore=%v: allowed %d, denied %d, no policy %d", ignore, a, d, n)
		}
	}
}
