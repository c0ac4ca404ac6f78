package memaws

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/courier-aws/courier/patterns/filter"
)

// SNS: topics (standard and FIFO), subscriptions of SQS queues (raw and
// enveloped, with filter policies on attributes or body), Publish and
// PublishBatch, delivered at once into the subscribed queues. Protocols
// other than sqs (http, https, lambda, email, ...) are refused at
// Subscribe: the Server opens no sockets and runs no functions.

// snsState is every topic and subscription of a Server.
type snsState struct {
	topics map[string]*topic        // by ARN
	subs   map[string]*subscription // by ARN
}

func (st *snsState) init() {
	st.topics = map[string]*topic{}
	st.subs = map[string]*subscription{}
}

type topic struct {
	arn, name    string
	fifo         bool
	contentDedup bool
	attrs        map[string]string // as set: DisplayName, Policy, ...
	tags         map[string]string
	subs         []string // subscription ARNs, in the order made
	dedup        map[string]snsDedup
	dedupOrder   []string
}

type snsDedup struct {
	messageID, seq string
	expires        time.Time
}

type subscription struct {
	arn, topicARN, protocol, endpoint string
	raw                               bool
	policy                            *filter.Policy
	attrs                             map[string]string // as set: FilterPolicy, FilterPolicyScope, RawMessageDelivery, RedrivePolicy
}

// snsWritableTopicAttrs are the topic attributes CreateTopic and
// SetTopicAttributes take.
var snsWritableTopicAttrs = map[string]bool{
	"DeliveryPolicy": true, "DisplayName": true, "FifoTopic": true, "Policy": true, "SignatureVersion": true,
	"TracingConfig": true, "KmsMasterKeyId": true, "ContentBasedDeduplication": true, "ArchivePolicy": true,
	"FifoThroughputScope": true, "DataProtectionPolicy": true,
}

var snsTopicName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func snsInvalid(format string, a ...any) *APIError {
	msg := format
	if len(a) > 0 {
		msg = fmt.Sprintf(format, a...)
	}
	return &APIError{Status: http.StatusBadRequest, Code: "InvalidParameter", Message: "Invalid parameter: " + msg}
}

func snsInvalidValue(msg string) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: "ParameterValueInvalid", Message: msg}
}

func snsTopicNotFound() *APIError {
	return &APIError{Status: http.StatusNotFound, Code: "NotFound", Message: "Topic does not exist"}
}

func snsSubNotFound() *APIError {
	return &APIError{Status: http.StatusNotFound, Code: "NotFound", Message: "Subscription does not exist"}
}

// serveSNS answers one SNS query-protocol request.
func (s *Server) serveSNS(r *request, op string, form url.Values) *http.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		res []byte
		e   *APIError
	)
	switch op {
	case "CreateTopic":
		res, e = s.snsCreateTopic(form)
	case "DeleteTopic":
		e = s.snsDeleteTopic(form)
	case "ListTopics":
		res, e = s.snsListTopics(form)
	case "GetTopicAttributes":
		res, e = s.snsGetTopicAttributes(form)
	case "SetTopicAttributes":
		e = s.snsSetTopicAttributes(form)
	case "Subscribe":
		res, e = s.snsSubscribe(form)
	case "Unsubscribe":
		e = s.snsUnsubscribe(form)
	case "ConfirmSubscription":
		res, e = s.snsConfirmSubscription(form)
	case "GetSubscriptionAttributes":
		res, e = s.snsGetSubscriptionAttributes(form)
	case "SetSubscriptionAttributes":
		e = s.snsSetSubscriptionAttributes(form)
	case "ListSubscriptions":
		res, e = s.snsListSubscriptions(form, "")
	case "ListSubscriptionsByTopic":
		arn := form.Get("TopicArn")
		if _, e = s.snsTopic(arn); e == nil {
			res, e = s.snsListSubscriptions(form, arn)
		}
	case "ListTagsForResource":
		res, e = s.snsListTags(form)
	case "TagResource":
		e = s.snsTagResource(form)
	case "UntagResource":
		e = s.snsUntagResource(form)
	case "Publish":
		res, e = s.snsPublish(r, form)
	case "PublishBatch":
		res, e = s.snsPublishBatch(r, form)
	default:
		e = &APIError{Status: http.StatusBadRequest, Code: "InvalidAction", Message: "memaws does not implement SNS " + op}
	}
	if e != nil {
		return writeError("sns", op, e)
	}
	return queryResponse(op, res)
}

