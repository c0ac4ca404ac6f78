package memaws

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SQS limits, from the SQS developer guide's quotas and the API reference.
const (
	sqsMaxMessageSize     = 1 << 20 // MaximumMessageSize's maximum and default, and a batch's total
	sqsMaxBatchEntries    = 10
	sqsMaxAttributes      = 10
	sqsDedupWindow        = 5 * time.Minute
	sqsMaxVisibility      = 12 * time.Hour
	sqsDeletedQueueReuse  = 60 * time.Second // a deleted queue's name is taken this long
	sqsPurgeInterval      = 60 * time.Second // one PurgeQueue per queue this often
	sqsMaxListQueues      = 1000
	sqsMaxTags            = 50
	sqsSenderID           = "AIDAMEMAWSSENDER00001" // the IAM user id SenderId names
	sqsSNSSenderID        = "AIDAIT2UOQQY3AUEKVGXU" // SNS's, for messages SNS delivers
	sqsSequenceNumberBase = 18_000_000_000_000_000_000
)

// Bounds that keep a Server's memory finite. AWS limits messages in flight
// (120,000 on a queue: ReceiveMessage on a standard queue then fails with
// OverLimit, a FIFO queue returns no more); it does not limit a backlog, a
// Server does: a send to a queue holding sqsMaxStoredMessages messages or
// sqsMaxStoredBytes of them fails with OverLimit.
const (
	sqsMaxInflight       = 120_000
	sqsMaxStoredMessages = 1_000_000
	sqsMaxStoredBytes    = 1 << 30
)

// sqsState is every queue of a Server.
type sqsState struct {
	queues  map[string]*queue    // by "account/name"
	deleted map[string]time.Time // "account/name" -> when it was deleted
	moves   map[string]*moveTask // message move tasks by handle
}

func (st *sqsState) init() {
	st.queues = map[string]*queue{}
	st.deleted = map[string]time.Time{}
	st.moves = map[string]*moveTask{}
}

// queue is one SQS queue.
type queue struct {
	key, name, url, arn string
	fifo                bool
	cfg                 queueConfig
	tags                map[string]string
	created, modified   time.Time
	lastPurge           time.Time

	msgs  []*message          // in send order; deleted ones are nil'ed and compacted
	live  map[uint64]*message // by serial
	dead  int                 // nil entries in msgs
	bytes int                 // sizes of live messages
	dedup map[string]dedupEntry
	// dedupOrder is dedup's keys in the order recorded (so in expiry order).
	dedupOrder []string
	gone       bool // deleted: long polls on it stop
	// expiryCheck: no message expires before it (see expireLocked).
	expiryCheck time.Time
	attempts    map[string]*receiveAttempt // FIFO ReceiveRequestAttemptIds
}

// queueConfig is a queue's settable attributes, parsed.
type queueConfig struct {
	visibility   time.Duration
	delay        time.Duration
	retention    time.Duration
	maxSize      int
	wait         time.Duration
	redrive      *redrivePolicy
	contentDedup bool
	dedupScope   string            // "queue" or "messageGroup" (FIFO)
	throughput   string            // "perQueue" or "perMessageGroupId" (FIFO)
	raw          map[string]string // as set, for GetQueueAttributes
}

type redrivePolicy struct {
	DeadLetterTargetArn string
	MaxReceiveCount     int
}

type dedupEntry struct {
	messageID, seq string
	expires        time.Time
}

// message is one message in a queue.
type message struct {
	serial                    uint64 // the Server's, unique across copies
	id                        string // MessageId; copies of a duplicated delivery share it
	body                      string
	attrs                     map[string]attrValue
	sysAttrs                  map[string]attrValue // AWSTraceHeader
	md5Body, md5Attrs, md5Sys string
	size                      int // body and attributes, as MaximumMessageSize counts them
	sender                    string

	sent      time.Time // SentTimestamp
	enqueued  time.Time // retention counts from here
	visibleAt time.Time // end of the delay or of the visibility timeout
	received  time.Time // ApproximateFirstReceiveTimestamp; zero until received
	recvCount int
	handle    string    // the latest receipt handle; "" until received
	inflightT time.Time // when the latest receive happened (12 h visibility bound)

	group, dedupID, seq string // FIFO (group also on fair standard queues)
	dlqSource           string // DeadLetterQueueSourceArn
	deleted             bool
	visChanged          bool // ChangeMessageVisibility since the latest receive
}

