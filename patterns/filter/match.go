package filter

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
)

func (c *checker) checkConditions(path []string, conds []any) error {
	if len(conds) == 0 {
		return policyErr(path, RuleEmpty, "empty array of conditions")
	}
	points, wild := 0, false
	for _, cond := range conds {
		if err := checkCondition(path, cond); err != nil {
			return err
		}
		p, w := wildcardPoints(cond)
		points += p
		wild = wild || w
	}
	// "Wildcard pattern usage guidelines": a field's complexity is the sum
	// of its patterns' points times its number of patterns; only fields
	// with a wildcard are counted.
	if wild {
		c.wildcardPoints += points * len(conds)
	}
	return nil
}

// wildcardPoints scores one condition by "Wildcard pattern usage
// guidelines": one wildcard 1 point, several 3 points each, anything-but 1.
func wildcardPoints(cond any) (points int, wildcard bool) {
	m, ok := cond.(map[string]any)
	if !ok {
		return 0, false
	}
	if ab, ok := m["anything-but"].(map[string]any); ok {
		_, w := ab["wildcard"]
		return 1, w
	}
	if _, ok := m["anything-but"]; ok {
		return 1, false
	}
	s, ok := m["wildcard"].(string)
	if !ok {
		return 0, false
	}
	switch n := countWildcards(s); n {
	case 0, 1:
		return n, true
	default:
		return 3 * n, true
	}
}

func checkCondition(path []string, c any) error {
	bad := func(rule Rule, format string, a ...any) error {
		return policyErr(path, rule, format, a...)
	}
	switch v := c.(type) {
	case string, bool, nil:
		return nil
	case json.Number:
		return checkNumber(path, v)
	case map[string]any:
		if len(v) != 1 {
			return bad(RuleOperator, "an operator object has exactly one operator, got %s", jsonText(v))
		}
		for op, arg := range v {
			switch op {
			case "prefix", "suffix", "equals-ignore-case":
				if _, ok := arg.(string); !ok {
					return bad(RuleOperand, "%s takes a string, got %s", op, jsonText(arg))
				}
			case "wildcard":
				return checkWildcard(path, arg)
			case "exists":
				if _, ok := arg.(bool); !ok {
					return bad(RuleOperand, "exists takes true or false, got %s", jsonText(arg))
				}
			case "cidr":
				s, ok := arg.(string)
				if !ok {
					return bad(RuleOperand, "cidr takes a string, got %s", jsonText(arg))
				}
				if _, _, err := net.ParseCIDR(s); err != nil {
					return bad(RuleOperand, "cidr %q is not a CIDR block", s)
				}
			case "numeric":
				return checkNumeric(path, arg)
			case "anything-but":
				return checkAnythingBut(path, arg)
			default:
				return bad(RuleOperator, "unknown operator %q", op)
			}
		}
		return nil
	default:
		return bad(RuleCondition, "a condition is a string, a number, true, false, null or an operator object, got %s", jsonText(c))
	}
}

// checkWildcard: a string with at most three "*", none next to another;
// a backslash escapes "*" or "\" only (as EventBridge, whose pattern
// language SNS shares, defines it).
func checkWildcard(path []string, arg any) error {
	s, ok := arg.(string)
	if !ok {
		return policyErr(path, RuleOperand, "wildcard takes a string, got %s", jsonText(arg))
	}
	if _, err := wildcardSegments(s); err != nil {
		return policyErr(path, RuleWildcard, "wildcard %q: %v", s, err)
	}
	if n := countWildcards(s); n > MaxWildcards {
		return policyErr(path, RuleWildcard, "wildcard %q has %d wildcards, over the limit of %d", s, n, MaxWildcards).limit(MaxWildcards, n)
	}
	return nil
}

