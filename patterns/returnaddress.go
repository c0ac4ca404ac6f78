package patterns

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// replyHosts are the places a reply may go: scheme://host origins, and
// whether a path may carry LocalStack's queue/REGION prefix there.
type replyHosts struct {
	aws    map[string]bool // origins of the region's SQS endpoints: /ACCOUNT/NAME only
	local  map[string]bool // the request queue's and Endpoint's origins
	region string          // "" when unknown
	queue  string          // the request queue's path prefix (before ACCOUNT)
	desc   string
}

func newReplyHosts(queue QueueRef, region, endpoint string) (*replyHosts, error) {
	h := &replyHosts{aws: map[string]bool{}, local: map[string]bool{}, region: region}
	qo, qp, err := splitQueueURL(queue)
	if err != nil {
		return nil, err
	}
	h.local[qo], h.queue = true, qp
	where := []string{"the request queue's " + qo}
	if endpoint != "" {
		eo, err := endpointOrigin(endpoint)
		if err != nil {
			return nil, err
		}
		h.local[eo] = true
		where = append(where, "Endpoint "+eo)
	}
	if region != "" {
		if !validRegion(region) {
			return nil, fmt.Errorf("%w: Region %q is not a region name", ErrInvalidConfig, region)
		}
		r := sqs.NewDefaultEndpointResolverV2()
		for _, v := range []sqs.EndpointParameters{{}, {UseFIPS: aws.Bool(true)}, {UseDualStack: aws.Bool(true)}, {UseFIPS: aws.Bool(true), UseDualStack: aws.Bool(true)}} {
			v.Region = aws.String(region)
			e, err := r.ResolveEndpoint(context.Background(), v)
			if err != nil || e.URI.Scheme != "https" || e.URI.Host == "" {
				continue
			}
			h.aws["https://"+strings.ToLower(e.URI.Host)] = true
			// The legacy form of the same endpoint: REGION.queue.SUFFIX
			// (queue.amazonaws.com for us-east-1), which older SDKs return.
			if rest, ok := strings.CutPrefix(strings.ToLower(e.URI.Host), "sqs."+region+"."); ok {
				h.aws["https://"+region+".queue."+rest] = true
				if region == "us-east-1" {
					h.aws["https://queue."+rest] = true
				}
			}
		}
		if len(h.aws) == 0 {
			return nil, fmt.Errorf("%w: Region %q: no SQS endpoint", ErrInvalidConfig, region)
		}
		where = append(where, "an SQS endpoint of "+region)
	}
	h.desc = strings.Join(where, ", ")
	return h, nil
}

// check tells whether q is in a place a reply may go.
func (h *replyHosts) check(q QueueRef) error {
	origin, prefix, err := splitQueueURL(q)
	if err != nil {
		return err
	}
	switch {
	case h.aws[origin] && prefix == "":
		return nil
	case h.aws[origin]:
		return fmt.Errorf("an SQS queue URL's path is /ACCOUNT/NAME, not /%s/...", prefix)
	case !h.local[origin]:
		return fmt.Errorf("%s is not %s", origin, h.desc)
	case prefix == "" || prefix == h.queue:
		return nil
	case h.region != "" && prefix == "queue/"+h.region:
		return nil
	}
	return fmt.Errorf("path prefix /%s/ is neither the request queue's nor /queue/REGION/ of the responder's region", prefix)
}

// splitQueueURL splits a parsed queue URL into its lowercased
// scheme://host and the path segments before /ACCOUNT/NAME.
func splitQueueURL(q QueueRef) (origin, prefix string, err error) {
	u, err := url.Parse(q.URL)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q", ErrInvalidQueueURL, q.URL)
	}
	p := strings.Trim(u.Path, "/")
	p = strings.TrimSuffix(strings.TrimSuffix(p, q.Account+"/"+q.Name), "/")
	return strings.ToLower(u.Scheme + "://" + u.Host), p, nil
}

