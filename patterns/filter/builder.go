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
// paths ("order.total") for nested properties.
func OnBody() *Builder { return &Builder{scope: Body, root: map[string]any{}} }

// Key adds a key with its conditions (ORed): plain strings and numbers match
// exactly; Prefix, Suffix, AnythingBut, Numeric, Exists, EqualsIgnoreCase
// and CIDR build the operators.
func (b *Builder) Key(path string, conds ...any) *Builder {
	obj := b.root
	parts := []string{path}
	if b.scope == Body {
		parts = strings.Split(path, ".")
	}
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

// Numeric compares numbers: Numeric("=", 5), Numeric(">", 0, "<=", 100).
func Numeric(opsAndValues ...any) any { return map[string]any{"numeric": opsAndValues} }
