package patterns

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Attribute data types SQS and SNS accept. Custom types ("String.x",
// "Number.x", "Binary.x") are accepted too.
const (
	TypeString      = "String"
	TypeNumber      = "Number"
	TypeBinary      = "Binary"
	TypeStringArray = "String.Array" // SNS only
)

// Attribute is one message attribute: its data type and its value. Binary
// attributes carry Binary; every other type carries Value.
type Attribute struct {
	DataType string
	Value    string
	Binary   []byte
}

// StringAttr returns a String attribute.
func StringAttr(v string) Attribute { return Attribute{DataType: TypeString, Value: v} }

// NumberAttr returns a Number attribute; v is written in plain decimal
// ("42", "3.5", "2097152"), never in exponent form, which other clients
// may not read as a number.
func NumberAttr(v float64) Attribute {
	return Attribute{DataType: TypeNumber, Value: strconv.FormatFloat(v, 'f', -1, 64)}
}

// BinaryAttr returns a Binary attribute.
func BinaryAttr(b []byte) Attribute { return Attribute{DataType: TypeBinary, Binary: b} }

// Names of the message attributes courier itself uses. All of courier's
// headers travel packed in one attribute so that users keep as many of the
// ten attributes SQS and SNS allow as possible; trace context uses the W3C
// name so that other tracers can read it.
const (
	HeaderAttribute      = "courier"
	TraceParentAttribute = "traceparent"
)

// Well-known header keys packed into HeaderAttribute.
const (
	headerCorrelationID = "cid"
	headerReturnAddress = "ra"
	headerTraceParent   = "tp" // the traceparent, when it has no room of its own
	headerVersion       = "v"  // the wire format's version; absent means 1
)

// WireVersion is the version of courier's wire format (docs/wire.md) that
// this package writes and reads. Writers of version 1 leave the version
// key out; readers take an absent key as 1 and treat a courier attribute
// of any other version as somebody else's attribute.
const WireVersion = "1"

// Message is what courier sends and what a Handler receives: the body, the
// user's attributes and the headers that patterns need. How it travels on
// SQS and SNS, for peers in other languages, is specified in docs/wire.md
// (https://github.com/courier-aws/courier/blob/main/docs/wire.md). On receive, the
// fields below "set on receive" are filled in; an SNS notification envelope
// (raw delivery off) has already been unwrapped, so a handler sees the same
// Message whichever way it was delivered.
type Message struct {
	Body       []byte
	Attributes map[string]Attribute

	// CorrelationID ties a reply, or any later message, to the message it
	// answers (Correlation Identifier).
	CorrelationID string
	// ReturnAddress is the queue URL a reply should go to (Return Address).
	ReturnAddress string
	// Headers carries further pattern headers (for example "error" on an
	// error reply). Keys and values travel in one message attribute.
	Headers map[string]string
	// TraceParent is a W3C traceparent carried across the queue (see
	// Tracer; TraceState goes with it).
	TraceParent string
	// AWSTraceHeader is the X-Ray trace header SQS gives a message sent
	// from a traced AWS service (set on receive).
	AWSTraceHeader string

	// GroupID is the message group (FIFO queues and topics; the tenant key
	// of fair queues on standard queues).
	GroupID string
	// DeduplicationID deduplicates sends within five minutes on FIFO queues.
	DeduplicationID string
	// Delay postpones delivery (standard queues only; 0 to 15 minutes).
	Delay time.Duration

	// Set on send and on receive.
	ID             string // SQS MessageId (or SNS MessageId when published to a topic)
	SequenceNumber string // FIFO only

	// Set on receive.
	ReceiptHandle string
	ReceiveCount  int
	SentAt        time.Time
	QueueURL      string
	TopicARN      string // set when the message came through SNS with raw delivery off
	// Offloaded is where the body was kept in S3 (claim check): set on a
	// message sent through S3 and on a received one whose pointer was
	// resolved.
	Offloaded *S3Pointer

	claimOwned bool // its S3 object is this queue's alone (ClaimCheck)
}

// Header returns the pattern header key, or "".
func (m *Message) Header(key string) string { return m.Headers[key] }

// SetHeader sets a pattern header.
func (m *Message) SetHeader(key, value string) {
	if m.Headers == nil {
		m.Headers = make(map[string]string)
	}
	m.Headers[key] = value
}

// Attr returns the string value of attribute name, or "".
func (m *Message) Attr(name string) string { return m.Attributes[name].Value }

// SetAttr sets a String attribute.
func (m *Message) SetAttr(name, value string) {
	if m.Attributes == nil {
		m.Attributes = make(map[string]Attribute)
	}
	m.Attributes[name] = StringAttr(value)
}

// encodeHeaders packs the courier headers into one attribute value, or ""
// when there are none. url.Values keeps it compact, readable and
// self-delimiting.
func (m *Message) encodeHeaders() string {
	if m.CorrelationID == "" && m.ReturnAddress == "" && len(m.Headers) == 0 {
		return ""
	}
	v := make(url.Values, len(m.Headers)+2)
	for k, val := range m.Headers {
		v.Set(k, val)
	}
	if m.CorrelationID != "" {
		v.Set(headerCorrelationID, m.CorrelationID)
	}
	if m.ReturnAddress != "" {
		v.Set(headerReturnAddress, m.ReturnAddress)
	}
	return v.Encode()
}

// decodeHeaders is the inverse of encodeHeaders.
func (m *Message) decodeHeaders(s string) error {
	v, err := url.ParseQuery(s)
	if err != nil {
		return fmt.Errorf("%w: attribute %q: %v", ErrMalformedMessage, HeaderAttribute, err)
	}
	for k, vals := range v {
		switch k {
		case headerVersion:
		case headerCorrelationID:
			m.CorrelationID = vals[0]
		case headerReturnAddress:
			m.ReturnAddress = vals[0]
		case headerTraceParent:
			m.TraceParent = vals[0]
		default:
			m.SetHeader(k, vals[0])
		}
	}
	return nil
}

// isCourierHeader tells whether a, an attribute named HeaderAttribute, is
// courier's (docs/wire.md, "Whose attribute is it"): a String of
// key=value pairs, each with an = and a key, of a version this reader
// knows. Anything else is somebody else's attribute that happens to have
// the name, and goes to the handler untouched.
func isCourierHeader(a Attribute) bool {
	if a.DataType != TypeString || a.Value == "" {
		return false
	}
	version := ""
	for pair := range strings.SplitSeq(a.Value, "&") {
		k, val, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return false
		}
		if k == headerVersion && version == "" {
			version = val
			if version == "" {
				return false
			}
		}
	}
	return version == "" || version == WireVersion
}

