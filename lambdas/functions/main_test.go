package functions

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/patterns"
)

// TestStart holds Main to what the four main packages did by hand: a
// setting that cannot work is an error at cold start, and a good one hands
// the runtime an SQS batch handler that runs the function.
func TestStart(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	env := func(m map[string]string) Env { return func(k string) string { return m[k] } }
	for _, tt := range []struct {
		name, fn string
		env      map[string]string
		want     string // error text, or "" for a started handler
	}{
		{"unknown function", "nope", nil, `no function "nope"`},
		{"bad log level", "worker", map[string]string{contract.EnvLogLevel: "loud"}, contract.EnvLogLevel},
		{"responder without its queue", "responder", nil, contract.EnvQueueURL},
		{"bad backoff", "subscriber", map[string]string{contract.EnvRetryBackoff: "soon"}, contract.EnvRetryBackoff},
		{"worker", "worker", nil, ""},
		{"subscriber with claim check", "subscriber", map[string]string{contract.EnvClaimCheckBucket: "payloads"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var started any
			var logs bytes.Buffer
			err := start(tt.fn, env(tt.env), &logs, func(h any) { started = h })
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("start: %v, want an error naming %q", err, tt.want)
				}
				if started != nil {
					t.Fatal("the runtime was started despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h, ok := started.(func(context.Context, events.SQSEvent) (events.SQSEventResponse, error))
			if !ok {
				t.Fatalf("runtime got %T, want an SQS batch handler", started)
			}
			resp, err := h(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: `{"job":1}`}}})
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("handler: %+v, %v", resp, err)
			}
			if !strings.Contains(logs.String(), "m1") {
				t.Errorf("the function did not log the message it handled: %s", logs.String())
			}
		})
	}
	t.Run("application handler", func(t *testing.T) {
		var got []string
		app := func(d *Deps) {
			d.Handler = func(_ context.Context, m *patterns.Message) error { got = append(got, string(m.Body)); return nil }
		}
		var started any
		if err := start("worker", env(nil), &bytes.Buffer{}, func(h any) { started = h }, app); err != nil {
			t.Fatal(err)
		}
		h := started.(func(context.Context, events.SQSEvent) (events.SQSEventResponse, error))
		if _, err := h(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: "order 7"}}}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != "order 7" {
			t.Fatalf("the application's handler got %q, want the one message", got)
		}
	})
	if !errors.Is(start("nope", env(nil), &bytes.Buffer{}, func(any) {}), patterns.ErrInvalidConfig) {
		t.Error("an unknown function is not ErrInvalidConfig")
	}
}
