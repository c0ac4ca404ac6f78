package patterns

import "github.com/courier-aws/courier/patterns/filter"

// Message filter: a subscriber states which messages it wants, and SNS
// delivers only those to it; the publisher sends to one topic, unaware of
// who filters what.
//
// The policies live in package filter: build one (filter.Attrs().Key("color",
// "orange").Build()), or Parse its JSON; either way it is validated against
// SNS's limits before any request and can be matched locally
// (Policy.Match) with SNS's semantics, so a test needs no AWS. Chain
// subscribes a queue with it:
//
//	p, err := filter.Attrs().Key("color", "orange").Build()
//	_, err = patterns.Chain(ctx, snsClient, sqsClient, topicARN, queueURL, func(o *patterns.ChainOptions) { o.Filter = p })
//
// A policy SNS would refuse fails with ErrInvalidFilterPolicy, naming the
// key and the rule, before any request; errors.As with *filter.PolicyError
// gives the rule and the key path as fields.

// FilterAttrs converts a Message's attributes for filter.Policy.Match
// (package filter cannot know Attribute: this package imports it).
// Binary attributes keep their type and no value: SNS does not filter on
// them.
func FilterAttrs(attrs map[string]Attribute) map[string]filter.Attr {
	out := make(map[string]filter.Attr, len(attrs))
	for k, a := range attrs {
		out[k] = filter.Attr{Type: a.DataType, Value: a.Value}
	}
	return out
}
