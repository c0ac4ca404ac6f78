package localrunner_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

const (
	stdURL  = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
	fifoURL = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  localrunner.Config
		ok   bool
	}{
		{"defaults", localrunner.Config{QueueURL: stdURL}, true},
		{"no queue", localrunner.Config{}, false},
		{"batch of 10,000 with a window", localrunner.Config{QueueURL: stdURL, BatchSize: 10000, MaximumBatchingWindow: time.Second}, true},
		{"batch of 10,001", localrunner.Config{QueueURL: stdURL, BatchSize: 10001, MaximumBatchingWindow: time.Second}, false},
		{"batch over 10 without a window", localrunner.Config{QueueURL: stdURL, BatchSize: 11}, false},
		{"batch over 10 with a window under 1s", localrunner.Config{QueueURL: stdURL, BatchSize: 11, MaximumBatchingWindow: 500 * time.Millisecond}, false},
		{"window of 5m", localrunner.Config{QueueURL: stdURL, MaximumBatchingWindow: 5 * time.Minute}, true},
		{"window over 5m", localrunner.Config{QueueURL: stdURL, MaximumBatchingWindow: 5*time.Minute + time.Second}, false},
		{"FIFO batch of 10", localrunner.Config{QueueURL: fifoURL, BatchSize: 10}, true},
		{"FIFO batch over 10", localrunner.Config{QueueURL: fifoURL, BatchSize: 11, MaximumBatchingWindow: time.Second}, false},
		{"FIFO with a window", localrunner.Config{QueueURL: fifoURL, MaximumBatchingWindow: time.Second}, false},
		{"wait 0.5s", localrunner.Config{QueueURL: stdURL, WaitTime: 500 * time.Millisecond}, false},
		{"wait 21s", localrunner.Config{QueueURL: stdURL, WaitTime: 21 * time.Second}, false},
		{"negative concurrency", localrunner.Config{QueueURL: stdURL, MaxConcurrency: -1}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
		if err != nil && !errors.Is(err, patterns.ErrInvalidConfig) && !errors.Is(err, patterns.ErrInvalidQueueURL) {
			t.Errorf("%s: %v is not a configuration error", tt.name, err)
		}
	}
	if _, err := localrunner.New(nil, localrunner.Config{QueueURL: stdURL}); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("nil client: %v", err)
	}
}

// The success and failure conditions of the Lambda documentation
// ("Implementing partial batch responses").
func TestParseResponse(t *testing.T) {
	ids := []string{"a", "b", "c"}
	tests := []struct {
		name   string
		resp   string
		failed []string
		whole  bool // the whole batch fails
	}{
		{"no response", ``, nil, false},
		{"null", `null`, nil, false},
		{"empty object", `{}`, nil, false},
		{"null list", `{"batchItemFailures":null}`, nil, false},
		{"empty list", `{"batchItemFailures":[]}`, nil, false},
		{"two failures", `{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"c"}]}`, []string{"a", "c"}, false},
		{"a failure twice", `{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"b"}]}`, []string{"b"}, false},
		{"other fields", `{"batchItemFailures":[{"itemIdentifier":"b"}],"x":1}`, []string{"b"}, false},
		{"invalid JSON", `{"batchItemFailures":[`, nil, true},
		{"not an object", `"ok"`, nil, true},
		{"list of strings", `{"batchItemFailures":["a"]}`, nil, true},
		{"empty identifier", `{"batchItemFailures":[{"itemIdentifier":""}]}`, nil, true},
		{"null identifier", `{"batchItemFailures":[{"itemIdentifier":null}]}`, nil, true},
		{"bad key name", `{"batchItemFailures":[{"messageId":"a"}]}`, nil, true},
		{"unknown message id", `{"batchItemFailures":[{"itemIdentifier":"z"}]}`, nil, true},
		{"number identifier", `{"batchItemFailures":[{"itemIdentifier":1}]}`, nil, true},
	}
	for _, tt := range tests {
		failed, err := localrunner.ParseResponse([]byte(tt.resp), ids)
		if tt.whole {
			if !errors.Is(err, localrunner.ErrInvalidResponse) {
				t.Errorf("%s: err %v, want ErrInvalidResponse (the whole batch fails)", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := slices.Sorted(maps.Keys(failed)); !slices.Equal(got, tt.failed) {
			t.Errorf("%s: failed %v, want %v", tt.name, got, tt.failed)
		}
	}
}

func TestEventShape(t *testing.T) {
	msgs := []types.Message{{
		MessageId: aws.String("m1"), ReceiptHandle: aws.String("rh1"), Body: aws.String("hello"),
		MD5OfMessageAttributes: aws.String("abc"),
		Attributes:             map[string]string{"ApproximateReceiveCount": "1", "MessageGroupId": "g"},
		MessageAttributes: map[string]types.MessageAttributeValue{
			"color": {DataType: aws.String("String"), StringValue: aws.String("orange")},
			"thumb": {DataType: aws.String("Binary"), BinaryValue: []byte{1, 2}},
		},
	}}
	ev := localrunner.Event(msgs, "arn:aws:sqs:eu-west-1:123456789012:jobs.fifo")
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var wire struct {
		Records []map[string]any `json:"Records"`
	}
	if err := json.Unmarshal(b, &wire); err != nil || len(wire.Records) != 1 {
		t.Fatalf("%s: %v", b, err)
	}
	r := wire.Records[0]
	sum := md5.Sum([]byte("hello"))
	want := map[string]any{
		"messageId": "m1", "receiptHandle": "rh1", "body": "hello", "md5OfBody": hex.EncodeToString(sum[:]),
		"md5OfMessageAttributes": "abc", "eventSource": "aws:sqs",
		"eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:jobs.fifo", "awsRegion": "eu-west-1",
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %v, want %v", k, r[k], v)
		}
	}
	attrs := r["messageAttributes"].(map[string]any)
	color := attrs["color"].(map[string]any)
	if color["stringValue"] != "orange" || color["dataType"] != "String" || color["stringListValues"] == nil || color["binaryListValues"] == nil {
		t.Errorf("string attribute: %v (Lambda sends empty lists, not null)", color)
	}
	if thumb := attrs["thumb"].(map[string]any); thumb["binaryValue"] != "AQI=" {
		t.Errorf("binary attribute: %v", thumb)
	}
	if sys := r["attributes"].(map[string]any); sys["MessageGroupId"] != "g" {
		t.Errorf("system attributes: %v", sys)
	}
}
