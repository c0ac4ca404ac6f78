package filter

import "strings"

// Builder assembles a policy key by key; Build validates it.
//
//	p, err := filter.Attrs().Key("color", "orange").Build() // {"color":["orange"]}
type Builder struct {
	scope Scope
	root  map[string]any
}

// Attrs starts a policy on message attributes.
func Attrs() *Builder { return &Builder{scope: Attributes, root: map[string]any{}} }

// OnBody starts a policy on the JSON message body; keys may be dotted
// paths ("order.total") for nested properties (KeyPath for a key that
// itself holds a dot).
func OnBody() *Builder { return &Builder{scope: Body, root: map[string]any{}} }

// Key adds a key with its conditions (ORed): plain strings and numbers match
// exactly; Prefix, Suffix, Wildcard, AnythingBut (and its Prefix, Suffix,
// Wildcard forms), Numeric, Exists, EqualsIgnoreCase and CIDR build the
// operators. In the body scope a dotted path nests: "order.total" is
// {"order":{"total":[...]}}.
func (b *Builder) Key(path string, conds ...any) *Builder {
	parts := []string{path}
	if b.scope == Body {
		parts = strings.Split(path, ".")
	}
	return b.KeyPath(parts, conds...)
}

// KeyPath is Key with the path given as its object keys, each taken
// literally: KeyPath([]string{"order", "ship.to"}, ...) is
// {"order":{"ship.to":[...]}}. SNS matches a key as if every key were
// joined by dots, so both spellings find the same messages; KeyPath
// writes the one a policy should show. More than one key needs the body
// scope (Build refuses nesting on attributes).
func (b *Builder) KeyPath(path []string, conds ...any) *Builder {
	if len(path) == 0 {
		path = []string{""}
	}
	obj := b.root
	parts := path
	for _, p := range parts[:len(parts)-1] {
		next, ok := obj[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[p] = next
		}
		obj = next
	}
	obj[parts[len(parts)-1]] = append([]any{}, conds...)
	return b
}

// Or adds "$or": the message must match at least one of the alternatives
// (each a Builder of the same scope; give at least two).
func (b *Builder) Or(alts ...*Builder) *Builder {
	var arr []any
	for _, a := range alts {
		arr = append(arr, a.root)
	}
	b.root["$or"] = arr
	return b
}

// Build returns the valid policy, or an error naming what SNS would refuse.
func (b *Builder) Build() (*Policy, error) {
	return Parse(string(marshal(b.root)), b.scope)
}

// Prefix matches strings that begin with s.
func Prefix(s string) any { return map[string]any{"prefix": s} }

// Suffix matches strings that end with s.
func Suffix(s string) any { return map[string]any{"suffix": s} }

// Wildcard matches strings by a pattern where "*" stands for any run of
// characters (at most three "*", never two in a row; "\\*" is a literal
// "*"): Wildcard("*.png").
func Wildcard(pattern string) any { return map[string]any{"wildcard": pattern} }

// EqualsIgnoreCase matches s in any case.
func EqualsIgnoreCase(s string) any { return map[string]any{"equals-ignore-case": s} }

// CIDR matches IP addresses (as strings) in the block.
func CIDR(block string) any { return map[string]any{"cidr": block} }

// Exists matches when the key is present (true) or absent (false).
func Exists(present bool) any { return map[string]any{"exists": present} }

// AnythingBut matches a present value that is none of values (strings or
// numbers).
func AnythingBut(values ...any) any { return map[string]any{"anything-but": values} }

// AnythingButPrefix matches a present string that does not begin with s.
func AnythingButPrefix(s string) any {
	return map[string]any{"anything-but": map[string]any{"prefix": s}}
}

// AnythingButSuffix matches a present string that does not end with s.
func AnythingButSuffix(s string) any {
	return map[string]any{"anything-but": map[string]any{"suffix": s}}
}

// AnythingButWildcard matches a present string that the wildcard pattern
// does not match.
func AnythingButWildcard(pattern string) any {
	return map[string]any{"anything-but": map[string]any{"wildcard": pattern}}
}

// Numeric compares numbers: Numeric("=", 5), Numeric(">", 0, "<=", 100).
func Numeric(opsAndValues ...any) any { return map[string]any{"numeric": opsAndValues} }