// snsTopic returns the topic with this ARN. s.mu held.
func (s *Server) snsTopic(arn string) (*topic, *APIError) {
	if arn == "" {
		return nil, snsInvalid("TopicArn")
	}
	if _, ok := s.parseSNSARN(arn); !ok {
		return nil, snsInvalid("TopicArn")
	}
	t, ok := s.sns.topics[arn]
	if !ok {
		return nil, snsTopicNotFound()
	}
	return t, nil
}

// parseSNSARN returns the topic name of an SNS ARN of this Server's
// region and account.
func (s *Server) parseSNSARN(arn string) (string, bool) {
	p := strings.Split(arn, ":")
	if len(p) < 6 || p[0] != "arn" || p[2] != "sns" || p[3] != s.opts.Region || p[4] != s.opts.Account {
		return "", false
	}
	return p[5], true
}

// formEntries reads a query-protocol map: prefix.entry.N.<k>, prefix.entry.N.<v>.
func formEntries(form url.Values, prefix, k, v string) map[string]string {
	out := map[string]string{}
	for i := 1; ; i++ {
		base := prefix + ".entry." + strconv.Itoa(i) + "."
		if !form.Has(base + k) {
			return out
		}
		out[form.Get(base+k)] = form.Get(base + v)
	}
}

// formTags reads Tags.member.N.Key / .Value.
func formTags(form url.Values, prefix string) (map[string]string, bool) {
	out := map[string]string{}
	found := false
	for i := 1; ; i++ {
		base := prefix + ".member." + strconv.Itoa(i) + "."
		if !form.Has(base + "Key") {
			return out, found
		}
		found = true
		out[form.Get(base+"Key")] = form.Get(base + "Value")
	}
}

func xmlText(b *bytes.Buffer, tag, v string) {
	b.WriteString("<" + tag + ">")
	_ = xml.EscapeText(b, []byte(v))
	b.WriteString("</" + tag + ">")
}

func xmlEntries(b *bytes.Buffer, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("<Attributes>")
	for _, k := range keys {
		b.WriteString("<entry>")
		xmlText(b, "key", k)
		xmlText(b, "value", m[k])
		b.WriteString("</entry>")
	}
	b.WriteString("</Attributes>")
}

func parseBoolAttr(name, v string) (bool, *APIError) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, snsInvalid("Attributes Reason: %s: invalid value [%s], must be true or false", name, v)
}

func (s *Server) snsCreateTopic(form url.Values) ([]byte, *APIError) {
	name := form.Get("Name")
	attrs := formEntries(form, "Attributes", "key", "value")
	tags, _ := formTags(form, "Tags")
	for k := range attrs {
		if !snsWritableTopicAttrs[k] {
			return nil, snsInvalid("Attributes Reason: Unknown attribute %s", k)
		}
	}
	fifo := false
	if v, ok := attrs["FifoTopic"]; ok {
		var e *APIError
		if fifo, e = parseBoolAttr("FifoTopic", v); e != nil {
			return nil, e
		}
	}
	base := name
	if fifo {
		var ok bool
		if base, ok = strings.CutSuffix(name, ".fifo"); !ok {
			return nil, snsInvalid("Topic Name Reason: Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.")
		}
	}
	if !snsTopicName.MatchString(base) || len(name) > 256 {
		return nil, snsInvalid("Topic Name")
	}
	contentDedup := false
	if v, ok := attrs["ContentBasedDeduplication"]; ok {
		var e *APIError
		if contentDedup, e = parseBoolAttr("ContentBasedDeduplication", v); e != nil {
			return nil, e
		}
		if contentDedup && !fifo {
			return nil, snsInvalid("Attributes Reason: Content based deduplication can only be set for FIFO topics")
		}
	}
	arn := "arn:aws:sns:" + s.opts.Region + ":" + s.opts.Account + ":" + name
	if t, ok := s.sns.topics[arn]; ok {
		// Idempotent: the same name with the same attributes and tags is
		// the same topic; different ones are refused.
		for k, v := range attrs {
			if cur := snsTopicAttr(t, k); cur != v && !(k == "FifoTopic" && strings.EqualFold(cur, v)) {
				return nil, snsInvalid("Attributes Reason: Topic already exists with different attributes")
			}
		}
		if len(tags) > 0 {
			for k, v := range tags {
				if t.tags[k] != v {
					return nil, snsInvalid("Tags Reason: Topic already exists with different tags")
				}
			}
		}
	} else {
		t := &topic{arn: arn, name: name, fifo: fifo, contentDedup: contentDedup, attrs: map[string]string{}, tags: tags, dedup: map[string]snsDedup{}}
		for k, v := range attrs {
			if k != "FifoTopic" && k != "ContentBasedDeduplication" {
				t.attrs[k] = v
			}
		}
		s.sns.topics[arn] = t
	}
	var b bytes.Buffer
	xmlText(&b, "TopicArn", arn)
	return b.Bytes(), nil
}