// wireAttributes returns the attributes as they go on the wire: the user's
// plus courier's own. The traceparent has an attribute of its own, for
// other tracers to read, unless that would pass the ten SQS and SNS
// allow: then it rides in courier's header, or, when the user's attributes
// take all ten, it is left out, so that tracing never makes a message fail.
func (m *Message) wireAttributes() map[string]Attribute {
	h := m.encodeHeaders()
	if h == "" && m.TraceParent == "" {
		return m.Attributes
	}
	if m.TraceParent != "" {
		n := len(m.Attributes) + 1
		if h != "" {
			n++
		}
		if n > MaxAttributes {
			c := *m
			c.TraceParent = ""
			if h != "" || len(m.Attributes) < MaxAttributes {
				c.Headers = maps.Clone(m.Headers)
				c.SetHeader(headerTraceParent, m.TraceParent)
			} // else no room at all: the trace context is left out
			return c.wireAttributes()
		}
	}
	out := make(map[string]Attribute, len(m.Attributes)+2)
	for k, a := range m.Attributes {
		out[k] = a
	}
	if h != "" {
		out[HeaderAttribute] = StringAttr(h)
	}
	if m.TraceParent != "" {
		out[TraceParentAttribute] = StringAttr(m.TraceParent)
	}
	return out
}