// endpointOrigin returns the lowercased scheme://host of an endpoint URL.
func endpointOrigin(e string) (string, error) {
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%w: Endpoint %q is not an http(s) endpoint URL", ErrInvalidConfig, e)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// validRegion tells whether r looks like a region name (letters, digits,
// hyphens), so that it cannot add a label to a host.
func validRegion(r string) bool {
	if r == "" || strings.HasPrefix(r, "-") || strings.HasSuffix(r, "-") {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// replyPrefix is a parsed AllowReplyTo entry: everything before the
// account, the account, and the start of the name.
type replyPrefix struct{ base, account, name string }

func parseReplyPrefix(p string) (replyPrefix, error) {
	bad := func(why string) (replyPrefix, error) {
		return replyPrefix{}, fmt.Errorf("%w: AllowReplyTo %q: %s", ErrInvalidConfig, p, why)
	}
	u, err := url.Parse(p)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return bad("not an http(s) URL prefix")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.RawPath != "" {
		return bad("not a plain queue URL prefix")
	}
	i := strings.LastIndex(p, "/")
	j := strings.LastIndex(p[:i], "/")
	if j < len(u.Scheme)+len("://")+len(u.Host) || !isDigits(p[j+1:i]) {
		return bad("must name the account: .../ACCOUNT/ and then, optionally, the start of the queue name")
	}
	return replyPrefix{base: p[:j+1], account: p[j+1 : i], name: p[i+1:]}, nil
}

// match compares by parts: a prefix names one account and the start of a
// name, never a path that goes on to another account.
func (p replyPrefix) match(q QueueRef) bool {
	return q.Account == p.account && strings.HasPrefix(q.Name, p.name) &&
		q.URL == p.base+q.Account+"/"+q.Name
}

// CheckReturnAddress tells whether the Responder would reply to addr: it
// returns the parsed queue, or an error wrapping ErrUnknownReturnAddress
// that says why not.
func (s *Responder) CheckReturnAddress(addr string) (QueueRef, error) {
	q, err := parseReturnAddress(addr)
	if err != nil {
		return QueueRef{}, err
	}
	for _, rule := range s.allow {
		if err := rule(q); err != nil {
			return QueueRef{}, fmt.Errorf("%w: %s: %v", ErrUnknownReturnAddress, addr, err)
		}
	}
	return q, nil
}

// parseReturnAddress accepts only a plain queue URL: scheme, host, and a
// path of clean segments ending /ACCOUNT/NAME, with a numeric account.
// Anything a URL can hide (user info, a query, escapes, dot segments)
// makes it malformed, so that what the allowlist checks is what SQS sees.
func parseReturnAddress(addr string) (QueueRef, error) {
	if addr == "" {
		return QueueRef{}, fmt.Errorf("%w: the request has no return address", ErrUnknownReturnAddress)
	}
	q, err := ParseQueueURL(addr)
	if err != nil {
		return QueueRef{}, fmt.Errorf("%w: malformed: %v", ErrUnknownReturnAddress, err)
	}
	u, _ := url.Parse(addr) // parsed by ParseQueueURL already
	switch {
	case u.User != nil, u.RawQuery != "", u.ForceQuery, u.Fragment != "", u.RawFragment != "", u.RawPath != "", u.Opaque != "":
		return QueueRef{}, fmt.Errorf("%w: malformed: %q is not a plain queue URL", ErrUnknownReturnAddress, addr)
	case !isDigits(q.Account):
		return QueueRef{}, fmt.Errorf("%w: malformed: %q: account %q is not numeric", ErrUnknownReturnAddress, addr, q.Account)
	}
	for _, seg := range strings.Split(strings.TrimPrefix(u.Path, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return QueueRef{}, fmt.Errorf("%w: malformed: %q has an empty or dot path segment", ErrUnknownReturnAddress, addr)
		}
	}
	return q, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
