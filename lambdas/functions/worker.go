package functions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/courier-aws/courier/patterns"
)

// Worker is the one-way worker: each message is a job, a JSON object; the
// worker's (trivial) work is to digest it, and it logs one "handled" line
// per job with the message id, so what it did can be counted in the logs.
// A body that is not a JSON object fails, every time: after the queue's
// maxReceiveCount receives the redrive policy moves it to the DLQ.
func Worker(log *slog.Logger) patterns.Handler {
	return func(ctx context.Context, m *patterns.Message) error {
		var job map[string]json.RawMessage
		if err := json.Unmarshal(m.Body, &job); err != nil {
			return fmt.Errorf("%w: worker: message %s: the job is not a JSON object: %v", patterns.ErrMalformedMessage, m.ID, err)
		}
		sum := sha256.Sum256(m.Body)
		log.InfoContext(ctx, "handled",
			"message_id", m.ID, "group_id", m.GroupID, "receive_count", m.ReceiveCount,
			"fields", len(job), "bytes", len(m.Body), "sha256", hex.EncodeToString(sum[:]))
		return nil
	}
}
