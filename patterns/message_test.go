package patterns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/courier-aws/courier/patterns"
)

func TestParseSNSEnvelope(t *testing.T) {
	const topic = "arn:aws:sns:us-east-1:123456789012:orders"
	tests := []struct {
		name    string
		body    string
		want    string
		attrs   map[string]patterns.Attribute
		cid     string
		wantErr error
	}{
		{
			name: "notification with attributes and courier headers",
			body: `{"Type":"Notification","MessageId":"m1","TopicArn":"` + topic + `","Message":"hello",` +
				`"MessageAttributes":{"color":{"Type":"String","Value":"orange"},"n":{"Type":"Number","Value":"42"},` +
				`"b":{"Type":"Binary","Value":"AQI="},"courier":{"Type":"String","Value":"cid=abc&ra=https%3A%2F%2Fq"}}}`,
			want: "hello",
			attrs: map[string]patterns.Attribute{
				"color": {DataType: "String", Value: "orange"},
				"n":     {DataType: "Number", Value: "42"},
				"b":     {DataType: "Binary", Binary: []byte{1, 2}},
			},
			cid: "abc",
		},
		{name: "empty message is a message", body: `{"Type":"Notification","MessageId":"m1","TopicArn":"` + topic + `","Message":""}`, want: ""},
		{name: "not json", body: `{"Type":"Notification"`, wantErr: patterns.ErrMalformedEnvelope},
		{name: "no Message", body: `{"Type":"Notification","MessageId":"m1","TopicArn":"` + topic + `"}`, wantErr: patterns.ErrMalformedEnvelope},
		{name: "wrong type", body: `{"Type":"SubscriptionConfirmation","MessageId":"m1","TopicArn":"` + topic + `","Message":"x"}`, wantErr: patterns.ErrMalformedEnvelope},
		{name: "bad binary", body: `{"Type":"Notification","MessageId":"m1","TopicArn":"` + topic + `","Message":"x","MessageAttributes":{"b":{"Type":"Binary","Value":"%%"}}}`, wantErr: patterns.ErrMalformedEnvelope},
		{name: "unknown attribute type", body: `{"Type":"Notification","MessageId":"m1","TopicArn":"` + topic + `","Message":"x","MessageAttributes":{"b":{"Type":"Blob","Value":"x"}}}`, wantErr: patterns.ErrMalformedEnvelope},
		{name: "bad courier header", body: `{"Type":"Notification","MessageId":"m1","TopicArn":"` + topic + `","Message":"x","MessageAttributes":{"courier":{"Type":"String","Value":"cid=%zz"}}}`, wantErr: patterns.ErrMalformedMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := patterns.ParseSNSEnvelope([]byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Body) != tt.want || m.TopicARN != topic || m.CorrelationID != tt.cid {
				t.Errorf("got body %q topic %q cid %q", m.Body, m.TopicARN, m.CorrelationID)
			}
			for k, want := range tt.attrs {
				got := m.Attributes[k]
				if got.DataType != want.DataType || got.Value != want.Value || string(got.Binary) != string(want.Binary) {
					t.Errorf("attribute %s = %+v, want %+v", k, got, want)
				}
			}
			if _, ok := m.Attributes["courier"]; ok {
				t.Error("courier attribute left among the user's attributes")
			}
		})
	}
}

