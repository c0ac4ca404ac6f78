package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/patterns"
)

// offlineClient is an SQS client that is never called: these tests stop
// before any request.
func offlineClient() *sqs.Client { return sqs.New(sqs.Options{Region: "eu-west-1"}) }

const (
	ownAccount   = "111122223333"
	otherAccount = "444455556666"
	awsHost      = "https://sqs.eu-west-1.amazonaws.com/"
	requestQueue = awsHost + ownAccount + "/requests"
)

func TestCheckReturnAddress(t *testing.T) {
	cases := []struct {
		name  string
		cfg   patterns.ResponderOptions
		addr  string
		allow bool
	}{
		// Default: the request queue's account, names courier-reply-*.
		{"default allows own reply queue", patterns.ResponderOptions{}, awsHost + ownAccount + "/courier-reply-0a1b", true},
		{"default allows LocalStack path style at Endpoint", patterns.ResponderOptions{Endpoint: "http://127.0.0.1:4566"}, "http://127.0.0.1:4566/queue/eu-west-1/" + ownAccount + "/courier-reply-x", true},
		{"default refuses other account", patterns.ResponderOptions{}, awsHost + otherAccount + "/courier-reply-0a1b", false},
		{"default refuses other name", patterns.ResponderOptions{}, awsHost + ownAccount + "/orders", false},
		{"no address", patterns.ResponderOptions{}, "", false},
		{"not a URL", patterns.ResponderOptions{}, "courier-reply-x", false},
		{"no account", patterns.ResponderOptions{}, awsHost + "courier-reply-x", false},
		{"account not numeric", patterns.ResponderOptions{}, awsHost + "acct/courier-reply-x", false},
		{"query", patterns.ResponderOptions{}, awsHost + ownAccount + "/courier-reply-x?QueueUrl=evil", false},
		{"fragment", patterns.ResponderOptions{}, awsHost + ownAccount + "/courier-reply-x#f", false},
		{"user info", patterns.ResponderOptions{}, "https://me@sqs.eu-west-1.amazonaws.com/" + ownAccount + "/courier-reply-x", false},
		{"dot segments", patterns.ResponderOptions{}, awsHost + otherAccount + "/../" + ownAccount + "/courier-reply-x", false},
		{"escapes", patterns.ResponderOptions{}, awsHost + ownAccount + "/courier%2Dreply-x", false},
		{"double slash", patterns.ResponderOptions{}, awsHost + ownAccount + "//courier-reply-x", false},
		{"ftp", patterns.ResponderOptions{}, "ftp://sqs/" + ownAccount + "/courier-reply-x", false},

		// Where: the request queue's host, the region's SQS endpoints, Endpoint.
		{"other host", patterns.ResponderOptions{}, "https://evil.example.com/" + ownAccount + "/courier-reply-x", false},
		{"other host, names only", patterns.ResponderOptions{AllowNames: []string{"courier-reply-*"}}, "https://evil.example.com/" + ownAccount + "/courier-reply-x", false},
		{"http on the AWS host", patterns.ResponderOptions{}, "http://sqs.eu-west-1.amazonaws.com/" + ownAccount + "/courier-reply-x", false},
		{"other region", patterns.ResponderOptions{}, "https://sqs.us-east-1.amazonaws.com/" + ownAccount + "/courier-reply-x", false},
		{"other partition", patterns.ResponderOptions{}, "https://sqs.eu-west-1.amazonaws.com.cn/" + ownAccount + "/courier-reply-x", false},
		{"host with a suffix", patterns.ResponderOptions{}, "https://sqs.eu-west-1.amazonaws.com.evil.example/" + ownAccount + "/courier-reply-x", false},
		{"host with a port", patterns.ResponderOptions{}, "https://sqs.eu-west-1.amazonaws.com:8443/" + ownAccount + "/courier-reply-x", false},
		{"path prefix on the AWS host", patterns.ResponderOptions{}, awsHost + "queue/eu-west-1/" + ownAccount + "/courier-reply-x", false},
		{"FIPS endpoint of the region", patterns.ResponderOptions{}, "https://sqs-fips.eu-west-1.amazonaws.com/" + ownAccount + "/courier-reply-x", true},
		{"legacy host of the region", patterns.ResponderOptions{}, "https://eu-west-1.queue.amazonaws.com/" + ownAccount + "/courier-reply-x", true},
		{"Region sets the region", patterns.ResponderOptions{Region: "us-east-1"}, "https://sqs.us-east-1.amazonaws.com/" + ownAccount + "/courier-reply-x", true},
		{"Region sets the partition", patterns.ResponderOptions{Region: "cn-north-1"}, "https://sqs.cn-north-1.amazonaws.com.cn/" + ownAccount + "/courier-reply-x", true},
		{"no Endpoint: no emulator host", patterns.ResponderOptions{}, "http://127.0.0.1:4566/" + ownAccount + "/courier-reply-x", false},
		{"Endpoint host", patterns.ResponderOptions{Endpoint: "http://127.0.0.1:5000"}, "http://127.0.0.1:5000/" + ownAccount + "/courier-reply-x", true},
		{"Endpoint host, other port", patterns.ResponderOptions{Endpoint: "http://127.0.0.1:5000"}, "http://127.0.0.1:5001/" + ownAccount + "/courier-reply-x", false},
		{"Endpoint host, other scheme", patterns.ResponderOptions{Endpoint: "http://127.0.0.1:5000"}, "https://127.0.0.1:5000/" + ownAccount + "/courier-reply-x", false},
		{"LocalStack path of another region", patterns.ResponderOptions{Endpoint: "http://127.0.0.1:4566"}, "http://127.0.0.1:4566/queue/us-east-1/" + ownAccount + "/courier-reply-x", false},
		{"other host, AllowReplyTo", patterns.ResponderOptions{AllowReplyTo: []string{"https://evil.example.com/" + ownAccount + "/"}}, "https://evil.example.com/" + ownAccount + "/courier-reply-x", false},
		{"other host, AllowReplyFunc", patterns.ResponderOptions{AllowReplyFunc: func(patterns.QueueRef) bool { return true }}, "https://evil.example.com/" + ownAccount + "/x", false},

		// AllowReplyTo: URL prefixes.
		{"prefix match", patterns.ResponderOptions{AllowReplyTo: []string{awsHost + otherAccount + "/replies-"}}, awsHost + otherAccount + "/replies-7", true},
		{"prefix other region", patterns.ResponderOptions{AllowReplyTo: []string{awsHost + otherAccount + "/replies-"}}, "https://sqs.us-east-1.amazonaws.com/" + otherAccount + "/replies-7", false},
		{"prefix exact queue", patterns.ResponderOptions{AllowReplyTo: []string{awsHost + ownAccount + "/given"}}, awsHost + ownAccount + "/given", true},
		{"prefix pins the account", patterns.ResponderOptions{AllowReplyTo: []string{awsHost + otherAccount + "/replies-"}}, awsHost + otherAccount + "/replies-7/" + ownAccount + "/courier-reply-x", false},

		// Rules combine with AND; values within a rule with OR.
		{"account and name", patterns.ResponderOptions{AllowAccounts: []string{ownAccount, otherAccount}, AllowNames: []string{"replies-*"}}, awsHost + otherAccount + "/replies-1", true},
		{"account ok name not", patterns.ResponderOptions{AllowAccounts: []string{otherAccount}, AllowNames: []string{"replies-*"}}, awsHost + otherAccount + "/courier-reply-1", false},
		{"name ok account not", patterns.ResponderOptions{AllowAccounts: []string{otherAccount}, AllowNames: []string{"replies-*"}}, awsHost + ownAccount + "/replies-1", false},
		{"names only: own account", patterns.ResponderOptions{AllowNames: []string{"replies-?"}}, awsHost + ownAccount + "/replies-1", true},
		{"names only: not another account", patterns.ResponderOptions{AllowNames: []string{"replies-?"}}, awsHost + otherAccount + "/replies-1", false},
		{"accounts only: courier-reply-*", patterns.ResponderOptions{AllowAccounts: []string{otherAccount}}, awsHost + otherAccount + "/courier-reply-1", true},
		{"accounts only: not any name", patterns.ResponderOptions{AllowAccounts: []string{otherAccount}}, awsHost + otherAccount + "/orders", false},
		{"pattern is whole-name", patterns.ResponderOptions{AllowNames: []string{"replies-?"}}, awsHost + otherAccount + "/replies-12", false},
		{"func allows", patterns.ResponderOptions{AllowReplyFunc: func(q patterns.QueueRef) bool { return q.Name == "x" }}, awsHost + otherAccount + "/x", true},
		{"func refuses", patterns.ResponderOptions{AllowReplyFunc: func(q patterns.QueueRef) bool { return q.Name == "x" }}, awsHost + otherAccount + "/y", false},
		{"func and account", patterns.ResponderOptions{AllowAccounts: []string{ownAccount}, AllowReplyFunc: func(patterns.QueueRef) bool { return true }}, awsHost + otherAccount + "/x", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := patterns.NewResponder(offlineClient(), requestQueue, with(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			q, err := s.CheckReturnAddress(tc.addr)
			if tc.allow {
				if err != nil || q.URL != tc.addr {
					t.Fatalf("CheckReturnAddress(%q) = %+v, %v; want allowed", tc.addr, q, err)
				}
				return
			}
			if !errors.Is(err, patterns.ErrUnknownReturnAddress) {
				t.Fatalf("CheckReturnAddress(%q) = %+v, %v; want ErrUnknownReturnAddress", tc.addr, q, err)
			}
		})
	}
}

func TestResponderConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  patterns.ResponderOptions
		ok   bool
	}{
		{"defaults", patterns.ResponderOptions{}, true},
		{"bad pattern", patterns.ResponderOptions{AllowNames: []string{"[a-"}}, false},
		{"bad account", patterns.ResponderOptions{AllowAccounts: []string{"12a"}}, false},
		{"empty account", patterns.ResponderOptions{AllowAccounts: []string{""}}, false},
		{"prefix not a URL", patterns.ResponderOptions{AllowReplyTo: []string{"courier-reply-"}}, false},
		{"prefix without an account", patterns.ResponderOptions{AllowReplyTo: []string{awsHost}}, false},
		{"prefix with a partial account", patterns.ResponderOptions{AllowReplyTo: []string{awsHost + "1111"}}, false},
		{"prefix with the account", patterns.ResponderOptions{AllowReplyTo: []string{awsHost + ownAccount + "/"}}, true},
		{"region", patterns.ResponderOptions{Region: "eu-west-1"}, true},
		{"region with a dot", patterns.ResponderOptions{Region: "eu-west-1.evil.com"}, false},
		{"endpoint", patterns.ResponderOptions{Endpoint: "http://127.0.0.1:4566"}, true},
		{"endpoint not a URL", patterns.ResponderOptions{Endpoint: "127.0.0.1:4566"}, false},
		{"bad consumer", patterns.ResponderOptions{ConsumerOptions: patterns.ConsumerOptions{Workers: -1}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, patterns.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if _, err2 := patterns.NewResponder(offlineClient(), requestQueue, with(tc.cfg)); (err2 == nil) != tc.ok {
				t.Fatalf("NewResponder: %v, want ok=%v", err2, tc.ok)
			}
		})
	}
}

func TestRequesterConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  patterns.RequesterOptions
		want error
	}{
		{"defaults", patterns.RequesterOptions{}, nil},
		{"given queue", patterns.RequesterOptions{ReplyQueueURL: awsHost + ownAccount + "/replies"}, nil},
		{"given queue malformed", patterns.RequesterOptions{ReplyQueueURL: "replies"}, patterns.ErrInvalidQueueURL},
		{"prefix with a dot", patterns.RequesterOptions{ReplyQueuePrefix: "reply."}, patterns.ErrInvalidConfig},
		{"prefix fifo", patterns.RequesterOptions{ReplyQueuePrefix: "r.fifo"}, patterns.ErrInvalidConfig},
		{"prefix too long", patterns.RequesterOptions{ReplyQueuePrefix: strings.Repeat("r", 65)}, patterns.ErrInvalidConfig},
		{"prefix longest", patterns.RequesterOptions{ReplyQueuePrefix: strings.Repeat("r", 64)}, nil},
		{"heartbeat too fast", patterns.RequesterOptions{HeartbeatInterval: time.Millisecond}, patterns.ErrInvalidConfig},
		{"negative timeout", patterns.RequesterOptions{Timeout: -time.Second}, patterns.ErrInvalidConfig},
		{"courier tag", patterns.RequesterOptions{Tags: map[string]string{patterns.TagHeartbeat: "0"}}, patterns.ErrInvalidConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
			if _, err2 := patterns.NewRequester(offlineClient(), with(tc.cfg)); (err2 == nil) != (err == nil) {
				t.Fatalf("NewRequester: %v, Validate: %v", err2, err)
			}
		})
	}
	if _, err := patterns.NewRequester(nil); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("NewRequester(nil client): %v, want ErrInvalidConfig", err)
	}
}

