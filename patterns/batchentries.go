package patterns

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// What the Producer (SendMessageBatch) and the Publisher (PublishBatch)
// share: the SDK's types differ per service, the rules do not.

// batchOutcome reads a batch response: each accepted entry's ids go to
// sent, each refused entry becomes a failure, and an entry the response
// does not name fails as "NoResult": courier never reports as sent what the
// service did not confirm. An id outside the batch is ignored; the first
// answer for an entry counts, acceptances before refusals.
func batchOutcome[S, F any](service string, sent []sentEntry, accepted []S, refused []F,
	acceptedEntry func(S) (id *string, e sentEntry), refusedEntry func(F) (id *string, f entryFailure)) map[int]entryFailure {
	done := make([]bool, len(sent))
	for _, s := range accepted {
		id, e := acceptedEntry(s)
		if i, ok := entryIndex(id, len(sent)); ok && !done[i] {
			done[i], sent[i] = true, e
		}
	}
	failures := make(map[int]entryFailure)
	for _, f := range refused {
		id, e := refusedEntry(f)
		if i, ok := entryIndex(id, len(sent)); ok && !done[i] {
			done[i], failures[i] = true, e
		}
	}
	for i, d := range done {
		if !d {
			failures[i] = entryFailure{Code: "NoResult", Message: service + " returned no result for this entry"}
		}
	}
	return failures
}

func entryIndex(id *string, n int) (int, bool) {
	i, err := strconv.Atoi(aws.ToString(id))
	return i, err == nil && i >= 0 && i < n
}

// attributeValues converts attributes to one service's SDK type, which mk
// makes from the data type and the string or the binary value (a Binary
// attribute has no string value).
func attributeValues[V any](attrs map[string]Attribute, mk func(dataType, value *string, binary []byte) V) map[string]V {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]V, len(attrs))
	for k, a := range attrs {
		var s *string
		if a.Binary == nil {
			s = aws.String(a.Value)
		}
		out[k] = mk(aws.String(a.DataType), s, a.Binary)
	}
	return out
}
