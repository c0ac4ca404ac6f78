package patterns_test

import (
	"context"
	"errors"
	"testing"

	"github.com/courier-aws/courier/patterns"
)

// A duplicate send: the producer retried, SQS took the message twice, as
// two messages with two ids. The default key (the message id) runs the
// handler for each; DeduplicationKey and BodyHashKey run it once.
func TestIdempotentDuplicateSend(t *testing.T) {
	first := &patterns.Message{ID: "id-1", Body: []byte(`{"order":7}`), GroupID: "g", DeduplicationID: "order-7"}
	again := &patterns.Message{ID: "id-2", Body: []byte(`{"order":7}`), GroupID: "g", DeduplicationID: "order-7"}
	other := &patterns.Message{ID: "id-3", Body: []byte(`{"order":8}`), GroupID: "g", DeduplicationID: "order-8"}
	cases := []struct {
		name string
		key  func(*patterns.Message) (string, error)
		runs int
	}{
		{"message id (default)", nil, 3},
		{"deduplication id", patterns.DeduplicationKey, 2},
		{"body hash", patterns.BodyHashKey, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runs := 0
			h, err := patterns.Idempotent(func(context.Context, *patterns.Message) error { runs++; return nil }, memoryIdempotencyStore(), func(o *patterns.IdempotencyOptions) {
				o.Key = tc.key
				o.Logger = discardLogger()
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []*patterns.Message{first, again, other} {
				if err := h(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			if runs != tc.runs {
				t.Fatalf("handler ran %d times, want %d", runs, tc.runs)
			}
		})
	}
}

func TestDeduplicationKeyNeedsOne(t *testing.T) {
	if _, err := patterns.DeduplicationKey(&patterns.Message{ID: "m", Body: []byte("x")}); !errors.Is(err, patterns.ErrMalformedMessage) {
		t.Fatalf("no deduplication id: %v, want ErrMalformedMessage", err)
	}
	a, _ := patterns.BodyHashKey(&patterns.Message{Body: []byte("x")})
	b, _ := patterns.BodyHashKey(&patterns.Message{Body: []byte("y")})
	if a == b || a == "" {
		t.Fatalf("body hash keys %q and %q", a, b)
	}
}
