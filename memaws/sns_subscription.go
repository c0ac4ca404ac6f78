package memaws

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/courier-aws/courier/patterns/filter"
)

// snsWritableSubAttrs are the subscription attributes Subscribe and
// SetSubscriptionAttributes take.
var snsWritableSubAttrs = map[string]bool{
	"DeliveryPolicy": true, "FilterPolicy": true, "FilterPolicyScope": true, "RawMessageDelivery": true,
	"RedrivePolicy": true, "SubscriptionRoleArn": true, "ReplayPolicy": true,
}

// snsProtocols are the protocols SNS knows; memaws delivers only to sqs.
var snsProtocols = map[string]bool{
	"http": true, "https": true, "email": true, "email-json": true, "sms": true, "sqs": true,
	"application": true, "lambda": true, "firehose": true,
}

// parseSQSARN returns a queue ARN's name, or false when arn is not one.
func parseSQSARN(arn string) (string, bool) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || !strings.HasPrefix(p[1], "aws") || p[2] != "sqs" || p[3] == "" || p[4] == "" || p[5] == "" {
		return "", false
	}
	return p[5], true
}

// setSubAttr checks and applies one subscription attribute.
func setSubAttr(sub *subscription, name, v string) *APIError {
	if !snsWritableSubAttrs[name] {
		return snsInvalid("AttributeName")
	}
	switch name {
	case "RawMessageDelivery":
		on, e := parseBoolAttr(name, v)
		if e != nil {
			return e
		}
		sub.raw = on
		v = strconv.FormatBool(on)
	case "FilterPolicy", "FilterPolicyScope":
		policy, scope := sub.attrs["FilterPolicy"], sub.attrs["FilterPolicyScope"]
		if name == "FilterPolicy" {
			policy = v
		} else {
			if v != string(filter.Attributes) && v != string(filter.Body) {
				return snsInvalid("Attributes Reason: FilterPolicyScope: Invalid value [%s]. Please use either MessageBody or MessageAttributes", v)
			}
			scope = v
		}
		if policy == "" {
			// An empty policy removes it (and its scope stays as set).
			sub.policy = nil
			delete(sub.attrs, "FilterPolicy")
			if name == "FilterPolicy" {
				return nil
			}
			break
		}
		p, err := filter.Parse(policy, filter.Scope(scope))
		if err != nil {
			var pe *filter.PolicyError
			if errors.As(err, &pe) {
				return snsInvalid("Filter policy: %s", pe.Error())
			}
			return snsInvalid("Filter policy: %v", err)
		}
		sub.policy = p
	case "RedrivePolicy":
		if v != "" {
			var rp struct {
				DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			}
			if err := json.Unmarshal([]byte(v), &rp); err != nil {
				return snsInvalid("RedrivePolicy: failed to parse JSON")
			}
			if _, ok := parseSQSARN(rp.DeadLetterTargetArn); !ok {
				return snsInvalid("RedrivePolicy: deadLetterTargetArn is an invalid arn")
			}
		}
	}
	if v == "" && name != "FilterPolicyScope" {
		delete(sub.attrs, name)
	} else {
		sub.attrs[name] = v
	}
	return nil
}

func (s *Server) snsSubscribe(form url.Values) ([]byte, *APIError) {
	t, e := s.snsTopic(form.Get("TopicArn"))
	if e != nil {
		return nil, e
	}
	protocol, endpoint := form.Get("Protocol"), form.Get("Endpoint")
	switch {
	case protocol == "":
		return nil, snsInvalid("Protocol")
	case !snsProtocols[protocol]:
		return nil, snsInvalid("Amazon SNS does not support this protocol string: %s", protocol)
	case protocol != "sqs":
		return nil, snsInvalid("Protocol Reason: memaws delivers only to sqs subscriptions, not %s (it opens no sockets and runs no functions)", protocol)
	}
	qname, ok := parseSQSARN(endpoint)
	if !ok {
		return nil, snsInvalid("SQS endpoint ARN")
	}
	// A FIFO topic delivers to FIFO and standard queues; a standard topic
	// only to standard ones.
	if strings.HasSuffix(qname, ".fifo") && !t.fifo {
		return nil, snsInvalid("Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics")
	}
	attrs := formEntries(form, "Attributes", "key", "value")
	sub := &subscription{topicARN: t.arn, protocol: protocol, endpoint: endpoint, attrs: map[string]string{}}
	// FilterPolicyScope first: the policy is parsed in its scope.
	if v, ok := attrs["FilterPolicyScope"]; ok {
		if e := setSubAttr(sub, "FilterPolicyScope", v); e != nil {
			return nil, e
		}
	}
	for k, v := range attrs {
		if k == "FilterPolicyScope" {
			continue
		}
		if !snsWritableSubAttrs[k] {
			return nil, snsInvalid("Attributes Reason: Unknown attribute %s", k)
		}
		if e := setSubAttr(sub, k, v); e != nil {
			return nil, e
		}
	}
	if sub.policy != nil && sub.attrs["FilterPolicyScope"] == "" {
		sub.attrs["FilterPolicyScope"] = string(filter.Attributes)
	}
	for _, sa := range t.subs {
		old := s.sns.subs[sa]
		if old.protocol == protocol && old.endpoint == endpoint {
			// Subscribing again is idempotent, with the same attributes.
			for k, v := range attrs {
				if old.attrs[k] != v && !(k == "RawMessageDelivery" && strings.EqualFold(old.attrs[k], v)) {
					return nil, snsInvalid("Attributes Reason: Subscription already exists with different attributes")
				}
			}
			var b bytes.Buffer
			xmlText(&b, "SubscriptionArn", sa)
			return b.Bytes(), nil
		}
	}
	sub.arn = t.arn + ":" + s.snsIDLocked()
	s.sns.subs[sub.arn] = sub
	t.subs = append(t.subs, sub.arn)
	var b bytes.Buffer
	xmlText(&b, "SubscriptionArn", sub.arn)
	return b.Bytes(), nil
}

