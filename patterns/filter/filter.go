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
	"fmt"
	"sort"
	"strings"
)

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
	// From "Wildcard pattern usage guidelines" on the same page.
	MaxWildcards      = 3
	MaxWildcardPoints = 100
)

// Policy is a parsed, valid filter policy.
type Policy struct {
	scope Scope
	root  map[string]any
}

// Parse reads a policy's JSON for the given scope ("" is the attribute
// scope) and validates it. A refusal is a *PolicyError.
func Parse(policy string, scope Scope) (*Policy, error) {
	if scope == "" {
		scope = Attributes
	}
	if scope != Attributes && scope != Body {
		return nil, policyErr(nil, RuleScope, "unknown scope %q (want %s or %s)", scope, Attributes, Body)
	}
	if len(policy) > MaxPolicyBytes {
		return nil, policyErr(nil, RuleSize, "%d bytes, over the %d-byte limit", len(policy), MaxPolicyBytes).limit(MaxPolicyBytes, len(policy))
	}
	dec := json.NewDecoder(strings.NewReader(policy))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, policyErr(nil, RuleSyntax, "not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, policyErr(nil, RuleSyntax, "text after the JSON object")
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
// attribute scope; at most five leaf keys; at most 150 combinations of
// values; wildcards within their limits. A refusal is a *PolicyError.
func (p *Policy) Validate() error {
	if len(p.root) == 0 {
		return policyErr(nil, RuleEmpty, "empty policy")
	}
	if b := marshal(p.root); len(b) > MaxPolicyBytes {
		return policyErr(nil, RuleSize, "%d bytes, over the %d-byte limit", len(b), MaxPolicyBytes).limit(MaxPolicyBytes, len(b))
	}
	st := &checker{scope: p.scope}
	branches, err := st.expand(p.root, nil, 1)
	if err != nil {
		return err
	}
	total := 0
	for _, br := range branches {
		// "For a nested policy, only leaf keys are counted towards the
		// five key limit" (Filter policy constraints, payload-based).
		if keys := len(br.leaves); keys > MaxKeys {
			return policyErr(nil, RuleKeys, "%d keys (%s), over the limit of %d", keys, strings.Join(br.names(), ", "), MaxKeys).limit(MaxKeys, keys)
		}
		total += br.combinations
	}
	if total > MaxCombinations {
		return policyErr(nil, RuleCombinations, "%d combinations of values, over the limit of %d", total, MaxCombinations).limit(MaxCombinations, total)
	}
	if st.wildcardPoints > MaxWildcardPoints {
		return policyErr(nil, RuleWildcardPoints, "wildcard complexity of %d points, over the limit of %d", st.wildcardPoints, MaxWildcardPoints).limit(MaxWildcardPoints, st.wildcardPoints)
	}
	return nil
}

// branch is one way through the policy's "$or"s: a plain AND of leaves.
type branch struct {
	leaves       map[string]string // JSON path (segments joined by NUL) -> the key as SNS flattens it
	combinations int
}

func (b branch) names() []string {
	var n []string
	for _, k := range b.leaves {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// checker walks a policy once, checking each leaf and summing what is
// counted across the whole policy.
type checker struct {
	scope          Scope
	wildcardPoints int
}

// expand checks obj, found at path and nesting depth (1 at the root), and
// returns its branches. Combinations follow the example of "Filter policy
// constraints": each leaf contributes its number of values times its
// nesting level, leaves are multiplied, and each alternative of an "$or"
// is a branch of its own (the branches' combinations add up).
func (c *checker) expand(obj map[string]any, path []string, depth int) ([]branch, error) {
	out := []branch{{leaves: map[string]string{}, combinations: 1}}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := obj[k]
		kpath := append(append([]string(nil), path...), k)
		var sub []branch
		switch {
		case k == "$or" && isOr(v):
			for i, alt := range v.([]any) {
				bs, err := c.expand(alt.(map[string]any), append(append([]string(nil), path...), fmt.Sprintf("$or[%d]", i)), depth)
				if err != nil {
					return nil, err
				}
				sub = append(sub, bs...)
			}
		default:
			switch tv := v.(type) {
			case []any:
				if err := c.checkConditions(kpath, tv); err != nil {
					return nil, err
				}
				sub = []branch{{leaves: map[string]string{leafID(kpath): leafName(kpath)}, combinations: len(tv) * depth}}
			case map[string]any:
				if c.scope == Attributes {
					return nil, policyErr(kpath, RuleNesting, "nested keys are allowed only with the MessageBody scope")
				}
				if len(tv) == 0 {
					return nil, policyErr(kpath, RuleEmpty, "empty object")
				}
				bs, err := c.expand(tv, kpath, depth+1)
				if err != nil {
					return nil, err
				}
				sub = bs
			default:
				return nil, policyErr(kpath, RuleShape, "conditions must be an array, got %s", jsonText(v))
			}
		}
		// AND this key with what came before: the cross product.
		var next []branch
		for _, a := range out {
			for _, s := range sub {
				m := branch{leaves: make(map[string]string, len(a.leaves)+len(s.leaves)), combinations: a.combinations * s.combinations}
				for kk, vv := range a.leaves {
					m.leaves[kk] = vv
				}
				for kk, vv := range s.leaves {
					m.leaves[kk] = vv
				}
				if m.combinations > MaxCombinations {
					return nil, policyErr(kpath, RuleCombinations, "over %d combinations of values", MaxCombinations).limit(MaxCombinations, m.combinations)
				}
				next = append(next, m)
			}
		}
		if len(next) > MaxCombinations {
			// Each branch counts at least one combination.
			return nil, policyErr(kpath, RuleCombinations, "over %d combinations of values", MaxCombinations).limit(MaxCombinations, len(next))
		}
		out = next
	}
	return out, nil
}

// leafID tells JSON paths apart even when their keys hold dots.
func leafID(path []string) string { return strings.Join(leafKeys(path), "\x00") }

// leafName is the key as SNS flattens it: keys joined by dots.
func leafName(path []string) string { return strings.Join(leafKeys(path), ".") }

func leafKeys(path []string) []string {
	var out []string
	for _, p := range path {
		if !strings.HasPrefix(p, "$or[") {
			out = append(out, p)
		}
	}
	return out
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
	"exists": true, "equals-ignore-case": true, "cidr": true, "wildcard": true,
}

func jsonText(v any) string { return string(marshal(v)) }