func TestDecodeSQSMessage(t *testing.T) {
	m, err := patterns.DecodeSQSMessage(patterns.SQSRecord{
		MessageID: "id1", ReceiptHandle: "rh", Body: "payload",
		Attributes: map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000", "MessageGroupId": "g1", "SequenceNumber": "7"},
		MessageAttributes: map[string]patterns.Attribute{
			"courier":     patterns.StringAttr("cid=c1&ra=https%3A%2F%2Fsqs.us-east-1.amazonaws.com%2F1%2Freply&error=boom"),
			"traceparent": patterns.StringAttr("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
			"color":       patterns.StringAttr("red"),
		},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.ReceiveCount != 3 || m.SentAt.UnixMilli() != 1700000000000 || m.GroupID != "g1" || m.SequenceNumber != "7" {
		t.Errorf("system attributes not read: %+v", m)
	}
	if m.CorrelationID != "c1" || m.ReturnAddress != "https://sqs.us-east-1.amazonaws.com/1/reply" || m.Header("error") != "boom" {
		t.Errorf("headers not read: cid %q ra %q error %q", m.CorrelationID, m.ReturnAddress, m.Header("error"))
	}
	if m.TraceParent == "" || len(m.Attributes) != 1 || m.Attr("color") != "red" {
		t.Errorf("attributes: %+v trace %q", m.Attributes, m.TraceParent)
	}
	// Raw mode leaves an envelope-looking body alone.
	env := `{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"inner"}`
	raw, err := patterns.DecodeSQSMessage(patterns.SQSRecord{Body: env}, true)
	if err != nil || string(raw.Body) != env {
		t.Errorf("raw decode changed the body: %q, %v", raw.Body, err)
	}
	unwrapped, err := patterns.DecodeSQSMessage(patterns.SQSRecord{Body: env}, false)
	if err != nil || string(unwrapped.Body) != "inner" {
		t.Errorf("envelope not unwrapped: %q, %v", unwrapped.Body, err)
	}
}

func TestParseQueueURL(t *testing.T) {
	tests := []struct {
		url     string
		name    string
		fifo    bool
		wantErr bool
	}{
		{url: "https://sqs.us-east-1.amazonaws.com/123456789012/orders", name: "orders"},
		{url: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo", name: "orders.fifo", fifo: true},
		{url: "http://127.0.0.1:4566/queue/us-east-1/000000000000/q-1", name: "q-1"},
		{url: "http://localhost:5000/123456789012/my_queue", name: "my_queue"},
		{url: "orders", wantErr: true},
		{url: "ftp://x/1/q", wantErr: true},
		{url: "https://sqs.us-east-1.amazonaws.com/q", wantErr: true},
		{url: "https://sqs.us-east-1.amazonaws.com/1/bad name", wantErr: true},
		{url: "https://sqs.us-east-1.amazonaws.com/1/" + strings.Repeat("a", 81), wantErr: true},
		{url: "https://sqs.us-east-1.amazonaws.com/1/.fifo", wantErr: true},
	}
	for _, tt := range tests {
		q, err := patterns.ParseQueueURL(tt.url)
		if tt.wantErr {
			if !errors.Is(err, patterns.ErrInvalidQueueURL) {
				t.Errorf("%q: err = %v, want ErrInvalidQueueURL", tt.url, err)
			}
			continue
		}
		if err != nil || q.Name != tt.name || q.FIFO() != tt.fifo {
			t.Errorf("%q: got %+v fifo=%v err=%v", tt.url, q, q.FIFO(), err)
		}
	}
}

func TestValidateGroupID(t *testing.T) {
	for _, ok := range []string{"a", "tenant-42", strings.Repeat("x", 128), `!"#$%&'()*+,-./:;<=>?@[\]^_{|}~`} {
		if err := patterns.ValidateGroupID(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 129), "has space", "tab\t", "é"} {
		if err := patterns.ValidateGroupID(bad); !errors.Is(err, patterns.ErrInvalidGroupID) {
			t.Errorf("%q: err = %v, want ErrInvalidGroupID", bad, err)
		}
	}
}

// TestCourierAttributeOwnership: an attribute named courier is courier's
// only in courier's form and a version this reader knows (docs/wire.md,
// "Whose attribute is it"); anything else reaches the handler as an
// ordinary attribute and never fails the message.
func TestCourierAttributeOwnership(t *testing.T) {
	tests := []struct {
		name    string
		attr    patterns.Attribute
		courier bool // read as courier's header
		cid     string
		wantErr error
	}{
		{name: "courier's", attr: patterns.StringAttr("cid=c1&ra=https%3A%2F%2Fsqs.us-east-1.amazonaws.com%2F1%2Fr"), courier: true, cid: "c1"},
		{name: "version 1", attr: patterns.StringAttr("cid=c1&v=1"), courier: true, cid: "c1"},
		{name: "empty value of a key", attr: patterns.StringAttr("error="), courier: true},
		{name: "100%", attr: patterns.StringAttr("100%")},
		{name: "hello", attr: patterns.StringAttr("hello")},
		{name: "pair without =", attr: patterns.StringAttr("cid=c1&hello")},
		{name: "empty key", attr: patterns.StringAttr("=x")},
		{name: "a number", attr: patterns.NumberAttr(100)},
		{name: "binary", attr: patterns.BinaryAttr([]byte("cid=c1"))},
		{name: "a later version", attr: patterns.StringAttr("v=2&cid=c1")},
		{name: "empty version", attr: patterns.StringAttr("v=&cid=c1")},
		{name: "courier's form, broken escape", attr: patterns.StringAttr("cid=%zz"), courier: true, wantErr: patterns.ErrMalformedMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := patterns.DecodeSQSMessage(patterns.SQSRecord{
				MessageID: "m", Body: "x",
				MessageAttributes: map[string]patterns.Attribute{"courier": tt.attr, "color": patterns.StringAttr("red")},
			}, false)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("a message with courier=%q failed: %v", tt.attr.Value, err)
			}
			got, kept := m.Attributes["courier"]
			switch {
			case tt.courier && kept:
				t.Errorf("courier's header left among the attributes: %+v", got)
			case !tt.courier && (!kept || got.Value != tt.attr.Value || string(got.Binary) != string(tt.attr.Binary) || got.DataType != tt.attr.DataType):
				t.Errorf("foreign attribute not passed through: got %+v (kept %v), want %+v", got, kept, tt.attr)
			case !tt.courier && (len(m.Headers) > 0 || m.CorrelationID != ""):
				t.Errorf("foreign attribute turned into headers: %v cid %q", m.Headers, m.CorrelationID)
			case m.CorrelationID != tt.cid || m.Attr("color") != "red":
				t.Errorf("cid %q, attributes %v", m.CorrelationID, m.Attributes)
			}
			if m.Header("v") != "" {
				t.Errorf("the version key became a header")
			}
		})
	}
}

// Numbers go on the wire in plain decimal: the exponent form fmt writes
// for 1e6 and above is not read as an integer by other clients.
func TestNumberAttrPlainDecimal(t *testing.T) {
	for v, want := range map[float64]string{2097152: "2097152", 1e21: "1000000000000000000000", 0.5: "0.5", -42: "-42", 3.25: "3.25"} {
		if got := patterns.NumberAttr(v).Value; got != want {
			t.Errorf("NumberAttr(%v) = %q, want %q", v, got, want)
		}
	}
}
