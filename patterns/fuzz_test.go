package patterns_test

import (
	"testing"

	"github.com/courier-aws/courier/patterns"
)

// FuzzParseSNSEnvelope: any body either parses or fails with an error; it
// never panics.
func FuzzParseSNSEnvelope(f *testing.F) {
	f.Add([]byte(`{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"x","MessageAttributes":{"a":{"Type":"String","Value":"v"}}}`))
	f.Add([]byte(`{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"x","MessageAttributes":{"courier":{"Type":"String","Value":"cid=1"}}}`))
	f.Add([]byte(`{"Type":"Notification"`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := patterns.ParseSNSEnvelope(body)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}

// FuzzDecodeAttributes: courier's header attribute and SQS records decode
// or fail cleanly.
func FuzzDecodeAttributes(f *testing.F) {
	f.Add("cid=abc&ra=https%3A%2F%2Fq", "body", "3")
	f.Add("%zz", "", "x")
	f.Add("a=1&a=2&cid=", `{"Type":"Notification","TopicArn":"t"}`, "")
	f.Fuzz(func(t *testing.T, header, body, count string) {
		_, _ = patterns.DecodeSQSMessage(patterns.SQSRecord{
			Body:              body,
			Attributes:        map[string]string{"ApproximateReceiveCount": count},
			MessageAttributes: map[string]patterns.Attribute{"courier": patterns.StringAttr(header)},
		}, false)
	})
}
