package functions

import (
	"context"
	"encoding/base64"
	"log/slog"
	"unicode/utf8"

	"github.com/courier-aws/courier/patterns"
)

// maxLoggedBody is how much of a body the subscriber logs.
const maxLoggedBody = 1024

// Subscriber is the filtered subscriber: it consumes a queue chained to a
// topic by a subscription with a filter policy (infra sets it), so it sees
// only what the policy lets through, and logs one "received" line per
// message: id, topic, attributes and the start of the body.
func Subscriber(log *slog.Logger) patterns.Handler {
	return func(ctx context.Context, m *patterns.Message) error {
		body := m.Body
		if len(body) > maxLoggedBody {
			body = body[:maxLoggedBody]
			for len(body) > 0 && !utf8.Valid(body) {
				body = body[:len(body)-1]
			}
		}
		log.InfoContext(ctx, "received",
			"message_id", m.ID, "topic", m.TopicARN, "correlation_id", m.CorrelationID,
			"attributes", attributeValues(m.Attributes), "body", string(body), "bytes", len(m.Body))
		return nil
	}
}

// attributeValues flattens attributes for a log line (binary as base64).
func attributeValues(attrs map[string]patterns.Attribute) map[string]string {
	out := make(map[string]string, len(attrs))
	for k, a := range attrs {
		if a.Binary != nil {
			out[k] = base64.StdEncoding.EncodeToString(a.Binary)
			continue
		}
		out[k] = a.Value
	}
	return out
}
