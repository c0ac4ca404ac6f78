package patterns

import (
	"strconv"
	"time"
)

// SQSRecord is an SQS message as it arrives, from ReceiveMessage or from a
// Lambda SQS event: the input of DecodeSQSMessage.
type SQSRecord struct {
	MessageID         string
	ReceiptHandle     string
	Body              string
	Attributes        map[string]string // system attributes (ApproximateReceiveCount, SentTimestamp, MessageGroupId, ...)
	MessageAttributes map[string]Attribute
	QueueURL          string
}

// DecodeSQSMessage turns a received SQS message into a Message: system
// attributes into fields, an SNS notification envelope unwrapped (unless
// raw), courier's headers out of the attributes. On error the Message is
// still returned, as far as it could be read, for logging; a handler must
// not be given it.
func DecodeSQSMessage(r SQSRecord, raw bool) (*Message, error) {
	m := &Message{
		ID:            r.MessageID,
		ReceiptHandle: r.ReceiptHandle,
		Body:          []byte(r.Body),
		Attributes:    r.MessageAttributes,
		QueueURL:      r.QueueURL,
	}
	sys := r.Attributes
	m.ReceiveCount, _ = strconv.Atoi(sys["ApproximateReceiveCount"])
	if v := sys["SentTimestamp"]; v != "" { // not requested: no parse error to allocate
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			m.SentAt = time.UnixMilli(ms)
		}
	}
	m.GroupID = sys["MessageGroupId"]
	m.DeduplicationID = sys["MessageDeduplicationId"]
	m.SequenceNumber = sys["SequenceNumber"]
	m.AWSTraceHeader = sys["AWSTraceHeader"]
	if !raw && looksLikeSNSEnvelope(m.Body) {
		if err := unwrapSNSEnvelope(m); err != nil {
			return m, err
		}
	}
	return m, m.takeCourierAttributes()
}
