package filter

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
)

func checkConditions(path string, conds []any) error {
	if len(conds) == 0 {
		return fmt.Errorf("%w: key %q: empty array of conditions", ErrInvalidPolicy, path)
	}
	for _, c := range conds {
		if err := checkCondition(path, c); err != nil {
			return err
		}
	}
	return nil
}

func checkCondition(path string, c any) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: key %q: %s", ErrInvalidPolicy, path, fmt.Sprintf(format, a...))
	}
	switch v := c.(type) {
	case string, bool, nil:
		return nil
	case json.Number:
		return checkNumber(path, v)
	case map[string]any:
		if len(v) != 1 {
			return bad("an operator object has exactly one operator, got %s", jsonText(v))
		}
		for op, arg := range v {
			switch op {
			case "prefix", "suffix", "equals-ignore-case":
				if _, ok := arg.(string); !ok {
					return bad("%s takes a string, got %s", op, jsonText(arg))
				}
			case "exists":
				if _, ok := arg.(bool); !ok {
					return bad("exists takes true or false, got %s", jsonText(arg))
				}
			case "cidr":
				s, ok := arg.(string)
				if !ok {
					return bad("cidr takes a string, got %s", jsonText(arg))
				}
				if _, _, err := net.ParseCIDR(s); err != nil {
					return bad("cidr %q is not a CIDR block", s)
				}
			case "numeric":
				return checkNumeric(path, arg)
			case "anything-but":
				return checkAnythingBut(path, arg)
			default:
				return bad("unknown operator %q", op)
			}
		}
		return nil
	default:
		return bad("a condition is a string, a number, true, false, null or an operator object, got %s", jsonText(c))
	}
}

func checkNumber(path string, n json.Number) error {
	f, err := n.Float64()
	if err != nil || math.Abs(f) > MaxNumeric {
		return fmt.Errorf("%w: key %q: number %s is outside -1e9..1e9", ErrInvalidPolicy, path, n)
	}
	if scaled := f * 1e5; math.Abs(scaled-math.Round(scaled)) > 1e-6*math.Max(1, math.Abs(scaled)) {
		return fmt.Errorf("%w: key %q: number %s has more than five digits after the decimal point", ErrInvalidPolicy, path, n)
	}
	return nil
}

func checkNumeric(path string, arg any) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: key %q: numeric %s: %s", ErrInvalidPolicy, path, jsonText(arg), why)
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

func checkAnythingBut(path string, arg any) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: key %q: anything-but %s: %s", ErrInvalidPolicy, path, jsonText(arg), why)
	}
	switch v := arg.(type) {
	case string:
		return nil
	case json.Number:
		return checkNumber(path, v)
	case []any:
		if len(v) == 0 {
			return bad("empty list")
		}
		for _, e := range v {
			switch n := e.(type) {
			case string:
			case json.Number:
				if err := checkNumber(path, n); err != nil {
					return err
				}
			default:
				return bad("a list holds strings or numbers")
			}
		}
		return nil
	case map[string]any:
		if len(v) == 1 {
			for op, a := range v {
				if _, ok := a.(string); ok && (op == "prefix" || op == "suffix") {
					return nil
				}
			}
		}
		return bad(`the object form is {"prefix": s} or {"suffix": s}`)
	default:
		return bad("takes a string, a number, a list or a prefix/suffix object")
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
	get := func(path string) ([]any, bool) {
		a, ok := attrs[path]
		if !ok || strings.HasPrefix(a.Type, "Binary") {
			return nil, false
		}
		switch {
		case strings.HasPrefix(a.Type, "String.Array"):
			var arr []any
			dec := json.NewDecoder(strings.NewReader(a.Value))
			dec.UseNumber()
			if err := dec.Decode(&arr); err != nil {
				return []any{a.Value}, true // not an array: compared as a string
			}
			return arr, true
		case strings.HasPrefix(a.Type, "Number"):
			return []any{json.Number(strings.TrimSpace(a.Value))}, true
		default:
			return []any{a.Value}, true
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
func (p *Policy) MatchBody(body []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return false
	}
	get := func(path string) ([]any, bool) {
		vals := lookup([]any{doc}, strings.Split(path, "."))
		return vals, len(vals) > 0
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

// lookup follows path through objects, and through arrays element by
// element; arrays at the end are flattened into their elements.
func lookup(cur []any, path []string) []any {
	if len(path) == 0 {
		var out []any
		for _, v := range cur {
			if arr, ok := v.([]any); ok {
				out = append(out, arr...)
			} else {
				out = append(out, v)
			}
		}
		return out
	}
	var next []any
	for _, v := range cur {
		switch t := v.(type) {
		case map[string]any:
			if x, ok := t[path[0]]; ok {
				next = append(next, x)
			}
		case []any:
			next = append(next, lookup(t, path[:1])...)
		}
	}
	if len(next) == 0 {
		return nil
	}
	return lookup(next, path[1:])
}

func matchObject(obj map[string]any, prefix string, get func(string) ([]any, bool)) bool {
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
				vals, present := get(path)
				if !matchKey(tv, vals, present) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

func matchKey(conds []any, vals []any, present bool) bool {
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			if e, ok := m["exists"]; ok {
				if e.(bool) == present {
					return true
				}
				continue
			}
		}
		if !present {
			continue
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
		return false
	default:
		return !matchValue(a, v)
	}
}