// wildcardSegments splits a pattern at its unescaped "*": n wildcards
// give n+1 literal segments.
func wildcardSegments(pattern string) ([]string, error) {
	var segs []string
	var cur strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch ch := pattern[i]; ch {
		case '\\':
			if i+1 >= len(pattern) || (pattern[i+1] != '*' && pattern[i+1] != '\\') {
				return nil, fmt.Errorf(`a backslash escapes only "*" or "\"`)
			}
			i++
			cur.WriteByte(pattern[i])
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				return nil, fmt.Errorf("consecutive wildcards")
			}
			segs = append(segs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	return append(segs, cur.String()), nil
}

func countWildcards(pattern string) int {
	segs, err := wildcardSegments(pattern)
	if err != nil {
		return 0
	}
	return len(segs) - 1
}

// matchWildcard: "*" matches any run of characters, empty included.
func matchWildcard(pattern, s string) bool {
	segs, err := wildcardSegments(pattern)
	if err != nil {
		return false
	}
	if len(segs) == 1 {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for _, mid := range segs[1 : len(segs)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

func checkNumber(path []string, n json.Number) error {
	f, err := n.Float64()
	if err != nil || math.Abs(f) > MaxNumeric {
		return policyErr(path, RuleNumber, "number %s is outside -1e9..1e9", n).limit(MaxNumeric, 0)
	}
	if scaled := f * 1e5; math.Abs(scaled-math.Round(scaled)) > 1e-6*math.Max(1, math.Abs(scaled)) {
		return policyErr(path, RuleNumber, "number %s has more than five digits after the decimal point", n)
	}
	return nil
}

func checkNumeric(path []string, arg any) error {
	bad := func(why string) error {
		return policyErr(path, RuleOperand, "numeric %s: %s", jsonText(arg), why)
	}
	arr, ok := arg.([]any)
	if !ok || (len(arr) != 2 && len(arr) != 4) {
		return bad(`want [op, n] or [">"|">=", low, "<"|"<=", high]`)
	}
	var nums []float64
	for i := 0; i < len(arr); i += 2 {
		op, ok := arr[i].(string)
		if !ok || !map[string]bool{"=": true, "<": true, "<=": true, ">": true, ">=": true}[op] {
			return bad(fmt.Sprintf("operator %s is not one of = < <= > >=", jsonText(arr[i])))
		}
		n, ok := arr[i+1].(json.Number)
		if !ok {
			return bad(fmt.Sprintf("%s is not a number", jsonText(arr[i+1])))
		}
		if err := checkNumber(path, n); err != nil {
			return err
		}
		f, _ := n.Float64()
		nums = append(nums, f)
	}
	if len(arr) == 4 {
		lo, hi := arr[0].(string), arr[2].(string)
		if (lo != ">" && lo != ">=") || (hi != "<" && hi != "<=") {
			return bad("a range is a lower bound (> or >=) then an upper bound (< or <=)")
		}
		if nums[0] >= nums[1] {
			return bad("the lower bound is not below the upper bound")
		}
	}
	return nil
}

// checkAnythingBut: a string, a number, a non-empty list of them, or one of
// {"prefix": s}, {"suffix": s}, {"wildcard": s} (SNS Developer Guide,
// "String value matching": anything-but with prefix, suffix, wildcard).
func checkAnythingBut(path []string, arg any) error {
	bad := func(rule Rule, why string) error {
		return policyErr(path, rule, "anything-but %s: %s", jsonText(arg), why)
	}
	switch v := arg.(type) {
	case string:
		return nil
	case json.Number:
		return checkNumber(path, v)
	case []any:
		if len(v) == 0 {
			return bad(RuleEmpty, "empty list")
		}
		for _, e := range v {
			switch n := e.(type) {
			case string:
			case json.Number:
				if err := checkNumber(path, n); err != nil {
					return err
				}
			default:
				return bad(RuleOperand, "a list holds strings or numbers")
			}
		}
		return nil
	case map[string]any:
		if len(v) == 1 {
			for op, a := range v {
				s, ok := a.(string)
				switch {
				case ok && (op == "prefix" || op == "suffix"):
					return nil
				case op == "wildcard":
					return checkWildcard(path, a)
				case ok:
					return bad(RuleOperator, fmt.Sprintf("unknown operator %q inside anything-but (%q)", op, s))
				}
			}
		}
		return bad(RuleOperand, `the object form is {"prefix": s}, {"suffix": s} or {"wildcard": s}`)
	default:
		return bad(RuleOperand, "takes a string, a number, a list or a prefix/suffix/wildcard object")
	}
}

// Attr is a message attribute as SNS filters it: its data type (String,
// String.Array, Number, Binary) and its string value.
type Attr struct {
	Type  string
	Value string
}

// MatchAttributes says whether a message with these attributes passes an
// attribute-scope policy. Binary attributes are not filtered on (as if
// absent); a String.Array matches when any element does; a Number matches
// numeric conditions, a String string ones.
func (p *Policy) MatchAttributes(attrs map[string]Attr) bool {
	get := func(path string) []any {
		a, ok := attrs[path]
		if !ok || strings.HasPrefix(a.Type, "Binary") {
			return nil
		}
		switch {
		case strings.HasPrefix(a.Type, "String.Array"):
			var arr []any
			dec := json.NewDecoder(strings.NewReader(a.Value))
			dec.UseNumber()
			if err := dec.Decode(&arr); err != nil {
				return []any{a.Value} // not an array: compared as a string
			}
			return arr
		case strings.HasPrefix(a.Type, "Number"):
			return []any{json.Number(strings.TrimSpace(a.Value))}
		default:
			return []any{a.Value}
		}
	}
	// SNS (Developer Guide, "Key matching"): "exists": false matches a
	// message that lacks the key but has other attributes; a message with
	// no attributes at all matches no attribute policy.
	if len(attrs) == 0 {
		return false
	}
	return matchObject(p.root, "", get)
}

// MatchBody says whether a message body passes a body-scope policy. A body
// that is not a JSON object matches nothing.
//
// A policy key is matched as SNS flattens keys: joined by dots. So the key
// "a.b" (or {"a":{"b":...}}) finds {"a":{"b":1}}, {"a.b":1} and, deeper,
// {"a":{"b.c":1}} for "a.b.c": every way of splitting the dotted name.
func (p *Policy) MatchBody(body []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return false
	}
	get := func(path string) []any {
		var out []any
		lookup(doc, path, &out)
		return out
	}
	return matchObject(p.root, "", get)
}

// Match applies the policy in its scope: to attrs, or to body.
func (p *Policy) Match(attrs map[string]Attr, body []byte) bool {
	if p.scope == Body {
		return p.MatchBody(body)
	}
	return p.MatchAttributes(attrs)
}

// lookup appends to out the values at the dotted path under v: each object
// key that is the whole rest of the path, or a dot-ended prefix of it, is
// followed; arrays are searched element by element, and an array at the
// end is flattened into its elements.
func lookup(v any, path string, out *[]any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			switch {
			case k == path:
				if arr, ok := x.([]any); ok {
					*out = append(*out, arr...)
				} else {
					*out = append(*out, x)
				}
			case strings.HasPrefix(path, k+"."):
				lookup(x, path[len(k)+1:], out)
			}
		}
	case []any:
		for _, e := range t {
			lookup(e, path, out)
		}
	}
}

func matchObject(obj map[string]any, prefix string, get func(string) []any) bool {
	for k, v := range obj {
		path := prefix + k
		switch {
		case k == "$or" && isOr(v):
			matched := false
			for _, alt := range v.([]any) {
				if matchObject(alt.(map[string]any), prefix, get) {
					matched = true
					break
				}
			}
			if !matched {
				return false
			}
		default:
			switch tv := v.(type) {
			case map[string]any:
				if !matchObject(tv, path+".", get) {
					return false
				}
			case []any:
				if !matchKey(tv, get(path)) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// exists says whether a key "exists" as SNS's exists operator means it
// (Developer Guide, "Key matching"): exists applies to leaf nodes only,
// and "the key must have a non-null and non-empty value". So a key whose
// values are all null, "" or objects (intermediate nodes) does not exist,
// and "exists": false matches it: we take false to be the complement of
// true, the docs defining only true's edge cases.
func exists(vals []any) bool {
	for _, v := range vals {
		switch t := v.(type) {
		case nil, map[string]any:
		case string:
			if t != "" {
				return true
			}
		default:
			return true
		}
	}
	return false
}

func matchKey(conds []any, vals []any) bool {
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			if e, ok := m["exists"]; ok {
				if e.(bool) == exists(vals) {
					return true
				}
				continue
			}
		}
		for _, v := range vals {
			if matchValue(c, v) {
				return true
			}
		}
	}
	return false
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

func matchValue(c, v any) bool {
	switch cv := c.(type) {
	case string:
		s, ok := v.(string)
		return ok && s == cv
	case json.Number:
		a, ok1 := number(cv)
		b, ok2 := number(v)
		return ok1 && ok2 && a == b
	case bool:
		b, ok := v.(bool)
		return ok && b == cv
	case nil:
		return v == nil
	case map[string]any:
		for op, arg := range cv {
			s, isStr := v.(string)
			switch op {
			case "prefix":
				return isStr && strings.HasPrefix(s, arg.(string))
			case "suffix":
				return isStr && strings.HasSuffix(s, arg.(string))
			case "wildcard":
				return isStr && matchWildcard(arg.(string), s)
			case "equals-ignore-case":
				return isStr && strings.EqualFold(s, arg.(string))
			case "cidr":
				_, block, _ := net.ParseCIDR(arg.(string))
				ip := net.ParseIP(s)
				return isStr && ip != nil && block.Contains(ip)
			case "numeric":
				f, ok := number(v)
				return ok && numeric(arg.([]any), f)
			case "anything-but":
				return anythingBut(arg, v)
			}
		}
	}
	return false
}

func numeric(spec []any, f float64) bool {
	for i := 0; i < len(spec); i += 2 {
		n, _ := number(spec[i+1])
		var ok bool
		switch spec[i].(string) {
		case "=":
			ok = f == n
		case "<":
			ok = f < n
		case "<=":
			ok = f <= n
		case ">":
			ok = f > n
		case ">=":
			ok = f >= n
		}
		if !ok {
			return false
		}
	}
	return true
}

func anythingBut(arg, v any) bool {
	switch a := arg.(type) {
	case []any:
		for _, e := range a {
			if matchValue(e, v) {
				return false
			}
		}
		return true
	case map[string]any:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if p, ok := a["prefix"].(string); ok {
			return !strings.HasPrefix(s, p)
		}
		if x, ok := a["suffix"].(string); ok {
			return !strings.HasSuffix(s, x)
		}
		if w, ok := a["wildcard"].(string); ok {
			return !matchWildcard(w, s)
		}
		return false
	default:
		return !matchValue(a, v)
	}
}
