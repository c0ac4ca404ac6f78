// Package filter is the message filter pattern's engine: SNS subscription
// filter policies as Go values. Build a policy (or Parse one), Validate it
// against SNS's documented limits before any request, and Match messages
// locally with SNS's semantics, so a policy can be tested without AWS.
//
// A policy is an object of keys; each key holds an array of conditions.
// Keys are ANDed, the conditions of one key ORed, and "$or" ORs whole
// sub-policies. In the attribute scope (the default) keys name message
// attributes; in the body scope keys name properties of a JSON body and may
// nest. See the SNS Developer Guide, "Amazon SNS message filtering".
package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalidPolicy: a policy SNS would refuse. The error names the key path
// and the rule.
var ErrInvalidPolicy = errors.New("courier: invalid filter policy")

// Scope is where a policy looks: the FilterPolicyScope attribute.
type Scope string

const (
	Attributes Scope = "MessageAttributes"
	Body       Scope = "MessageBody"
)

// Limits from the SNS Developer Guide, "Filter policy constraints".
const (
	MaxKeys         = 5
	MaxCombinations = 150
	MaxPolicyBytes  = 256 << 10
	MaxNumeric      = 1e9
)

// Policy is a parsed, valid filter policy.
type Policy struct {
	scope Scope
	root  map[string]any
}

// Parse reads a policy's JSON for the given scope ("" is the attribute
// scope) and validates it.
func Parse(policy string, scope Scope) (*Policy, error) {
	if scope == "" {
		scope = Attributes
	}
	if scope != Attributes && scope != Body {
		return nil, fmt.Errorf("%w: unknown scope %q (want %s or %s)", ErrInvalidPolicy, scope, Attributes, Body)
	}
	if len(policy) > MaxPolicyBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrInvalidPolicy, len(policy), MaxPolicyBytes)
	}
	dec := json.NewDecoder(strings.NewReader(policy))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrInvalidPolicy, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: text after the JSON object", ErrInvalidPolicy)
	}
	p := &Policy{scope: scope, root: root}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// MustParse is Parse for policies known to be valid; it panics otherwise.
func MustParse(policy string, scope Scope) *Policy {
	p, err := Parse(policy, scope)
	if err != nil {
		panic(err)
	}
	return p
}

// Scope returns the policy's scope.
func (p *Policy) Scope() Scope { return p.scope }

// JSON returns the policy as SNS takes it (keys sorted).
func (p *Policy) JSON() string {
	return string(marshal(p.root)) // maps marshal with sorted keys
}

// marshal is json.Marshal without HTML escaping: "<" stays "<".
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func (p *Policy) String() string { return p.JSON() }

// Validate checks the policy against SNS's limits: a non-empty object;
// conditions in non-empty arrays; known operators of the right shape;
// numbers within ±1e9 with at most five decimals; no nesting in the
// attribute scope; at most five keys; at most 150 combinations of values;
// "$or" with at least two sub-policies.
func (p *Policy) Validate() error {
	if len(p.root) == 0 {
		return fmt.Errorf("%w: empty policy", ErrInvalidPolicy)
	}
	b := marshal(p.root)
	if len(b) > MaxPolicyBytes {
		return fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrInvalidPolicy, len(b), MaxPolicyBytes)
	}
	branches, err := expand(p.root, p.scope, "")
	if err != nil {
		return err
	}
	total := 0
	for _, br := range branches {
		keys := len(br.leaves)
		if p.scope == Body {
			keys = len(br.top)
		}
		if keys > MaxKeys {
			return fmt.Errorf("%w: %d keys (%s), over the limit of %d", ErrInvalidPolicy, keys, strings.Join(br.names(), ", "), MaxKeys)
		}
		total += br.combinations
	}
	if total > MaxCombinations {
		return fmt.Errorf("%w: %d combinations of values, over the limit of %d", ErrInvalidPolicy, total, MaxCombinations)
	}
	return nil
}

// branch is one way through the policy's "$or"s: a plain AND of leaves.
type branch struct {
	leaves       map[string][]any // key path -> conditions
	top          map[string]bool
	combinations int
}

func (b branch) names() []string {
	var n []string
	for k := range b.leaves {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// expand checks obj and returns its branches.
func expand(obj map[string]any, scope Scope, prefix string) ([]branch, error) {
	out := []branch{{leaves: map[string][]any{}, top: map[string]bool{}, combinations: 1}}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := obj[k]
		path := prefix + k
		var sub []branch
		switch {
		case k == "$or" && isOr(v):
			for i, alt := range v.([]any) {
				bs, err := expand(alt.(map[string]any), scope, prefix)
				if err != nil {
					return nil, fmt.Errorf("%w (in $or[%d])", err, i)
				}
				sub = append(sub, bs...)
			}
		default:
			switch tv := v.(type) {
			case []any:
				if err := checkConditions(path, tv); err != nil {
					return nil, err
				}
				sub = []branch{{leaves: map[string][]any{path: tv}, top: map[string]bool{}, combinations: len(tv)}}
			case map[string]any:
				if scope == Attributes {
					return nil, fmt.Errorf("%w: key %q: nested keys are allowed only with the MessageBody scope", ErrInvalidPolicy, path)
				}
				if len(tv) == 0 {
					return nil, fmt.Errorf("%w: key %q: empty object", ErrInvalidPolicy, path)
				}
				bs, err := expand(tv, scope, path+".")
				if err != nil {
					return nil, err
				}
				sub = bs
			default:
				return nil, fmt.Errorf("%w: key %q: conditions must be an array, got %s", ErrInvalidPolicy, path, jsonText(v))
			}
		}
		top := prefix == ""
		// AND this key with what came before: the cross product.
		var next []branch
		for _, a := range out {
			for _, s := range sub {
				m := branch{leaves: map[string][]any{}, top: map[string]bool{}, combinations: a.combinations * s.combinations}
				for kk, vv := range a.leaves {
					m.leaves[kk] = vv
				}
				for kk, vv := range s.leaves {
					m.leaves[kk] = vv
				}
				for kk := range a.top {
					m.top[kk] = true
				}
				for kk := range s.top {
					m.top[kk] = true
				}
				if top && k != "$or" {
					m.top[k] = true
				}
				if m.combinations > MaxCombinations {
					return nil, fmt.Errorf("%w: over %d combinations of values at key %q", ErrInvalidPolicy, MaxCombinations, path)
				}
				next = append(next, m)
			}
		}
		out = next
	}
	return out, nil
}

// isOr says whether "$or" is the OR operator, as SNS decides: an array of
// at least two objects none of whose keys is an operator keyword.
// Otherwise "$or" is an ordinary key.
func isOr(v any) bool {
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		return false
	}
	for _, a := range arr {
		obj, ok := a.(map[string]any)
		if !ok || len(obj) == 0 {
			return false
		}
		for k := range obj {
			if operators[k] {
				return false
			}
		}
	}
	return true
}

var operators = map[string]bool{
	"prefix": true, "suffix": true, "anything-but": true, "numeric": true,
	"exists": true, "equals-ignore-case": true, "cidr": true,
}

func jsonText(v any) string { return string(marshal(v)) }