func (m *message) inflight(now time.Time) bool {
	return m.recvCount > 0 && m.handle != "" && now.Before(m.visibleAt)
}

// sqsInput is every request member the SQS operations memaws serves take.
type sqsInput struct {
	QueueName                    string
	QueueUrl                     string
	QueueOwnerAWSAccountId       string
	QueueNamePrefix              string
	NextToken                    string
	MaxResults                   *int
	Attributes                   map[string]string
	AttributeNames               []string
	MessageSystemAttributeNames  []string
	MessageAttributeNames        []string
	Tags                         map[string]string
	TagKeys                      []string
	MessageBody                  *string
	DelaySeconds                 *int
	MessageAttributes            map[string]attrValue
	MessageSystemAttributes      map[string]attrValue
	MessageDeduplicationId       *string
	MessageGroupId               *string
	MaxNumberOfMessages          *int
	VisibilityTimeout            *int
	WaitTimeSeconds              *int
	ReceiveRequestAttemptId      string
	ReceiptHandle                *string
	Entries                      []json.RawMessage
	SourceArn                    string
	DestinationArn               string
	MaxNumberOfMessagesPerSecond *int
	TaskHandle                   string
}

func errInvalid(format string, args ...any) *APIError {
	return &APIError{Status: 400, Code: "InvalidParameterValue", Message: fmt.Sprintf(format, args...)}
}

func errMissing(param string) *APIError {
	return &APIError{Status: 400, Code: "MissingParameter", Message: "The request must contain the parameter " + param + "."}
}