// TestRequestBadInput: bad input fails before any request (the client here
// reaches nothing).
func TestRequestBadInput(t *testing.T) {
	r, err := patterns.NewRequester(offlineClient())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Request(ctx, "not a queue", &patterns.Message{Body: []byte("x")}); !errors.Is(err, patterns.ErrInvalidQueueURL) {
		t.Errorf("bad queue URL: %v", err)
	}
	if _, err := r.Request(ctx, requestQueue, nil); !errors.Is(err, patterns.ErrInvalidMessage) {
		t.Errorf("nil message: %v", err)
	}
	if _, err := patterns.Call[chan int, int](ctx, r, requestQueue, make(chan int)); !errors.Is(err, patterns.ErrInvalidMessage) {
		t.Errorf("request that does not encode: %v", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Errorf("Close of a requester never started: %v", err)
	}
	if _, err := r.Request(ctx, requestQueue, &patterns.Message{Body: []byte("x")}); !errors.Is(err, patterns.ErrRequesterClosed) {
		t.Errorf("request after Close: %v", err)
	}
	if _, err := patterns.Sweep(ctx, offlineClient(), "", -time.Second); !errors.Is(err, patterns.ErrInvalidConfig) {
		t.Errorf("Sweep with negative idle: %v", err)
	}
}

func TestRemoteErrorAs(t *testing.T) {
	var err error = fmt.Errorf("checkout: %w", &patterns.RemoteError{Queue: requestQueue, Message: "out of stock"})
	var re *patterns.RemoteError
	if !errors.As(err, &re) || re.Message != "out of stock" {
		t.Fatalf("errors.As: %v", err)
	}
	if !strings.Contains(err.Error(), "out of stock") || !strings.Contains(err.Error(), requestQueue) {
		t.Errorf("message %q names neither the error nor the queue", err)
	}
}

// TestHandleCall runs the typed responder side without SQS.
func TestHandleCall(t *testing.T) {
	h := patterns.HandleCall(func(ctx context.Context, req calcRequest) (calcReply, error) {
		if req.B == 0 {
			return calcReply{}, errors.New("division by zero")
		}
		return calcReply{Quotient: req.A / req.B}, nil
	}, patterns.WithMessage(func(m *patterns.Message) { m.SetAttr("unit", "none") }))
	ctx := context.Background()
	cases := []struct {
		body, reply, err string
	}{
		{`{"A":9,"B":3}`, `{"Quotient":3}`, ""},
		{`{"A":9,"B":0}`, "", "division by zero"},
		{`[1,2]`, "", "does not decode"},
	}
	for _, tc := range cases {
		reply, err := h(ctx, &patterns.Message{Body: []byte(tc.body)})
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.body, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case string(reply.Body) != tc.reply || reply.Attr("unit") != "none":
			t.Errorf("%s: reply %q %v, want %s with the attribute", tc.body, reply.Body, reply.Attributes, tc.reply)
		}
	}
}
