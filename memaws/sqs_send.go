package memaws

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// sendSpec is one message to enqueue: a SendMessage, an entry of a
// SendMessageBatch, or a delivery from SNS.
type sendSpec struct {
	body    *string
	delay   *int
	attrs   map[string]attrValue
	sys     map[string]attrValue
	group   *string
	dedupID *string
	sender  string
}

// sendResult is what a send answers.
type sendResult struct {
	MessageId                    string
	MD5OfMessageBody             string
	MD5OfMessageAttributes       string `json:",omitempty"`
	MD5OfMessageSystemAttributes string `json:",omitempty"`
	SequenceNumber               string `json:",omitempty"`
}

// validChars reports whether s has only the characters SQS allows in a
// message: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func validChars(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return false
			}
		}
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// validAttrName follows the API reference: A-Z, a-z, 0-9, _ - . ; at most
// 256 characters; no leading, trailing or doubled period; not starting with
// "AWS." or "Amazon." in any case.
func validAttrName(n string) bool {
	if n == "" || len(n) > 256 || n[0] == '.' || n[len(n)-1] == '.' || strings.Contains(n, "..") {
		return false
	}
	l := strings.ToLower(n)
	if strings.HasPrefix(l, "aws.") || strings.HasPrefix(l, "amazon.") {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validAttrs checks message (or system) attributes and returns the bytes
// they count toward the message size: name, data type and value.
func validAttrs(attrs map[string]attrValue, system bool) (int, *APIError) {
	if len(attrs) > sqsMaxAttributes {
		return 0, errInvalid("Number of message attributes [%d] exceeds the allowed maximum [%d].", len(attrs), sqsMaxAttributes)
	}
	size := 0
	for name, v := range attrs {
		if system {
			if name != "AWSTraceHeader" {
				return 0, errInvalid("Message system attribute name '%s' is invalid.", name)
			}
		} else if !validAttrName(name) {
			return 0, errInvalid("Message (user) attribute name '%s' is invalid.", name)
		}
		base, custom, _ := strings.Cut(v.DataType, ".")
		if v.DataType == "" {
			return 0, errInvalid("The message attribute '%s' must contain non-empty message attribute type.", name)
		}
		if len(v.DataType) > 256 || (base != "String" && base != "Number" && base != "Binary") || (strings.Contains(v.DataType, ".") && custom == "") {
			return 0, errInvalid("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", name)
		}
		if system && v.DataType != "String" {
			return 0, errInvalid("Message system attribute '%s' must be of type String.", name)
		}
		switch base {
		case "Binary":
			if len(v.BinaryValue) == 0 || v.StringValue != nil {
				return 0, errInvalid("The message attribute '%s' with type 'Binary' must use field 'Binary'.", name)
			}
			size += len(v.BinaryValue)
		default:
			if v.StringValue == nil || *v.StringValue == "" || v.BinaryValue != nil {
				return 0, errInvalid("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, base)
			}
			if !validChars(*v.StringValue) {
				return 0, errInvalid("The message attribute '%s' contains invalid characters.", name)
			}
			if base == "Number" {
				if _, err := strconv.ParseFloat(*v.StringValue, 64); err != nil {
					return 0, errInvalid("Can't cast the value of message (user) attribute '%s' to a number.", name)
				}
			}
			size += len(*v.StringValue)
		}
		size += len(name) + len(v.DataType)
	}
	return size, nil
}

// attrsMD5 is SQS's digest of message attributes: for each attribute in
// name order, the name, the data type and the value, each as a 4-byte
// big-endian length and the bytes, with a transport byte (1 string, 2
// binary) before the value.
func attrsMD5(attrs map[string]attrValue) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	put := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, n := range names {
		v := attrs[n]
		put([]byte(n))
		put([]byte(v.DataType))
		if strings.HasPrefix(v.DataType, "Binary") {
			h.Write([]byte{2})
			put(v.BinaryValue)
		} else {
			h.Write([]byte{1})
			put([]byte(*v.StringValue))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// validFIFOID checks a MessageGroupId or MessageDeduplicationId: 1 to 128
// characters, alphanumeric or punctuation.
func validFIFOID(name, v string) *APIError {
	if v == "" || len(v) > 128 {
		return errInvalid("Value %s for parameter %s is invalid. Reason: it must be 1 to 128 characters.", v, name)
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c)) {
			return errInvalid("Value %s for parameter %s is invalid. Reason: it may have only alphanumeric characters and punctuation.", v, name)
		}
	}
	return nil
}

// validateSend checks one message against the queue, as SendMessage does,
// and returns its size (body and attributes).
func validateSend(q *queue, sp *sendSpec) (int, *APIError) {
	if sp.body == nil || *sp.body == "" {
		return 0, errMissing("MessageBody")
	}
	asize, e := validAttrs(sp.attrs, false)
	if e != nil {
		return 0, e
	}
	if _, e := validAttrs(sp.sys, true); e != nil {
		return 0, e
	}
	size := len(*sp.body) + asize
	if size > q.cfg.maxSize {
		return 0, errInvalid("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", q.cfg.maxSize)
	}
	if !validChars(*sp.body) {
		return 0, errCode("InvalidMessageContents", "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
	}
	if sp.delay != nil && (*sp.delay < 0 || *sp.delay > 900) {
		return 0, errInvalid("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.", *sp.delay)
	}
	if sp.group != nil {
		if e := validFIFOID("MessageGroupId", *sp.group); e != nil {
			return 0, e
		}
	}
	if q.fifo {
		if sp.group == nil {
			return 0, errMissing("MessageGroupId")
		}
		if sp.delay != nil && *sp.delay != 0 {
			return 0, errInvalid("Value %d for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.", *sp.delay)
		}
		if sp.dedupID != nil {
			if e := validFIFOID("MessageDeduplicationId", *sp.dedupID); e != nil {
				return 0, e
			}
		} else if !q.cfg.contentDedup {
			return 0, errInvalid("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
		}
	} else if sp.dedupID != nil {
		return 0, errInvalid("The request include parameter MessageDeduplicationId that is not valid for this queue type")
	}
	return size, nil
}

// messageID is a UUID-shaped MessageId made from the Server's sequence, so
// that a seeded run names its messages the same way every time.
func (s *Server) messageIDLocked() string {
	sum := sha256.Sum256([]byte(s.opts.Account + "/" + strconv.FormatUint(s.nextID(), 10)))
	sum[6] = sum[6]&0x0f | 0x40
	sum[8] = sum[8]&0x3f | 0x80
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// sendLocked validates sp and enqueues it, or answers a FIFO duplicate
// with the original's id. s.mu held.
func (s *Server) sendLocked(q *queue, sp *sendSpec) (sendResult, *APIError) {
	size, e := validateSend(q, sp)
	if e != nil {
		return sendResult{}, e
	}
	now := s.nowLocked()
	res := sendResult{MD5OfMessageBody: md5Hex(*sp.body), MD5OfMessageAttributes: attrsMD5(sp.attrs), MD5OfMessageSystemAttributes: attrsMD5(sp.sys)}
	var dedupKey, dedupID string
	if q.fifo {
		if sp.dedupID != nil {
			dedupID = *sp.dedupID
		} else {
			sum := sha256.Sum256([]byte(*sp.body))
			dedupID = hex.EncodeToString(sum[:])
		}
		dedupKey = dedupID
		if q.cfg.dedupScope == "messageGroup" {
			dedupKey = *sp.group + "\x00" + dedupID
		}
		s.expireDedupLocked(q, now)
		if d, ok := q.dedup[dedupKey]; ok && now.Before(d.expires) {
			res.MessageId, res.SequenceNumber = d.messageID, d.seq
			return res, nil
		}
	}
	s.expireLocked(q, now)
	if len(q.live) >= sqsMaxStoredMessages || q.bytes+size > sqsMaxStoredBytes {
		return sendResult{}, errCode("OverLimit", "memaws holds at most %d messages (%d bytes) in one queue.", sqsMaxStoredMessages, sqsMaxStoredBytes)
	}
	m := &message{
		serial: s.nextID(), id: s.messageIDLocked(), body: *sp.body,
		attrs: sp.attrs, sysAttrs: sp.sys,
		md5Body: res.MD5OfMessageBody, md5Attrs: res.MD5OfMessageAttributes, md5Sys: res.MD5OfMessageSystemAttributes,
		size: size, sender: sp.sender, sent: now, enqueued: now,
	}
	delay := q.cfg.delay
	if sp.delay != nil && !q.fifo {
		delay = time.Duration(*sp.delay) * time.Second
	}
	m.visibleAt = now.Add(delay)
	if sp.group != nil {
		m.group = *sp.group
	}
	if q.fifo {
		m.dedupID = dedupID
		m.seq = fmt.Sprintf("%020d", uint64(sqsSequenceNumberBase)+s.nextID())
		q.dedup[dedupKey] = dedupEntry{messageID: m.id, seq: m.seq, expires: now.Add(sqsDedupWindow)}
		q.dedupOrder = append(q.dedupOrder, dedupKey)
	}
	s.addLocked(q, m)
	res.MessageId, res.SequenceNumber = m.id, m.seq
	return res, nil
}

// addLocked appends m to q and wakes long polls. s.mu held.
func (s *Server) addLocked(q *queue, m *message) {
	q.msgs = append(q.msgs, m)
	q.live[m.serial] = m
	q.bytes += m.size
	if end := m.enqueued.Add(q.cfg.retention); end.Before(q.expiryCheck) {
		q.expiryCheck = end
	}
	s.notifyLocked()
}

// expireDedupLocked forgets deduplication ids older than five minutes:
// they were recorded in time order, so the expired ones are a prefix.
func (s *Server) expireDedupLocked(q *queue, now time.Time) {
	i := 0
	for ; i < len(q.dedupOrder); i++ {
		k := q.dedupOrder[i]
		if d, ok := q.dedup[k]; ok && now.Before(d.expires) {
			break
		}
		if d, ok := q.dedup[k]; ok && !now.Before(d.expires) {
			delete(q.dedup, k)
		}
	}
	q.dedupOrder = q.dedupOrder[i:]
}

func (s *Server) sendMessageLocked(q *queue, in *sqsInput) (any, *APIError) {
	return s.sendLocked(q, &sendSpec{
		body: in.MessageBody, delay: in.DelaySeconds, attrs: in.MessageAttributes, sys: in.MessageSystemAttributes,
		group: in.MessageGroupId, dedupID: in.MessageDeduplicationId, sender: sqsSenderID,
	})
}

// batchFailure is one entry of a batch's Failed.
type batchFailure struct {
	Id          string
	Code        string
	Message     string
	SenderFault bool
}

func failure(id string, e *APIError) batchFailure {
	return batchFailure{Id: id, Code: e.Code, Message: e.Message, SenderFault: e.senderFault()}
}

func injected(id string, e EntryError) batchFailure {
	return batchFailure{Id: id, Code: e.Code, Message: e.Message, SenderFault: e.SenderFault}
}

// batchIDs checks a batch's entries as SQS does before any takes effect.
func batchIDs(entries []json.RawMessage) ([]string, *APIError) {
	if len(entries) == 0 {
		return nil, errCode("EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request.")
	}
	if len(entries) > sqsMaxBatchEntries {
		return nil, errCode("TooManyEntriesInBatchRequest", "Maximum number of entries per request are %d. You have sent %d.", sqsMaxBatchEntries, len(entries))
	}
	ids := make([]string, len(entries))
	seen := map[string]bool{}
	for i, raw := range entries {
		var e struct{ Id string }
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, &APIError{Status: 400, Code: "SerializationException", Message: err.Error()}
		}
		if e.Id == "" {
			return nil, errMissing(fmt.Sprintf("Entries.%d.Id", i+1))
		}
		ok := len(e.Id) <= 80
		for _, c := range e.Id {
			ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
		}
		if !ok {
			return nil, errCode("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[e.Id] {
			return nil, errCode("BatchEntryIdsNotDistinct", "Id %s repeated.", e.Id)
		}
		seen[e.Id] = true
		ids[i] = e.Id
	}
	return ids, nil
}

type batchOutput struct {
	Successful []any          `json:"Successful"`
	Failed     []batchFailure `json:"Failed"`
}

func (s *Server) sendMessageBatchLocked(r *request, q *queue, in *sqsInput) (any, *APIError) {
	ids, e := batchIDs(in.Entries)
	if e != nil {
		return nil, e
	}
	type entry struct {
		MessageBody             *string
		DelaySeconds            *int
		MessageAttributes       map[string]attrValue
		MessageSystemAttributes map[string]attrValue
		MessageDeduplicationId  *string
		MessageGroupId          *string
	}
	entries := make([]entry, len(in.Entries))
	total := 0
	for i, raw := range in.Entries {
		if err := json.Unmarshal(raw, &entries[i]); err != nil {
			return nil, &APIError{Status: 400, Code: "SerializationException", Message: err.Error()}
		}
		if b := entries[i].MessageBody; b != nil {
			total += len(*b)
		}
		n, _ := validAttrs(entries[i].MessageAttributes, false)
		total += n
	}
	if total > sqsMaxMessageSize {
		return nil, errCode("BatchRequestTooLong", "Batch requests cannot be longer than %d bytes. You have sent %d bytes.", sqsMaxMessageSize, total)
	}
	out := batchOutput{Successful: []any{}, Failed: []batchFailure{}}
	for i, en := range entries {
		if f, ok := r.entryError(i); ok {
			out.Failed = append(out.Failed, injected(ids[i], f))
			continue
		}
		res, e := s.sendLocked(q, &sendSpec{
			body: en.MessageBody, delay: en.DelaySeconds, attrs: en.MessageAttributes, sys: en.MessageSystemAttributes,
			group: en.MessageGroupId, dedupID: en.MessageDeduplicationId, sender: sqsSenderID,
		})
		if e != nil {
			out.Failed = append(out.Failed, failure(ids[i], e))
			continue
		}
		out.Successful = append(out.Successful, struct {
			Id string
			sendResult
		}{ids[i], res})
	}
	return out, nil
}

// deliverLocked puts a message SNS delivers into the queue with this ARN,
// with SendMessage's validation, deduplication and FIFO rules. s.mu held.
func (s *Server) deliverLocked(queueARN string, d delivery) *APIError {
	q := s.queueByARNLocked(queueARN)
	if q == nil {
		return errNoQueue()
	}
	body := d.Body
	sp := &sendSpec{body: &body, attrs: d.Attributes, sender: sqsSNSSenderID}
	if d.GroupID != "" {
		g := d.GroupID
		sp.group = &g
	}
	if d.DedupID != "" && q.fifo {
		id := d.DedupID
		sp.dedupID = &id
	}
	_, e := s.sendLocked(q, sp)
	return e
}
