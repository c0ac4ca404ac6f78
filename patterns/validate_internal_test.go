package patterns

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestMessageValidate(t *testing.T) {
	many := map[string]Attribute{}
	for i := range 10 {
		many[string(rune('a'+i))] = StringAttr("v")
	}
	tests := []struct {
		name string
		m    *Message
		want error
	}{
		{"ok", &Message{Body: []byte("hi")}, nil},
		{"nil", nil, ErrInvalidMessage},
		{"empty body", &Message{}, ErrInvalidMessage},
		{"NUL in body", &Message{Body: []byte("a\x00b")}, ErrInvalidMessage},
		{"invalid utf-8", &Message{Body: []byte{0xff, 0xfe}}, ErrInvalidMessage},
		{"U+FFFF", &Message{Body: []byte("a\uffffb")}, ErrInvalidMessage},
		{"tabs and newlines ok", &Message{Body: []byte("a\tb\nc\rd")}, nil},
		{"emoji ok", &Message{Body: []byte("ok 🎉")}, nil},
		{"exactly the limit", &Message{Body: []byte(strings.Repeat("x", 100))}, nil},
		{"one over the limit", &Message{Body: []byte(strings.Repeat("x", 101))}, ErrMessageTooLarge},
		{"attributes count toward size", &Message{Body: []byte(strings.Repeat("x", 90)), Attributes: map[string]Attribute{"k": StringAttr("0123456789")}}, ErrMessageTooLarge},
		{"ten attributes ok", &Message{Body: []byte("x"), Attributes: many}, nil},
		{"ten attributes plus courier's", &Message{Body: []byte("x"), Attributes: many, CorrelationID: "c"}, ErrTooManyAttributes},
		{"reserved prefix", &Message{Body: []byte("x"), Attributes: map[string]Attribute{"AWS.x": StringAttr("v")}}, ErrInvalidMessage},
		{"courier's own name", &Message{Body: []byte("x"), Attributes: map[string]Attribute{"courier": StringAttr("v")}}, ErrInvalidMessage},
		{"empty value", &Message{Body: []byte("x"), Attributes: map[string]Attribute{"k": StringAttr("")}}, ErrInvalidMessage},
		{"bad type", &Message{Body: []byte("x"), Attributes: map[string]Attribute{"k": {DataType: "Blob", Value: "v"}}}, ErrInvalidMessage},
		{"custom type ok", &Message{Body: []byte("x"), Attributes: map[string]Attribute{"k": {DataType: "Number.int", Value: "1"}}}, nil},
		{"delay too long", &Message{Body: []byte("x"), Delay: 16 * time.Minute}, ErrInvalidMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.validate(100)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("validate = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	in := &Message{CorrelationID: "c&=1", ReturnAddress: "https://sqs.x/1/q?x=y", Headers: map[string]string{"error": "a b", "responder": "r1"}}
	var out Message
	if err := out.decodeHeaders(in.encodeHeaders()); err != nil {
		t.Fatal(err)
	}
	if out.CorrelationID != in.CorrelationID || out.ReturnAddress != in.ReturnAddress || out.Header("error") != "a b" || out.Header("responder") != "r1" {
		t.Errorf("round trip: %+v", out)
	}
	if (&Message{}).encodeHeaders() != "" {
		t.Error("a message without headers must use no attribute")
	}
}

func TestClassifyCode(t *testing.T) {
	for code, want := range map[string]Kind{
		"ThrottlingException": KindThrottled, "ServiceUnavailable": KindRetryable,
		"AWS.SimpleQueueService.NonExistentQueue": KindNotFound, "InvalidParameterValue": KindInvalid,
		"AccessDenied": KindAuth, "Whatever": KindUnknown,
		// DynamoDB and S3, which the stores and the claim check call.
		"ProvisionedThroughputExceededException": KindThrottled, "RequestLimitExceeded": KindThrottled,
		"SlowDown": KindThrottled, "NoSuchKey": KindNotFound, "NoSuchBucket": KindNotFound,
	} {
		if got := ClassifyCode(code); got != want {
			t.Errorf("%s: %v, want %v", code, got, want)
		}
	}
}

// Trace context never makes a message fail: without room for its own
// attribute the traceparent rides in courier's header (and comes back on
// decode), and with no room at all it is left out.
func TestTraceParentAttributeBudget(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, c := range []struct {
		user      int
		cid       bool
		own, kept bool
	}{
		{user: 8, cid: true, own: true, kept: true},
		{user: 9, cid: false, own: true, kept: true},
		{user: 9, cid: true, own: false, kept: true},
		{user: 10, cid: false, own: false, kept: false},
	} {
		m := &Message{Body: []byte("x"), TraceParent: tp}
		if c.cid {
			m.CorrelationID = "c-1"
		}
		for i := range c.user {
			m.SetAttr(fmt.Sprint("a", i), "v")
		}
		if err := m.validate(MaxSQSMessageBytes); err != nil {
			t.Errorf("%d user attributes, cid %v: %v", c.user, c.cid, err)
			continue
		}
		wire := m.wireAttributes()
		_, own := wire[TraceParentAttribute]
		back := &Message{Attributes: wire}
		if err := back.takeCourierAttributes(); err != nil {
			t.Fatal(err)
		}
		if own != c.own || (back.TraceParent == tp) != c.kept || len(wire) > MaxAttributes {
			t.Errorf("%d user attributes, cid %v: own attribute %v, carried %v, %d attributes", c.user, c.cid, own, back.TraceParent == tp, len(wire))
		}
	}
}

// The claim check tells a missing object by what S3 says, not by the
// words of an error's text.
func TestObjectMissing(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&s3types.NoSuchKey{}, true},
		{&smithy.GenericAPIError{Code: "NoSuchBucket"}, true},
		{&smithy.GenericAPIError{Code: "NotFound"}, true},
		{&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 404}}, Err: errors.New("no body")}, true},
		{&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 403}}, Err: errors.New("NotFound in the text")}, false},
		{errors.New("the key NoSuchKey was NotFound"), false},
	} {
		if got := objectMissing(c.err); got != c.want {
			t.Errorf("objectMissing(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
