// Package lambdatest helps the integration tests of lambdas/ run handlers
// under the local runner against an emulator.
package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/lambdas/localrunner"
	"github.com/courier-aws/courier/patterns"
)

// Discard is a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Running is a local runner running in the background.
type Running struct {
	*localrunner.Runner
	mu   sync.Mutex
	invs []localrunner.Invocation
	stop func()
}

// Invocations returns what the runner has invoked so far.
func (r *Running) Invocations() []localrunner.Invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.invs)
}

// Stop stops the runner and waits for Run to return (nil, or the test fails).
func (r *Running) Stop() { r.stop() }

// Backend is what Start needs of a test backend (internal/backend's
// *Backend): an SQS client. An interface, so that lambdas/ does not import
// the root internal/.
type Backend interface {
	SQS(counters ...*patterns.RequestCounter) *sqs.Client
}

// Start runs handler under a local runner on cfg.QueueURL until the test
// ends or Stop. WaitTime defaults to 1s and Logger to Discard, so that
// tests stop quickly and quietly.
func Start(t *testing.T, b Backend, cfg localrunner.Config, handler any) *Running {
	t.Helper()
	run := &Running{}
	observe := cfg.Observe
	cfg.Observe = func(i localrunner.Invocation) {
		run.mu.Lock()
		run.invs = append(run.invs, i)
		run.mu.Unlock()
		if observe != nil {
			observe(i)
		}
	}
	if cfg.WaitTime == 0 {
		cfg.WaitTime = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = Discard()
	}
	r, err := localrunner.New(b.SQS(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	run.Runner = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, handler) }()
	var once sync.Once
	run.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("local runner: Run: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Error("the local runner did not stop within 60s")
			}
		})
	}
	t.Cleanup(run.stop)
	return run
}

// WaitFor polls cond until it holds, failing the test after 60s.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 60s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logs is a concurrency-safe log sink for a JSON slog handler.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Lines returns the JSON log lines whose "msg" is msg.
func (l *Logs) Lines(msg string) []map[string]any {
	l.mu.Lock()
	text := l.b.String()
	l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(text, "\n") {
		var v map[string]any
		if json.Unmarshal([]byte(line), &v) == nil && v["msg"] == msg {
			out = append(out, v)
		}
	}
	return out
}

// Values returns field key of the lines whose "msg" is msg, as strings.
func (l *Logs) Values(msg, key string) []string {
	var out []string
	for _, v := range l.Lines(msg) {
		s, _ := v[key].(string)
		out = append(out, s)
	}
	return out
}