// Limits of the services, in bytes.
const (
	// MaxSQSMessageBytes is the largest SQS message, body plus attributes
	// (1 MiB since August 2025); also the largest SendMessageBatch payload.
	MaxSQSMessageBytes = 1 << 20
	// MaxSNSMessageBytes is the largest SNS message, body plus attributes.
	MaxSNSMessageBytes = 256 << 10
	// MaxAttributes is how many message attributes SQS and SNS accept.
	MaxAttributes = 10
	// MaxBatchEntries is how many entries a batch API call takes.
	MaxBatchEntries = 10
)

// wireSize is the size SQS and SNS count against their limits: the body
// plus each attribute's name, data type and value.
func wireSize(body []byte, attrs map[string]Attribute) int {
	n := len(body)
	for k, a := range attrs {
		n += len(k) + len(a.DataType) + len(a.Value) + len(a.Binary)
	}
	return n
}

// validate checks m against the rules SQS or SNS would reject it for, so
// that a bad message fails before any request, naming the problem. limit is
// the destination's size limit.
func (m *Message) validate(limit int) error {
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	if len(m.Body) == 0 {
		return fmt.Errorf("%w: empty body (SQS and SNS require at least one character)", ErrInvalidMessage)
	}
	if err := validBodyChars(m.Body); err != nil {
		return err
	}
	attrs := m.wireAttributes()
	if len(attrs) > MaxAttributes {
		return fmt.Errorf("%w: %d attributes (%d of them courier's), the limit is %d",
			ErrTooManyAttributes, len(attrs), len(attrs)-len(m.Attributes), MaxAttributes)
	}
	for _, k := range sortedKeys(m.Attributes) {
		if err := validAttribute(k, m.Attributes[k]); err != nil {
			return err
		}
	}
	if size := wireSize(m.Body, attrs); size > limit {
		return fmt.Errorf("%w: %d bytes (body %d + attributes %d), the limit is %d",
			ErrMessageTooLarge, size, len(m.Body), size-len(m.Body), limit)
	}
	if m.Delay < 0 || m.Delay > 15*time.Minute {
		return fmt.Errorf("%w: delay %v outside 0..15m", ErrInvalidMessage, m.Delay)
	}
	return nil
}

// validBodyChars enforces the characters SQS allows in a body: #x9 | #xA |
// #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF, as UTF-8.
func validBodyChars(b []byte) error {
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x20 && c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return fmt.Errorf("%w: body is not valid UTF-8 at byte %d (encode binary bodies, e.g. base64)", ErrInvalidMessage, i)
		case r == 0x9 || r == 0xA || r == 0xD:
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE || r == 0xFFFF:
			return fmt.Errorf("%w: body has character %U at byte %d, which SQS does not allow", ErrInvalidMessage, r, i)
		}
		i += size
	}
	return nil
}