func (s *Server) snsSub(arn string) (*subscription, *APIError) {
	if _, ok := s.parseSNSARN(arn); !ok || strings.Count(arn, ":") != 6 {
		return nil, snsInvalid("SubscriptionArn")
	}
	sub, ok := s.sns.subs[arn]
	if !ok {
		return nil, snsSubNotFound()
	}
	return sub, nil
}

func (s *Server) snsUnsubscribe(form url.Values) *APIError {
	sub, e := s.snsSub(form.Get("SubscriptionArn"))
	if e != nil {
		if e.Code == "NotFound" {
			return nil // already gone
		}
		return e
	}
	delete(s.sns.subs, sub.arn)
	if t, ok := s.sns.topics[sub.topicARN]; ok {
		for i, sa := range t.subs {
			if sa == sub.arn {
				t.subs = append(t.subs[:i:i], t.subs[i+1:]...)
				break
			}
		}
	}
	return nil
}

func (s *Server) snsConfirmSubscription(form url.Values) ([]byte, *APIError) {
	if _, e := s.snsTopic(form.Get("TopicArn")); e != nil {
		return nil, e
	}
	// SQS subscriptions need no confirmation, so no token is outstanding.
	return nil, snsInvalid("Token")
}

func (s *Server) snsGetSubscriptionAttributes(form url.Values) ([]byte, *APIError) {
	sub, e := s.snsSub(form.Get("SubscriptionArn"))
	if e != nil {
		return nil, e
	}
	m := map[string]string{
		"SubscriptionArn": sub.arn, "TopicArn": sub.topicARN, "Owner": s.opts.Account,
		"Protocol": sub.protocol, "Endpoint": sub.endpoint,
		"ConfirmationWasAuthenticated": "true", "PendingConfirmation": "false",
		"RawMessageDelivery":    "false",
		"SubscriptionPrincipal": "arn:aws:iam::" + s.opts.Account + ":user/memaws",
	}
	for k, v := range sub.attrs {
		m[k] = v
	}
	if m["FilterPolicy"] == "" {
		delete(m, "FilterPolicyScope")
	}
	var b bytes.Buffer
	xmlEntries(&b, m)
	return b.Bytes(), nil
}

func (s *Server) snsSetSubscriptionAttributes(form url.Values) *APIError {
	sub, e := s.snsSub(form.Get("SubscriptionArn"))
	if e != nil {
		return e
	}
	return setSubAttr(sub, form.Get("AttributeName"), form.Get("AttributeValue"))
}

func (s *Server) snsListSubscriptions(form url.Values, topicARN string) ([]byte, *APIError) {
	var keys []string
	for arn, sub := range s.sns.subs {
		if topicARN == "" || sub.topicARN == topicARN {
			keys = append(keys, arn)
		}
	}
	page, next, e := snsPage(keys, form.Get("NextToken"))
	if e != nil {
		return nil, e
	}
	var b bytes.Buffer
	b.WriteString("<Subscriptions>")
	for _, arn := range page {
		sub := s.sns.subs[arn]
		b.WriteString("<member>")
		xmlText(&b, "SubscriptionArn", sub.arn)
		xmlText(&b, "Owner", s.opts.Account)
		xmlText(&b, "Protocol", sub.protocol)
		xmlText(&b, "Endpoint", sub.endpoint)
		xmlText(&b, "TopicArn", sub.topicARN)
		b.WriteString("</member>")
	}
	b.WriteString("</Subscriptions>")
	if next != "" {
		xmlText(&b, "NextToken", next)
	}
	return b.Bytes(), nil
}

func (s *Server) snsTaggedTopic(form url.Values) (*topic, *APIError) {
	arn := form.Get("ResourceArn")
	if _, ok := s.parseSNSARN(arn); !ok {
		return nil, snsInvalid("ResourceArn")
	}
	t, ok := s.sns.topics[arn]
	if !ok {
		return nil, &APIError{Status: 404, Code: "ResourceNotFound", Message: "Resource does not exist"}
	}
	return t, nil
}

func (s *Server) snsListTags(form url.Values) ([]byte, *APIError) {
	t, e := s.snsTaggedTopic(form)
	if e != nil {
		return nil, e
	}
	var b bytes.Buffer
	b.WriteString("<Tags>")
	for k, v := range t.tags {
		b.WriteString("<member>")
		xmlText(&b, "Key", k)
		xmlText(&b, "Value", v)
		b.WriteString("</member>")
	}
	b.WriteString("</Tags>")
	return b.Bytes(), nil
}

func (s *Server) snsTagResource(form url.Values) *APIError {
	t, e := s.snsTaggedTopic(form)
	if e != nil {
		return e
	}
	tags, _ := formTags(form, "Tags")
	if len(t.tags)+len(tags) > 50 {
		return &APIError{Status: 400, Code: "TagLimitExceeded", Message: "Could not complete request: tag quota of per resource exceeded"}
	}
	if t.tags == nil {
		t.tags = map[string]string{}
	}
	for k, v := range tags {
		t.tags[k] = v
	}
	return nil
}

func (s *Server) snsUntagResource(form url.Values) *APIError {
	t, e := s.snsTaggedTopic(form)
	if e != nil {
		return e
	}
	for i := 1; form.Has("TagKeys.member." + strconv.Itoa(i)); i++ {
		delete(t.tags, form.Get("TagKeys.member."+strconv.Itoa(i)))
	}
	return nil
}
