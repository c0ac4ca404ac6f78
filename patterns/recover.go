package patterns

import (
	"context"
	"errors"
	"fmt"
)

// ErrHandlerPanic: a handler panicked. Consumer, HTTPSubscriber and the
// Lambda adapter turn the panic into an error that wraps this one (the
// panic value in its text), so that a panicking handler fails its message,
// not the process.
var ErrHandlerPanic = errors.New("courier: handler panicked")

// Recover is a handler wrapper that turns a panic of h into an error
// wrapping ErrHandlerPanic. Consumer, HTTPSubscriber and the Lambda
// adapter already run every handler this way; Recover is for code that
// calls a Handler itself.
func Recover(h Handler) Handler {
	return func(ctx context.Context, m *Message) error { return callSafely(ctx, h, m) }
}

// callSafely runs h, turning a panic into an error.
func callSafely(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, p)
		}
	}()
	return h(ctx, m)
}