func validAttribute(name string, a Attribute) error {
	switch {
	case name == "" || len(name) > 256:
		return fmt.Errorf("%w: attribute name %q must be 1 to 256 characters", ErrInvalidMessage, name)
	case strings.HasPrefix(strings.ToLower(name), "aws.") || strings.HasPrefix(strings.ToLower(name), "amazon."):
		return fmt.Errorf("%w: attribute name %q uses a reserved prefix", ErrInvalidMessage, name)
	case name == HeaderAttribute || name == TraceParentAttribute:
		return fmt.Errorf("%w: attribute name %q is courier's own; use the Message fields", ErrInvalidMessage, name)
	}
	base, _, _ := strings.Cut(a.DataType, ".")
	switch base {
	case TypeString, TypeNumber:
		if a.Value == "" {
			return fmt.Errorf("%w: attribute %q has an empty value", ErrInvalidMessage, name)
		}
	case TypeBinary:
		if len(a.Binary) == 0 {
			return fmt.Errorf("%w: attribute %q has an empty binary value", ErrInvalidMessage, name)
		}
	default:
		return fmt.Errorf("%w: attribute %q has data type %q (want String, Number or Binary)", ErrInvalidMessage, name, a.DataType)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// snsEnvelope is the JSON SNS wraps a notification in when raw message
// delivery is off.
type snsEnvelope struct {
	Type              string                     `json:"Type"`
	MessageID         string                     `json:"MessageId"`
	TopicArn          string                     `json:"TopicArn"`
	Message           *string                    `json:"Message"`
	Timestamp         string                     `json:"Timestamp"`
	SignatureVersion  string                     `json:"SignatureVersion"`
	Signature         string                     `json:"Signature"`
	MessageAttributes map[string]snsEnvelopeAttr `json:"MessageAttributes"`
}

type snsEnvelopeAttr struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// looksLikeSNSEnvelope is a cheap test before a full parse: every SNS
// notification body starts with `{` and names its Type and TopicArn.
func looksLikeSNSEnvelope(body []byte) bool {
	i := 0
	for i < len(body) && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t') {
		i++
	}
	if i == len(body) || body[i] != '{' {
		return false
	}
	s := body[i:]
	return containsBytes(s, `"Type"`) && containsBytes(s, `"TopicArn"`) && containsBytes(s, `"Notification"`)
}

func containsBytes(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

// unwrapSNSEnvelope replaces m's body and attributes with those of the SNS
// notification its body holds. A body that is an SNS notification but cannot
// be read is an error, never passed on as if it were the payload.
func unwrapSNSEnvelope(m *Message) error {
	var env snsEnvelope
	if err := json.Unmarshal(m.Body, &env); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedEnvelope, err)
	}
	if env.Type != "Notification" {
		return fmt.Errorf("%w: Type %q, want Notification", ErrMalformedEnvelope, env.Type)
	}
	if env.Message == nil {
		return fmt.Errorf("%w: no Message field", ErrMalformedEnvelope)
	}
	if env.TopicArn == "" || env.MessageID == "" {
		return fmt.Errorf("%w: missing TopicArn or MessageId", ErrMalformedEnvelope)
	}
	attrs := make(map[string]Attribute, len(env.MessageAttributes))
	for name, a := range env.MessageAttributes {
		switch base, _, _ := strings.Cut(a.Type, "."); base {
		case TypeBinary:
			b, err := base64.StdEncoding.DecodeString(a.Value)
			if err != nil {
				return fmt.Errorf("%w: binary attribute %q is not base64: %v", ErrMalformedEnvelope, name, err)
			}
			attrs[name] = Attribute{DataType: a.Type, Binary: b}
		case TypeString, TypeNumber:
			attrs[name] = Attribute{DataType: a.Type, Value: a.Value}
		default:
			return fmt.Errorf("%w: attribute %q has type %q", ErrMalformedEnvelope, name, a.Type)
		}
	}
	m.Body = []byte(*env.Message)
	m.Attributes = attrs
	m.TopicARN = env.TopicArn
	return nil
}

// ParseSNSEnvelope reads an SNS notification envelope (the body SQS holds
// when raw message delivery is off) into a Message. It fails with
// ErrMalformedEnvelope when body is not a well-formed notification.
func ParseSNSEnvelope(body []byte) (*Message, error) {
	m := &Message{Body: body}
	if err := unwrapSNSEnvelope(m); err != nil {
		return nil, err
	}
	if err := m.takeCourierAttributes(); err != nil {
		return nil, err
	}
	return m, nil
}

// takeCourierAttributes moves courier's own attributes out of Attributes
// into the Message fields.
func (m *Message) takeCourierAttributes() error {
	if a, ok := m.Attributes[HeaderAttribute]; ok && isCourierHeader(a) {
		delete(m.Attributes, HeaderAttribute)
		if err := m.decodeHeaders(a.Value); err != nil {
			return err
		}
	}
	if a, ok := m.Attributes[TraceParentAttribute]; ok {
		delete(m.Attributes, TraceParentAttribute)
		m.TraceParent = a.Value
	}
	return nil
}
