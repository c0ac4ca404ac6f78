//go:build unix

package runtimeapi_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-aws/courier/lambdas/runtimeapi"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// echoCode builds testdata/echo as a bootstrap for the host (once per run)
// and returns the directory holding it, as Lambda unzips a function.
func echoCode(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "runtimeapi-echo-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(buildDir, "bootstrap"), "./testdata/echo")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func listen(t *testing.T, cfg runtimeapi.Config) *runtimeapi.Environment {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = echoCode(t)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	env, err := runtimeapi.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

func invoke(t *testing.T, env *runtimeapi.Environment, id, payload string) runtimeapi.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := env.Invoke(ctx, runtimeapi.Invocation{
		RequestID: id, FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:echo", Payload: []byte(payload),
	})
	if err != nil {
		t.Fatalf("Invoke %s: %v", id, err)
	}
	return res
}

func errorType(t *testing.T, res runtimeapi.Result) string {
	t.Helper()
	if !res.IsError {
		t.Fatalf("want an error, got %s", res.Payload)
	}
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal(res.Payload, &doc); err != nil {
		t.Fatalf("error document %q: %v", res.Payload, err)
	}
	return doc.ErrorType
}

// One environment, invocation after invocation: answers, errors, the logs
// of each, and the same process throughout (one cold start).
func TestInvoke(t *testing.T) {
	env := listen(t, runtimeapi.Config{Env: []string{"COURIER_TEST_ENV=from-config"}})
	for i, tc := range []struct {
		payload, want, wantErrType string
	}{
		{payload: `{"echo":"a"}`, want: `{"echo":"a","env":"from-config"}`},
		{payload: `{"fail":"boom"}`, wantErrType: "errorString"},
		{payload: `{"echo":"b"}`, want: `{"echo":"b","env":"from-config"}`},
	} {
		id := "req-" + string(rune('1'+i))
		res := invoke(t, env, id, tc.payload)
		if tc.wantErrType != "" {
			if got := errorType(t, res); got != tc.wantErrType {
				t.Errorf("%s: errorType %q, want %q (%s)", id, got, tc.wantErrType, res.Payload)
			}
		} else if res.IsError || string(res.Payload) != tc.want {
			t.Errorf("%s: got %s (error %v), want %s", id, res.Payload, res.IsError, tc.want)
		}
		for _, line := range []string{"START RequestId: " + id, "echo: " + tc.payload, "END RequestId: " + id, "REPORT RequestId: " + id} {
			if !strings.Contains(res.Logs, line) {
				t.Errorf("%s: logs lack %q:\n%s", id, line, res.Logs)
			}
		}
		if strings.Count(res.Logs, "START RequestId") != 1 {
			t.Errorf("%s: logs hold other invocations:\n%s", id, res.Logs)
		}
	}
}

// The function's timeout ends an invocation whose handler ignores its
// deadline: the process group is killed, the error says Task timed out, and
// the next invocation gets a fresh bootstrap.
func TestTimeout(t *testing.T) {
	env := listen(t, runtimeapi.Config{Timeout: time.Second})
	start := time.Now()
	res := invoke(t, env, "slow", `{"sleep_ms":5000}`)
	took := time.Since(start)
	if got := errorType(t, res); got != "Sandbox.Timedout" {
		t.Fatalf("errorType %q, want Sandbox.Timedout: %s", got, res.Payload)
	}
	if !strings.Contains(string(res.Payload), "Task timed out after 1.00 seconds") {
		t.Errorf("payload %s", res.Payload)
	}
	if took > 3*time.Second {
		t.Errorf("timed out after %v, want about 1s", took)
	}
	if res = invoke(t, env, "after", `{"echo":"again"}`); res.IsError {
		t.Fatalf("after a timeout: %s", res.Payload)
	}
}

// A bootstrap that exits mid-invocation, or cannot initialise, is the
// invocation's Runtime.ExitError; the environment starts it again.
func TestExit(t *testing.T) {
	env := listen(t, runtimeapi.Config{})
	if got := errorType(t, invoke(t, env, "exit", `{"exit":3}`)); got != "Runtime.ExitError" {
		t.Errorf("exit: errorType %q", got)
	}
	if res := invoke(t, env, "after", `{"echo":"x"}`); res.IsError {
		t.Errorf("after an exit: %s", res.Payload)
	}

	broken := listen(t, runtimeapi.Config{Env: []string{"COURIER_TEST_INIT_FAIL=1"}})
	res := invoke(t, broken, "init", `{"echo":"x"}`)
	if got := errorType(t, res); got != "Runtime.ExitError" {
		t.Errorf("init: errorType %q (%s)", got, res.Payload)
	}
	if !strings.Contains(res.Logs, "init failed on purpose") {
		t.Errorf("init: logs lack the bootstrap's output:\n%s", res.Logs)
	}
}

// Close kills the bootstrap; Invoke afterwards fails with ErrClosed.
func TestClose(t *testing.T) {
	env := listen(t, runtimeapi.Config{})
	if err := env.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Invoke(context.Background(), runtimeapi.Invocation{RequestID: "x", Payload: []byte("{}")}); err != runtimeapi.ErrClosed {
		t.Fatalf("Invoke after Close: %v, want ErrClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := echoCode(t)
	for _, tc := range []struct {
		name string
		cfg  runtimeapi.Config
	}{
		{"no dir", runtimeapi.Config{Timeout: time.Second}},
		{"no timeout", runtimeapi.Config{Dir: dir}},
		{"no bootstrap", runtimeapi.Config{Dir: t.TempDir(), Timeout: time.Second}},
	} {
		if err := tc.cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", tc.name, tc.cfg)
		}
	}
}
