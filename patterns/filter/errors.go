package filter

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPolicy: a policy SNS would refuse. Every refusal is a
// *PolicyError, which names the key path and the rule and unwraps to this.
var ErrInvalidPolicy = errors.New("courier: invalid filter policy")

// Rule names the SNS constraint a policy breaks, so that a program can
// branch on it (errors.As then PolicyError.Rule).
type Rule string

// The rules, each from the SNS Developer Guide ("Filter policy
// constraints" unless said otherwise).
const (
	RuleSyntax         Rule = "syntax"          // not one JSON object
	RuleScope          Rule = "scope"           // FilterPolicyScope is neither MessageAttributes nor MessageBody
	RuleSize           Rule = "size"            // over 256 KB; Limit is MaxPolicyBytes
	RuleEmpty          Rule = "empty"           // empty policy, object, array of conditions or anything-but list
	RuleShape          Rule = "shape"           // a key's value is neither an array of conditions nor (body scope) an object
	RuleNesting        Rule = "nesting"         // nested keys in the attribute scope
	RuleKeys           Rule = "keys"            // over five (leaf) keys in one branch; Limit is MaxKeys
	RuleCombinations   Rule = "combinations"    // over 150 combinations; Limit is MaxCombinations
	RuleCondition      Rule = "condition"       // a condition that is no JSON scalar nor operator object
	RuleOperator       Rule = "operator"        // unknown operator, or an object with more than one
	RuleOperand        Rule = "operand"         // an operator's argument of the wrong type or shape
	RuleNumber         Rule = "number"          // outside ±1e9 or over five decimals; Limit is MaxNumeric
	RuleWildcard       Rule = "wildcard"        // a malformed wildcard pattern, or over three "*"; Limit is MaxWildcards
	RuleWildcardPoints Rule = "wildcard-points" // wildcard complexity over 100 points; Limit is MaxWildcardPoints
)

// PolicyError is a policy SNS would refuse: where and which rule.
type PolicyError struct {
	// Path leads from the policy's root to the broken key: object keys as
	// written (a key may itself hold dots), "$or[i]" for the i-th
	// alternative of an "$or". Empty for rules on the whole policy.
	Path []string
	Rule Rule
	// Limit is the number the policy went over (0 when the rule has none);
	// Got is how far it went (0 when not counted).
	Limit int
	Got   int
	// Detail says what was found, in words.
	Detail string
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidPolicy.Error())
	b.WriteString(": ")
	var keys, ors []string
	for _, p := range e.Path {
		if strings.HasPrefix(p, "$or[") {
			ors = append(ors, p)
		} else {
			keys = append(keys, p)
		}
	}
	if len(keys) > 0 {
		fmt.Fprintf(&b, "key %q: ", strings.Join(keys, "."))
	}
	b.WriteString(e.Detail)
	if len(ors) > 0 {
		fmt.Fprintf(&b, " (in %s)", strings.Join(ors, "."))
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalidPolicy) true for every refusal.
func (e *PolicyError) Unwrap() error { return ErrInvalidPolicy }

func policyErr(path []string, rule Rule, format string, a ...any) *PolicyError {
	return &PolicyError{Path: append([]string(nil), path...), Rule: rule, Detail: fmt.Sprintf(format, a...)}
}

func (e *PolicyError) limit(limit, got int) *PolicyError {
	e.Limit, e.Got = limit, got
	return e
}
