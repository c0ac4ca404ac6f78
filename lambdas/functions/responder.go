package functions

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strings"

	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/patterns"
)

// LoadResponderConfig reads the responder's configuration:
// COURIER_QUEUE_URL, its request queue (required: with no allowlist the
// Responder answers reply queues named courier-reply-* in that queue's
// account), and COURIER_REPLY_ALLOWLIST, a comma-separated list of
// return addresses it may answer, each either
//   - a queue URL prefix: https://sqs.eu-west-1.amazonaws.com/123456789012/courier-reply-
//   - a queue ARN pattern, path.Match wildcards in the region, account and
//     name: arn:aws:sqs:eu-west-1:123456789012:courier-reply-*
//
// One matching entry is enough. The region of an ARN pattern is checked
// when the URL names one (AWS hosts, LocalStack paths); the reply goes
// through the responder's own regional endpoint either way.
func LoadResponderConfig(getenv Env) (queueURL string, o patterns.ResponderOptions, err error) {
	if queueURL, err = required(getenv, contract.EnvQueueURL); err != nil {
		return "", o, err
	}
	if _, err := patterns.ParseQueueURL(queueURL); err != nil {
		return "", o, fmt.Errorf("%s: %w", contract.EnvQueueURL, err)
	}
	if s := getenv(contract.EnvReplyAllowlist); strings.TrimSpace(s) != "" {
		allow, err := ParseReplyAllowlist(s)
		if err != nil {
			return "", o, err
		}
		o.AllowReplyFunc = allow
	}
	return queueURL, o, o.Validate()
}

// ParseReplyAllowlist parses a COURIER_REPLY_ALLOWLIST value into the
// Responder's AllowReplyFunc.
func ParseReplyAllowlist(s string) (func(patterns.QueueRef) bool, error) {
	var rules []func(patterns.QueueRef) bool
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		rule, err := allowRule(e)
		if err != nil {
			return nil, fmt.Errorf("%w: %s entry %q: %v", patterns.ErrInvalidConfig, contract.EnvReplyAllowlist, e, err)
		}
		rules = append(rules, rule)
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("%w: %s has no entries", patterns.ErrInvalidConfig, contract.EnvReplyAllowlist)
	}
	return func(q patterns.QueueRef) bool {
		for _, r := range rules {
			if r(q) {
				return true
			}
		}
		return false
	}, nil
}

func allowRule(e string) (func(patterns.QueueRef) bool, error) {
	if strings.HasPrefix(e, "https://") || strings.HasPrefix(e, "http://") {
		u, err := url.Parse(e)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("not a URL prefix")
		}
		return func(q patterns.QueueRef) bool { return strings.HasPrefix(q.URL, e) }, nil
	}
	a, err := patterns.ParseARN(e, "sqs")
	if err != nil {
		return nil, fmt.Errorf("neither an http(s) URL prefix nor a queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)")
	}
	region, account, name := a.Region, a.Account, a.Name
	for _, pat := range []string{region, account, name} {
		if _, err := path.Match(pat, ""); err != nil || pat == "" {
			return nil, fmt.Errorf("bad pattern %q", pat)
		}
	}
	return func(q patterns.QueueRef) bool {
		if r := urlRegion(q.URL); r != "" && !match(region, r) {
			return false
		}
		return match(account, q.Account) && match(name, q.Name)
	}, nil
}

func match(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

// urlRegion returns the region a queue URL names, or "": AWS hosts
// (sqs.REGION.amazonaws.com, legacy REGION.queue.amazonaws.com) and
// LocalStack's path style (/queue/REGION/ACCOUNT/NAME).
func urlRegion(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	host := pu.Hostname()
	if r, ok := strings.CutPrefix(host, "sqs."); ok {
		if i := strings.Index(r, ".amazonaws.com"); i > 0 {
			return r[:i]
		}
	}
	if i := strings.Index(host, ".queue.amazonaws.com"); i > 0 {
		return host[:i]
	}
	if seg := strings.Split(strings.Trim(pu.Path, "/"), "/"); len(seg) == 4 && seg[0] == "queue" {
		return seg[1]
	}
	return ""
}

// Responder returns the handler of the request-response responder: the
// patterns.Responder's logic (return-address allowlist, correlation id,
// error replies, FIFO reply queues), each reply sent at once, as the
// Lambda adapter needs; handle answers each request.
func Responder(client patterns.SQSAPI, queueURL string, o patterns.ResponderOptions, handle patterns.RequestHandler, log *slog.Logger) (patterns.Handler, error) {
	o.Logger = log
	r, err := patterns.NewResponder(client, queueURL, func(ro *patterns.ResponderOptions) { *ro = o })
	if err != nil {
		return nil, err
	}
	return r.Handler(handle), nil
}

// Echo is the deployed responder's request handler: it answers each
// request with its body, so that a caller can check the round trip and
// measure it.
func Echo(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
	return &patterns.Message{Body: append([]byte("echo: "), req.Body...)}, nil
}
