//go:build unix

package runtimeapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/courier-aws/courier/internal/backend"
)

// hostArchitecture is the Lambda architecture of this machine's GOARCH.
func hostArchitecture(t *testing.T) types.Architecture {
	switch runtime.GOARCH {
	case "amd64":
		return types.ArchitectureX8664
	case "arm64":
		return types.ArchitectureArm64
	}
	t.Skipf("no Lambda architecture for GOARCH %s", runtime.GOARCH)
	return ""
}

func zipCode(t *testing.T, dir string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err == nil {
		_, err = w.Write(data)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// createFunction creates the echo function on LocalStack and waits until it
// is Active; it skips when LocalStack cannot run it (no lambda service, or
// not started with courier's executor).
func createFunction(t *testing.T, client *lambda.Client, timeout int32) string {
	t.Helper()
	ctx := context.Background()
	name := backend.UniqueName(t)
	_, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName:  aws.String(name),
		Runtime:       types.RuntimeProvidedal2023,
		Architectures: []types.Architecture{hostArchitecture(t)},
		Handler:       aws.String("bootstrap"),
		Role:          aws.String("arn:aws:iam::000000000000:role/courier-test"),
		Code:          &types.FunctionCode{ZipFile: zipCode(t, echoCode(t))},
		Timeout:       aws.Int32(timeout),
		Environment:   &types.Environment{Variables: map[string]string{"COURIER_TEST_ENV": "deployed"}},
	})
	if err != nil {
		t.Skipf("LocalStack has no usable lambda service (scripts/emulator.sh starts it with lambda): %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		switch out.Configuration.State {
		case types.StateActive:
			return name
		case types.StateFailed:
			reason := aws.ToString(out.Configuration.StateReason)
			if !strings.Contains(reason, "courier") {
				t.Skipf("LocalStack does not run courier's executor (start it with scripts/emulator.sh: LAMBDA_RUNTIME_EXECUTOR=courier): %s", reason)
			}
			t.Fatalf("function failed: %s", reason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("function still %s after 30s", out.Configuration.State)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A provided.al2023 function runs inside LocalStack host mode through
// courier's runtime executor: Invoke returns its answer and its logs, an
// error is FunctionError Unhandled, and the function's timeout is enforced.
func TestLocalStackExecutor(t *testing.T) {
	b := backend.Require(t, "localstack")
	client := lambda.NewFromConfig(b.Config())
	name := createFunction(t, client, 2)
	ctx := context.Background()
	invoke := func(payload string) *lambda.InvokeOutput {
		t.Helper()
		out, err := client.Invoke(ctx, &lambda.InvokeInput{
			FunctionName: aws.String(name), Payload: []byte(payload), LogType: types.LogTypeTail,
		})
		if err != nil {
			t.Fatalf("Invoke %s: %v", payload, err)
		}
		return out
	}

	out := invoke(`{"echo":"hello"}`)
	if got, want := string(out.Payload), `{"echo":"hello","env":"deployed"}`; got != want || out.FunctionError != nil {
		t.Errorf("payload %s (FunctionError %v), want %s", got, aws.ToString(out.FunctionError), want)
	}
	logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	for _, line := range []string{"START RequestId:", `echo: {"echo":"hello"}`, "END RequestId:", "REPORT RequestId:"} {
		if !strings.Contains(string(logs), line) {
			t.Errorf("logs lack %q:\n%s", line, logs)
		}
	}

	out = invoke(`{"fail":"boom"}`)
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "boom") {
		t.Errorf("failing invocation: FunctionError %v, payload %s", aws.ToString(out.FunctionError), out.Payload)
	}

	start := time.Now()
	out = invoke(`{"sleep_ms":10000}`)
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("a 2 s function answered after %v", took)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "Task timed out after 2.00 seconds") {
		t.Errorf("timed-out invocation: FunctionError %v, payload %s", aws.ToString(out.FunctionError), out.Payload)
	}
	if out = invoke(`{"echo":"again"}`); out.FunctionError != nil {
		t.Errorf("after a timeout: %s", out.Payload)
	}
}
