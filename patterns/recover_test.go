package patterns_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/courier-aws/courier/patterns"
)

func TestRecover(t *testing.T) {
	h := patterns.Recover(func(_ context.Context, m *patterns.Message) error {
		if string(m.Body) == "boom" {
			panic("boom")
		}
		return nil
	})
	err := h(context.Background(), &patterns.Message{Body: []byte("boom")})
	if !errors.Is(err, patterns.ErrHandlerPanic) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic became %v, want ErrHandlerPanic naming the value", err)
	}
	if err := h(context.Background(), &patterns.Message{Body: []byte("fine")}); err != nil {
		t.Fatalf("a handler that returns nil: %v", err)
	}
}
