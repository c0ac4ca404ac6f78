package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/lambdas/functions"
	"github.com/courier-aws/courier/patterns"
)

// offlineSQS is a real SQS client that is never called: the functions make
// no request at construction.
func offlineSQS() *sqs.Client {
	return sqs.New(sqs.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}})
}

// validEnv is a complete, valid configuration for every function.
var validEnv = map[string]string{
	contract.EnvLogLevel:          "debug",
	contract.EnvQueueURL:          "https://sqs.us-east-1.amazonaws.com/123456789012/requests",
	contract.EnvReplyAllowlist:    "arn:aws:sqs:us-east-1:123456789012:courier-reply-*",
	contract.EnvAggregateTable:    "aggregates",
	contract.EnvResultQueueURL:    "https://sqs.us-east-1.amazonaws.com/123456789012/results",
	contract.EnvExpectedResponses: "3",
	contract.EnvClaimCheckBucket:  "payloads",
	contract.EnvRetryBackoff:      "5s,15m",
}

// A retry backoff that cannot be read, or has no client to apply it with,
// is a cold-start error naming the variable.
func TestAdapterOptionsBackoff(t *testing.T) {
	for _, v := range []string{"5s", "x,1m", "1m,5s", "0s,1m", "1s,13h", "-1s,1m"} {
		getenv := func(k string) string { return map[string]string{contract.EnvRetryBackoff: v}[k] }
		if _, err := functions.AdapterOptions("worker", getenv, functions.Deps{SQS: offlineSQS()}); !errors.Is(err, patterns.ErrInvalidConfig) || !strings.Contains(err.Error(), contract.EnvRetryBackoff) {
			t.Errorf("%s=%q: err = %v, want ErrInvalidConfig naming the variable", contract.EnvRetryBackoff, v, err)
		}
	}
	getenv := func(k string) string { return map[string]string{contract.EnvRetryBackoff: "1s,1m"}[k] }
	if _, err := functions.AdapterOptions("subscriber", getenv, functions.Deps{}); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("no SQS client: err = %v, want ErrInvalidConfig", err)
	}
	opts, err := functions.AdapterOptions("worker", getenv, functions.Deps{SQS: offlineSQS()})
	if err != nil || len(opts) != 1 {
		t.Fatalf("valid backoff: %d options, %v", len(opts), err)
	}
	var o adapter.Options
	opts[0](&o)
	if o.Backoff == nil || o.SQS == nil || o.Backoff(3) > 4*time.Second {
		t.Errorf("options %+v: want Backoff (1s base: at most 4s on the third receive) and SQS", o)
	}
}

// Each function reads exactly the variables lambdas/contract declares for
// it: the contract infra/ sets is the one the code reads.
func TestFunctionsReadTheirContract(t *testing.T) {
	for _, fn := range contract.Functions() {
		t.Run(fn.Name, func(t *testing.T) {
			read := map[string]bool{}
			getenv := func(k string) string { read[k] = true; return validEnv[k] }
			log, err := functions.NewLogger(&bytes.Buffer{}, getenv)
			if err != nil {
				t.Fatal(err)
			}
			d := functions.Deps{SQS: offlineSQS(), Store: newMemoryStore(), Log: log, S3: s3.New(s3.Options{Region: "us-east-1"})}
			h, err := functions.New(fn.Name, getenv, d)
			if err != nil || h == nil {
				t.Fatalf("New(%s): %v", fn.Name, err)
			}
			// What a main package reads: New's settings and the adapter's.
			if _, err := functions.AdapterOptions(fn.Name, getenv, d); err != nil {
				t.Fatalf("AdapterOptions(%s): %v", fn.Name, err)
			}
			got := slices.Sorted(maps.Keys(read))
			want := slices.Sorted(slices.Values(fn.Env))
			if !slices.Equal(got, want) {
				t.Errorf("%s reads %v; lambdas/contract declares %v", fn.Name, got, want)
			}
		})
	}
	if _, err := functions.New("nope", func(string) string { return "" }, functions.Deps{}); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("an unknown function: %v", err)
	}
}

func TestBadConfiguration(t *testing.T) {
	tests := []struct {
		fn, unset, value string // unset: the variable to change; value: its new value ("" unsets it)
	}{
		{"responder", contract.EnvQueueURL, ""},
		{"responder", contract.EnvQueueURL, "not a url"},
		{"responder", contract.EnvReplyAllowlist, "arn:aws:sns:us-east-1:123456789012:topic"},
		{"responder", contract.EnvReplyAllowlist, "courier-reply-*"},
		{"responder", contract.EnvReplyAllowlist, "arn:aws:sqs:us-east-1:123456789012:[bad"},
		{"responder", contract.EnvReplyAllowlist, " , "},
		{"aggregator", contract.EnvAggregateTable, ""},
		{"aggregator", contract.EnvResultQueueURL, ""},
		{"aggregator", contract.EnvResultQueueURL, "sqs://results"},
		{"aggregator", contract.EnvExpectedResponses, ""},
		{"aggregator", contract.EnvExpectedResponses, "0"},
		{"aggregator", contract.EnvExpectedResponses, "three"},
	}
	for _, tt := range tests {
		env := maps.Clone(validEnv)
		env[tt.unset] = tt.value
		_, err := functions.New(tt.fn, func(k string) string { return env[k] }, functions.Deps{SQS: offlineSQS(), Store: newMemoryStore()})
		if !errors.Is(err, patterns.ErrInvalidConfig) && !errors.Is(err, patterns.ErrInvalidQueueURL) {
			t.Errorf("%s with %s=%q: err %v, want a configuration error", tt.fn, tt.unset, tt.value, err)
		}
	}
	// The aggregator without a store: no DynamoDB store until scatter-gather.
	_, err := functions.New("aggregator", func(k string) string { return validEnv[k] }, functions.Deps{SQS: offlineSQS()})
	if !errors.Is(err, functions.ErrNoAggregateStore) {
		t.Errorf("aggregator without a store: %v", err)
	}
	if _, err := functions.NewLogger(&bytes.Buffer{}, func(string) string { return "loud" }); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("log level loud: %v", err)
	}
}