func errCode(code, format string, args ...any) *APIError {
	return &APIError{Status: 400, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errNoQueue() *APIError {
	return errCode("QueueDoesNotExist", "The specified queue does not exist.")
}

// serveSQS answers one SQS JSON 1.0 request.
func (s *Server) serveSQS(r *request, op string) *http.Response {
	var in sqsInput
	if len(r.body) > 0 {
		if err := json.Unmarshal(r.body, &in); err != nil {
			return writeError("sqs", op, &APIError{Status: 400, Code: "SerializationException", Message: err.Error()})
		}
	}
	if op == "ReceiveMessage" {
		out, e := s.receiveMessage(r, &in)
		if e != nil {
			if e == errContextDone {
				return nil
			}
			return writeError("sqs", op, e)
		}
		return jsonResponse(out)
	}
	s.mu.Lock()
	out, e := s.sqsOpLocked(r, op, &in)
	s.mu.Unlock()
	if e != nil {
		return writeError("sqs", op, e)
	}
	return jsonResponse(out)
}

func (s *Server) sqsOpLocked(r *request, op string, in *sqsInput) (any, *APIError) {
	switch op {
	case "CreateQueue":
		return s.createQueueLocked(in)
	case "GetQueueUrl":
		return s.getQueueURLLocked(in)
	case "ListQueues":
		return s.listQueuesLocked(in)
	case "StartMessageMoveTask":
		return s.startMoveTaskLocked(in)
	case "ListMessageMoveTasks":
		return s.listMoveTasksLocked(in)
	case "CancelMessageMoveTask":
		return s.cancelMoveTaskLocked(in)
	}
	q, e := s.queueByURLLocked(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	switch op {
	case "DeleteQueue":
		return s.deleteQueueLocked(q)
	case "GetQueueAttributes":
		return s.getQueueAttributesLocked(q, in)
	case "SetQueueAttributes":
		return s.setQueueAttributesLocked(q, in)
	case "TagQueue":
		return tagQueue(q, in)
	case "UntagQueue":
		for _, k := range in.TagKeys {
			delete(q.tags, k)
		}
		return struct{}{}, nil
	case "ListQueueTags":
		return map[string]any{"Tags": q.tags}, nil
	case "PurgeQueue":
		return s.purgeQueueLocked(q)
	case "ListDeadLetterSourceQueues":
		return s.listDeadLetterSourcesLocked(q, in)
	case "SendMessage":
		return s.sendMessageLocked(q, in)
	case "SendMessageBatch":
		return s.sendMessageBatchLocked(r, q, in)
	case "DeleteMessage":
		return s.deleteMessageLocked(q, in)
	case "DeleteMessageBatch":
		return s.deleteMessageBatchLocked(r, q, in)
	case "ChangeMessageVisibility":
		return s.changeVisibilityLocked(q, in)
	case "ChangeMessageVisibilityBatch":
		return s.changeVisibilityBatchLocked(r, q, in)
	}
	return nil, errCode("UnsupportedOperation", "%s is not supported by memaws", op)
}

// queueKey is the account/name a queue URL's path names (AWS routes by
// path, so the host does not matter).
func queueKey(u string) (string, bool) {
	pu, err := url.Parse(u)
	if err != nil || u == "" {
		return "", false
	}
	parts := strings.Split(strings.Trim(pu.Path, "/"), "/")
	if len(parts) < 2 || parts[len(parts)-1] == "" {
		return "", false
	}
	return parts[len(parts)-2] + "/" + parts[len(parts)-1], true
}

func (s *Server) queueByURLLocked(u string) (*queue, *APIError) {
	if u == "" {
		return nil, errMissing("QueueUrl")
	}
	key, ok := queueKey(u)
	if !ok {
		return nil, errCode("InvalidAddress", "The address %s is not valid for this endpoint.", u)
	}
	q := s.sqs.queues[key]
	if q == nil {
		return nil, errNoQueue()
	}
	return q, nil
}

// queueByARNLocked finds a queue of this Server by its ARN.
func (s *Server) queueByARNLocked(arn string) *queue {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" || p[3] != s.opts.Region {
		return nil
	}
	return s.sqs.queues[p[4]+"/"+p[5]]
}

func validQueueName(name string) bool {
	base := strings.TrimSuffix(name, ".fifo")
	if len(name) > 80 || base == "" {
		return false
	}
	for _, c := range base {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Server) createQueueLocked(in *sqsInput) (any, *APIError) {
	name := in.QueueName
	if name == "" {
		return nil, errMissing("QueueName")
	}
	fifo := in.Attributes["FifoQueue"] == "true"
	if !validQueueName(name) || fifo != strings.HasSuffix(name, ".fifo") {
		return nil, errInvalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length (a FIFO queue's name ends in .fifo and it has the attribute FifoQueue=true)")
	}
	if v, ok := in.Attributes["FifoQueue"]; ok && v != "true" && v != "false" {
		return nil, errCode("InvalidAttributeValue", "Invalid value for the parameter FifoQueue.")
	}
	key := s.opts.Account + "/" + name
	now := s.nowLocked()
	if q := s.sqs.queues[key]; q != nil {
		// Idempotent when every attribute asked for has the value the queue has.
		cfg, e := s.parseQueueAttrsLocked(q.fifo, q.cfg, in.Attributes, true, q)
		if e != nil {
			return nil, e
		}
		asked := &queue{cfg: cfg, fifo: q.fifo}
		for k := range in.Attributes {
			if k != "FifoQueue" && attrValueOf(q, k) != attrValueOf(asked, k) {
				return nil, errCode("QueueNameExists", "A queue already exists with the same name and a different value for attribute %s", k)
			}
		}
		return map[string]string{"QueueUrl": q.url}, nil
	}
	if t, ok := s.sqs.deleted[key]; ok && now.Sub(t) < sqsDeletedQueueReuse {
		return nil, errCode("QueueDeletedRecently", "You must wait 60 seconds after deleting a queue before you can create another queue with the same name.")
	}
	cfg, e := s.parseQueueAttrsLocked(fifo, defaultQueueConfig(), in.Attributes, true, nil)
	if e != nil {
		return nil, e
	}
	if len(in.Tags) > sqsMaxTags {
		return nil, errInvalid("Too many tags: a queue has at most %d.", sqsMaxTags)
	}
	q := &queue{
		key: key, name: name, fifo: fifo, cfg: cfg,
		url:     Endpoint + "/" + s.opts.Account + "/" + name,
		arn:     "arn:aws:sqs:" + s.opts.Region + ":" + s.opts.Account + ":" + name,
		tags:    map[string]string{},
		created: now, modified: now,
		live:  map[uint64]*message{},
		dedup: map[string]dedupEntry{},
	}
	for k, v := range in.Tags {
		q.tags[k] = v
	}
	s.sqs.queues[key] = q
	delete(s.sqs.deleted, key)
	return map[string]string{"QueueUrl": q.url}, nil
}

func defaultQueueConfig() queueConfig {
	return queueConfig{
		visibility: 30 * time.Second,
		retention:  4 * 24 * time.Hour,
		maxSize:    sqsMaxMessageSize,
		dedupScope: "queue",
		throughput: "perQueue",
		raw:        map[string]string{},
	}
}

// parseQueueAttrsLocked applies attrs to cfg (a copy): AWS's names, ranges
// and codes. creating: FifoQueue may be given.
func (s *Server) parseQueueAttrsLocked(fifo bool, cfg queueConfig, attrs map[string]string, creating bool, self *queue) (queueConfig, *APIError) {
	raw := make(map[string]string, len(cfg.raw)+len(attrs))
	for k, v := range cfg.raw {
		raw[k] = v
	}
	cfg.raw = raw
	seconds := func(name, v string, lo, hi int) (time.Duration, *APIError) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, errCode("InvalidAttributeValue", "Invalid value for the parameter %s.", name)
		}
		return time.Duration(n) * time.Second, nil
	}
	var e *APIError
	for k, v := range attrs {
		switch k {
		case "VisibilityTimeout":
			cfg.visibility, e = seconds(k, v, 0, 43200)
		case "DelaySeconds":
			cfg.delay, e = seconds(k, v, 0, 900)
		case "MessageRetentionPeriod":
			cfg.retention, e = seconds(k, v, 60, 1209600)
		case "ReceiveMessageWaitTimeSeconds":
			cfg.wait, e = seconds(k, v, 0, 20)
		case "MaximumMessageSize":
			var d time.Duration
			d, e = seconds(k, v, 1024, sqsMaxMessageSize)
			cfg.maxSize = int(d / time.Second)
		case "RedrivePolicy":
			if v == "" {
				cfg.redrive = nil
				delete(raw, k)
				continue
			}
			cfg.redrive, e = s.parseRedriveLocked(v, fifo, self)
			if e == nil {
				b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": cfg.redrive.DeadLetterTargetArn, "maxReceiveCount": cfg.redrive.MaxReceiveCount})
				v = string(b)
			}
		case "Policy", "RedriveAllowPolicy":
			if v != "" && !json.Valid([]byte(v)) {
				e = errCode("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
			}
		case "FifoQueue":
			if !creating {
				e = errCode("InvalidAttributeName", "Unknown Attribute FifoQueue.")
			}
			continue
		case "ContentBasedDeduplication":
			if !fifo {
				e = errCode("InvalidAttributeName", "Unknown Attribute %s.", k)
			} else if v != "true" && v != "false" {
				e = errCode("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
			}
			cfg.contentDedup = v == "true"
		case "DeduplicationScope":
			if !fifo {
				e = errCode("InvalidAttributeName", "Unknown Attribute %s.", k)
			} else if v != "queue" && v != "messageGroup" {
				e = errCode("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
			}
			cfg.dedupScope = v
		case "FifoThroughputLimit":
			if !fifo {
				e = errCode("InvalidAttributeName", "Unknown Attribute %s.", k)
			} else if v != "perQueue" && v != "perMessageGroupId" {
				e = errCode("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
			}
			cfg.throughput = v
		case "KmsMasterKeyId":
		case "KmsDataKeyReusePeriodSeconds":
			_, e = seconds(k, v, 60, 86400)
		case "SqsManagedSseEnabled":
			if v != "true" && v != "false" {
				e = errCode("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
			}
		default:
			e = errCode("InvalidAttributeName", "Unknown Attribute %s.", k)
		}
		if e != nil {
			return cfg, e
		}
		raw[k] = v
	}
	if cfg.throughput == "perMessageGroupId" && cfg.dedupScope != "messageGroup" {
		return cfg, errInvalid("FifoThroughputLimit perMessageGroupId requires DeduplicationScope messageGroup.")
	}
	return cfg, nil
}

func (s *Server) parseRedriveLocked(v string, fifo bool, self *queue) (*redrivePolicy, *APIError) {
	var p struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	bad := func(why string) *APIError {
		return errCode("InvalidAttributeValue", "Value %s for parameter RedrivePolicy is invalid. Reason: %s", v, why)
	}
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return nil, bad("Redrive policy is not a valid JSON map.")
	}
	n, err := strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
	if err != nil || n < 1 || n > 1000 {
		return nil, bad("Invalid value for maxReceiveCount: must be an integer from 1 to 1000.")
	}
	dlq := s.queueByARNLocked(p.DeadLetterTargetArn)
	if dlq == nil {
		return nil, bad("Dead letter target does not exist.")
	}
	if dlq.fifo != fifo {
		return nil, bad("Dead-letter queue must be same type of queue as the source.")
	}
	if self != nil && dlq == self {
		return nil, bad("Dead-letter target cannot be the queue itself.")
	}
	return &redrivePolicy{DeadLetterTargetArn: p.DeadLetterTargetArn, MaxReceiveCount: n}, nil
}

func (s *Server) getQueueURLLocked(in *sqsInput) (any, *APIError) {
	if in.QueueName == "" {
		return nil, errMissing("QueueName")
	}
	acct := in.QueueOwnerAWSAccountId
	if acct == "" {
		acct = s.opts.Account
	}
	q := s.sqs.queues[acct+"/"+in.QueueName]
	if q == nil {
		return nil, errNoQueue()
	}
	return map[string]string{"QueueUrl": q.url}, nil
}

func (s *Server) deleteQueueLocked(q *queue) (any, *APIError) {
	delete(s.sqs.queues, q.key)
	s.sqs.deleted[q.key] = s.nowLocked()
	q.gone = true
	s.notifyLocked()
	return struct{}{}, nil
}

// page returns a page of sorted items: the NextToken is the index to resume at.
func page(items []string, token string, max *int) ([]string, string, *APIError) {
	start := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > len(items) {
			return nil, "", errInvalid("Invalid NextToken.")
		}
		start = n
	}
	limit := sqsMaxListQueues
	if max != nil {
		if *max < 1 || *max > sqsMaxListQueues {
			return nil, "", errInvalid("Value %d for parameter MaxResults is invalid. Reason: must be between 1 and 1000.", *max)
		}
		limit = *max
	}
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) && max != nil {
		next = strconv.Itoa(end)
	}
	return items[start:end], next, nil
}

func (s *Server) listQueuesLocked(in *sqsInput) (any, *APIError) {
	var urls []string
	for _, q := range s.sqs.queues {
		if strings.HasPrefix(q.key, s.opts.Account+"/") && strings.HasPrefix(q.name, in.QueueNamePrefix) {
			urls = append(urls, q.url)
		}
	}
	sort.Strings(urls)
	pg, next, e := page(urls, in.NextToken, in.MaxResults)
	if e != nil {
		return nil, e
	}
	out := map[string]any{}
	if len(pg) > 0 {
		out["QueueUrls"] = pg
	}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

func (s *Server) listDeadLetterSourcesLocked(q *queue, in *sqsInput) (any, *APIError) {
	urls := []string{}
	for _, src := range s.sqs.queues {
		if src.cfg.redrive != nil && src.cfg.redrive.DeadLetterTargetArn == q.arn {
			urls = append(urls, src.url)
		}
	}
	sort.Strings(urls)
	pg, next, e := page(urls, in.NextToken, in.MaxResults)
	if e != nil {
		return nil, e
	}
	out := map[string]any{"queueUrls": pg}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

func tagQueue(q *queue, in *sqsInput) (any, *APIError) {
	n := len(q.tags)
	for k := range in.Tags {
		if _, ok := q.tags[k]; !ok {
			n++
		}
		if len(k) < 1 || len(k) > 128 || len(in.Tags[k]) > 256 {
			return nil, errInvalid("Tag keys are 1 to 128 characters, values at most 256.")
		}
	}
	if n > sqsMaxTags {
		return nil, errInvalid("Too many tags: a queue has at most %d.", sqsMaxTags)
	}
	for k, v := range in.Tags {
		q.tags[k] = v
	}
	return struct{}{}, nil
}

func (s *Server) purgeQueueLocked(q *queue) (any, *APIError) {
	now := s.nowLocked()
	if !q.lastPurge.IsZero() && now.Sub(q.lastPurge) < sqsPurgeInterval {
		return nil, errCode("PurgeQueueInProgress", "Only one PurgeQueue operation on %s is allowed every 60 seconds.", q.name)
	}
	q.lastPurge = now
	q.msgs, q.live, q.dead, q.bytes = nil, map[uint64]*message{}, 0, 0
	s.notifyLocked()
	return struct{}{}, nil
}

// queueAttrNames are the attributes GetQueueAttributes "All" returns, in order.
var queueAttrNames = []string{
	"QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
	"ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp",
	"VisibilityTimeout", "MaximumMessageSize", "MessageRetentionPeriod", "DelaySeconds",
	"ReceiveMessageWaitTimeSeconds", "Policy", "RedrivePolicy", "RedriveAllowPolicy",
	"KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
	"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
}

var fifoOnlyAttrs = map[string]bool{"FifoQueue": true, "ContentBasedDeduplication": true, "DeduplicationScope": true, "FifoThroughputLimit": true}

// attrValueOf is one queue attribute as GetQueueAttributes returns it; ""
// for one the queue does not have.
func attrValueOf(q *queue, name string) string {
	secs := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	switch name {
	case "QueueArn":
		return q.arn
	case "CreatedTimestamp":
		return strconv.FormatInt(q.created.Unix(), 10)
	case "LastModifiedTimestamp":
		return strconv.FormatInt(q.modified.Unix(), 10)
	case "VisibilityTimeout":
		return secs(q.cfg.visibility)
	case "MaximumMessageSize":
		return strconv.Itoa(q.cfg.maxSize)
	case "MessageRetentionPeriod":
		return secs(q.cfg.retention)
	case "DelaySeconds":
		return secs(q.cfg.delay)
	case "ReceiveMessageWaitTimeSeconds":
		return secs(q.cfg.wait)
	case "SqsManagedSseEnabled":
		if v, ok := q.cfg.raw[name]; ok {
			return v
		}
		if q.cfg.raw["KmsMasterKeyId"] != "" {
			return "false"
		}
		return "true"
	}
	if fifoOnlyAttrs[name] {
		if !q.fifo {
			return ""
		}
		switch name {
		case "FifoQueue":
			return "true"
		case "ContentBasedDeduplication":
			return strconv.FormatBool(q.cfg.contentDedup)
		case "DeduplicationScope":
			return q.cfg.dedupScope
		case "FifoThroughputLimit":
			return q.cfg.throughput
		}
	}
	if name == "KmsDataKeyReusePeriodSeconds" && q.cfg.raw["KmsMasterKeyId"] != "" && q.cfg.raw[name] == "" {
		return "300"
	}
	return q.cfg.raw[name]
}

func (s *Server) getQueueAttributesLocked(q *queue, in *sqsInput) (any, *APIError) {
	now := s.nowLocked()
	want := map[string]bool{}
	for _, n := range in.AttributeNames {
		if n == "All" {
			for _, a := range queueAttrNames {
				want[a] = true
			}
			continue
		}
		known := false
		for _, a := range queueAttrNames {
			known = known || a == n
		}
		if !known {
			return nil, errCode("InvalidAttributeName", "Unknown Attribute %s.", n)
		}
		want[n] = true
	}
	attrs := map[string]string{}
	if want["ApproximateNumberOfMessages"] || want["ApproximateNumberOfMessagesNotVisible"] || want["ApproximateNumberOfMessagesDelayed"] {
		s.expireLocked(q, now)
		var visible, inflight, delayed int
		for _, m := range q.msgs {
			switch {
			case m.deleted:
			case !now.Before(m.visibleAt):
				visible++
			case m.inflight(now):
				inflight++
			default:
				delayed++
			}
		}
		count := map[string]int{"ApproximateNumberOfMessages": visible, "ApproximateNumberOfMessagesNotVisible": inflight, "ApproximateNumberOfMessagesDelayed": delayed}
		for k, v := range count {
			if want[k] {
				attrs[k] = strconv.Itoa(v)
			}
		}
	}
	for k := range want {
		if _, done := attrs[k]; done {
			continue
		}
		if v := attrValueOf(q, k); v != "" {
			attrs[k] = v
		}
	}
	out := map[string]any{}
	if len(attrs) > 0 {
		out["Attributes"] = attrs
	}
	return out, nil
}

func (s *Server) setQueueAttributesLocked(q *queue, in *sqsInput) (any, *APIError) {
	if len(in.Attributes) == 0 {
		return nil, errMissing("Attribute.Name")
	}
	cfg, e := s.parseQueueAttrsLocked(q.fifo, q.cfg, in.Attributes, false, q)
	if e != nil {
		return nil, e
	}
	q.cfg = cfg
	q.modified = s.nowLocked()
	q.expiryCheck = time.Time{}
	s.notifyLocked()
	return struct{}{}, nil
}
