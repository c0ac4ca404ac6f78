package memaws

import (
	"encoding/json"
	"strings"
)

// snsQueueAllowsLocked says whether the queue's Policy lets the topic
// send to it, as SQS evaluates it for a delivery from SNS: some Allow
// statement matches (principal sns.amazonaws.com or "*", action
// sqs:SendMessage, the queue as resource, its conditions true for the
// request's aws:SourceArn, aws:SourceAccount and aws:SecureTransport)
// and no Deny statement does. A queue without a Policy, a queue that does
// not exist (delivery fails anyway) and Options.IgnoreQueuePolicies
// allow. s.mu held.
func (s *Server) snsQueueAllowsLocked(queueARN, topicARN string) bool {
	if s.opts.IgnoreQueuePolicies {
		return true
	}
	q := s.queueByARNLocked(queueARN)
	if q == nil {
		return true
	}
	policy := q.cfg.raw["Policy"]
	if policy == "" {
		return true
	}
	ctx := map[string]string{
		"aws:sourcearn":            topicARN,
		"aws:sourceaccount":        s.opts.Account,
		"aws:securetransport":      "true",
		"aws:principalservicename": "sns.amazonaws.com",
	}
	return policyAllows(policy, queueARN, ctx)
}

type policyStatement struct {
	Effect    string
	Principal any
	Action    any
	Resource  any
	Condition map[string]map[string]any
}

func policyAllows(policy, resource string, ctx map[string]string) bool {
	var doc struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(policy), &doc) != nil {
		return false
	}
	var stmts []policyStatement
	if json.Unmarshal(doc.Statement, &stmts) != nil {
		var one policyStatement
		if json.Unmarshal(doc.Statement, &one) != nil {
			return false
		}
		stmts = []policyStatement{one}
	}
	allowed := false
	for _, st := range stmts {
		if !st.matches(resource, ctx) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		}
	}
	return allowed
}

// strings of a policy value: a string or a list of them.
func policyStrings(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case bool:
		if t {
			return []string{"true"}
		}
		return []string{"false"}
	}
	return nil
}

func (st policyStatement) matches(resource string, ctx map[string]string) bool {
	principal := false
	switch p := st.Principal.(type) {
	case string:
		principal = p == "*"
	case map[string]any:
		for _, v := range policyStrings(p["Service"]) {
			principal = principal || v == "sns.amazonaws.com"
		}
		for _, v := range policyStrings(p["AWS"]) {
			principal = principal || v == "*"
		}
	}
	if !principal {
		return false
	}
	action := false
	for _, a := range policyStrings(st.Action) {
		action = action || globMatch(strings.ToLower(a), "sqs:sendmessage")
	}
	if !action {
		return false
	}
	if st.Resource != nil {
		res := false
		for _, r := range policyStrings(st.Resource) {
			res = res || globMatch(r, resource)
		}
		if !res {
			return false
		}
	}
	for op, kv := range st.Condition {
		for key, want := range kv {
			if !conditionHolds(op, ctx, strings.ToLower(key), policyStrings(want)) {
				return false
			}
		}
	}
	return true
}

// conditionHolds evaluates one condition operator on one key, as IAM
// does: a key the request lacks fails a positive operator and passes a
// negated one or an ...IfExists; an unknown operator fails.
func conditionHolds(op string, ctx map[string]string, key string, want []string) bool {
	base, ifExists := strings.CutSuffix(op, "IfExists")
	negated := strings.Contains(base, "Not")
	got, present := ctx[key]
	if !present {
		return ifExists || negated
	}
	anyOf := func(match func(w string) bool) bool {
		for _, w := range want {
			if match(w) {
				return true
			}
		}
		return false
	}
	switch base {
	case "StringEquals", "ArnEquals":
		return anyOf(func(w string) bool { return w == got })
	case "StringNotEquals", "ArnNotEquals":
		return !anyOf(func(w string) bool { return w == got })
	case "StringEqualsIgnoreCase":
		return anyOf(func(w string) bool { return strings.EqualFold(w, got) })
	case "StringNotEqualsIgnoreCase":
		return !anyOf(func(w string) bool { return strings.EqualFold(w, got) })
	case "StringLike", "ArnLike":
		return anyOf(func(w string) bool { return globMatch(w, got) })
	case "StringNotLike", "ArnNotLike":
		return !anyOf(func(w string) bool { return globMatch(w, got) })
	case "Bool":
		return anyOf(func(w string) bool { return strings.EqualFold(w, got) })
	}
	return false
}

// globMatch matches s against a pattern of "*" (any run) and "?" (one
// character).
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
}