// snsTopicAttr is one attribute as GetTopicAttributes reports it.
func snsTopicAttr(t *topic, k string) string {
	switch k {
	case "FifoTopic":
		return strconv.FormatBool(t.fifo)
	case "ContentBasedDeduplication":
		return strconv.FormatBool(t.contentDedup)
	}
	return t.attrs[k]
}

func (s *Server) snsDeleteTopic(form url.Values) *APIError {
	arn := form.Get("TopicArn")
	if _, ok := s.parseSNSARN(arn); !ok {
		return snsInvalid("TopicArn")
	}
	t, ok := s.sns.topics[arn]
	if !ok {
		return nil // idempotent
	}
	for _, sa := range t.subs {
		delete(s.sns.subs, sa)
	}
	delete(s.sns.topics, arn)
	return nil
}

// snsPage returns the page of sorted keys after the NextToken, 100 at a time.
func snsPage(keys []string, token string) (page []string, next string, e *APIError) {
	sort.Strings(keys)
	start := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > len(keys) {
			return nil, "", snsInvalid("NextToken")
		}
		start = n
	}
	end := min(start+100, len(keys))
	if end < len(keys) {
		next = strconv.Itoa(end)
	}
	return keys[start:end], next, nil
}

func (s *Server) snsListTopics(form url.Values) ([]byte, *APIError) {
	keys := make([]string, 0, len(s.sns.topics))
	for arn := range s.sns.topics {
		keys = append(keys, arn)
	}
	page, next, e := snsPage(keys, form.Get("NextToken"))
	if e != nil {
		return nil, e
	}
	var b bytes.Buffer
	b.WriteString("<Topics>")
	for _, arn := range page {
		b.WriteString("<member>")
		xmlText(&b, "TopicArn", arn)
		b.WriteString("</member>")
	}
	b.WriteString("</Topics>")
	if next != "" {
		xmlText(&b, "NextToken", next)
	}
	return b.Bytes(), nil
}

// snsDefaultTopicPolicy is the policy SNS gives a new topic: the owner's
// account may do everything.
func (s *Server) snsDefaultTopicPolicy(arn string) string {
	return `{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:GetTopicAttributes","SNS:SetTopicAttributes","SNS:AddPermission","SNS:RemovePermission","SNS:DeleteTopic","SNS:Subscribe","SNS:ListSubscriptionsByTopic","SNS:Publish"],"Resource":"` +
		arn + `","Condition":{"StringEquals":{"AWS:SourceOwner":"` + s.opts.Account + `"}}}]}`
}

func (s *Server) snsGetTopicAttributes(form url.Values) ([]byte, *APIError) {
	t, e := s.snsTopic(form.Get("TopicArn"))
	if e != nil {
		return nil, e
	}
	m := map[string]string{
		"TopicArn": t.arn, "Owner": s.opts.Account, "DisplayName": "",
		"Policy":                 s.snsDefaultTopicPolicy(t.arn),
		"SubscriptionsConfirmed": strconv.Itoa(len(t.subs)), "SubscriptionsPending": "0", "SubscriptionsDeleted": "0",
		"EffectiveDeliveryPolicy": `{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}`,
	}
	if t.fifo {
		m["FifoTopic"] = "true"
		m["ContentBasedDeduplication"] = strconv.FormatBool(t.contentDedup)
	}
	for k, v := range t.attrs {
		m[k] = v
	}
	var b bytes.Buffer
	xmlEntries(&b, m)
	return b.Bytes(), nil
}

func (s *Server) snsSetTopicAttributes(form url.Values) *APIError {
	t, e := s.snsTopic(form.Get("TopicArn"))
	if e != nil {
		return e
	}
	name, v := form.Get("AttributeName"), form.Get("AttributeValue")
	switch {
	case !snsWritableTopicAttrs[name]:
		return snsInvalid("AttributeName")
	case name == "FifoTopic":
		return snsInvalid("AttributeName: FifoTopic cannot be changed")
	case name == "ContentBasedDeduplication":
		if !t.fifo {
			return snsInvalid("Attributes Reason: Content based deduplication can only be set for FIFO topics")
		}
		on, e := parseBoolAttr(name, v)
		if e != nil {
			return e
		}
		t.contentDedup = on
	default:
		t.attrs[name] = v
	}
	return nil
}