func TestReplyAllowlist(t *testing.T) {
	const list = "https://sqs.eu-west-1.amazonaws.com/111111111111/courier-reply-, arn:aws:sqs:us-east-1:222222222222:courier-reply-*,arn:aws:sqs:*:333333333333:replies"
	allow, err := functions.ParseReplyAllowlist(list)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want bool
	}{
		{"https://sqs.eu-west-1.amazonaws.com/111111111111/courier-reply-abc", true},
		{"https://sqs.eu-west-1.amazonaws.com/111111111111/other", false},
		{"https://sqs.us-east-1.amazonaws.com/222222222222/courier-reply-abc", true},
		{"https://sqs.eu-west-1.amazonaws.com/222222222222/courier-reply-abc", false}, // region
		{"https://sqs.us-east-1.amazonaws.com/999999999999/courier-reply-abc", false}, // account
		{"https://us-east-1.queue.amazonaws.com/222222222222/courier-reply-x", true},
		{"http://127.0.0.1:4566/queue/us-east-1/222222222222/courier-reply-x", true},  // LocalStack path style
		{"http://127.0.0.1:4566/queue/eu-west-1/222222222222/courier-reply-x", false}, // LocalStack, other region
		{"http://127.0.0.1:5000/222222222222/courier-reply-x", true},                  // moto: no region in the URL
		{"https://sqs.ap-south-1.amazonaws.com/333333333333/replies", true},
		{"https://sqs.ap-south-1.amazonaws.com/333333333333/replies-2", false},
	}
	for _, tt := range tests {
		q, err := patterns.ParseQueueURL(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := allow(q); got != tt.want {
			t.Errorf("allow(%s) = %v, want %v", tt.url, got, tt.want)
		}
	}

	// Through the Responder: an allowlist replaces the default (own
	// account, courier-reply-*).
	env := map[string]string{contract.EnvQueueURL: "https://sqs.us-east-1.amazonaws.com/222222222222/requests", contract.EnvReplyAllowlist: list}
	queueURL, o, err := functions.LoadResponderConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	r, err := patterns.NewResponder(offlineSQS(), queueURL, func(ro *patterns.ResponderOptions) { *ro = o })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CheckReturnAddress("https://sqs.us-east-1.amazonaws.com/333333333333/replies"); err != nil {
		t.Errorf("listed return address refused: %v", err)
	}
	// The responder's region bounds every entry: the reply goes through
	// its own regional endpoint.
	if _, err := r.CheckReturnAddress("https://sqs.ap-south-1.amazonaws.com/333333333333/replies"); !errors.Is(err, patterns.ErrUnknownReturnAddress) {
		t.Errorf("listed return address in another region: %v", err)
	}
	if _, err := r.CheckReturnAddress("https://sqs.us-east-1.amazonaws.com/222222222222/mine"); !errors.Is(err, patterns.ErrUnknownReturnAddress) {
		t.Errorf("unlisted return address: %v", err)
	}
}

func TestWorker(t *testing.T) {
	var logs bytes.Buffer
	log, _ := functions.NewLogger(&logs, func(string) string { return "" })
	h := functions.Worker(log)
	tests := []struct {
		body string
		ok   bool
	}{
		{`{"job":1}`, true},
		{` {"job": {"nested": [1, 2]}} `, true},
		{`[1,2]`, false},
		{`"job"`, false},
		{`not json`, false},
		{`{"job":`, false},
	}
	for _, tt := range tests {
		err := h(context.Background(), &patterns.Message{ID: "m-" + tt.body, Body: []byte(tt.body)})
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, patterns.ErrMalformedMessage)) {
			t.Errorf("worker(%s) = %v", tt.body, err)
		}
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, v)
	}
	if len(lines) != 2 || lines[0]["msg"] != "handled" || lines[0]["message_id"] != `m-{"job":1}` || lines[0]["sha256"] == "" {
		t.Errorf("worker log: %v", lines)
	}
}

func TestSubscriberLogsWhatItGot(t *testing.T) {
	var logs bytes.Buffer
	log, _ := functions.NewLogger(&logs, func(string) string { return "" })
	m := &patterns.Message{ID: "m1", TopicARN: "arn:aws:sns:us-east-1:123456789012:t", Body: []byte(strings.Repeat("é", 600))}
	m.SetAttr("color", "orange")
	m.Attributes["thumb"] = patterns.BinaryAttr([]byte{0, 1})
	if err := functions.Subscriber(log)(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Msg        string            `json:"msg"`
		MessageID  string            `json:"message_id"`
		Topic      string            `json:"topic"`
		Attributes map[string]string `json:"attributes"`
		Body       string            `json:"body"`
		Bytes      int               `json:"bytes"`
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line.Msg != "received" || line.MessageID != "m1" || line.Topic != m.TopicARN || line.Attributes["color"] != "orange" ||
		line.Attributes["thumb"] != "AAE=" || line.Bytes != 1200 || len(line.Body) != 1024 {
		t.Errorf("subscriber log: %+v", line)
	}
}

// newMemoryStore is an aggregate store in memory, for tests of the glue.
func newMemoryStore() patterns.AggregateStore {
	s, err := patterns.NewMemoryAggregateStore()
	if err != nil {
		panic(err)
	}
	return s
}
