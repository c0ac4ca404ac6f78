package funclogs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

func TestInvocations(t *testing.T) {
	evs := []Event{
		{Stream: "a", Message: "START RequestId: r1 Version: $LATEST"},
		{Stream: "b", Message: "START RequestId: r2 Version: $LATEST"},
		{Stream: "a", Message: `{"msg":"handled","message_id":"m1"}`, JSON: map[string]any{"msg": "handled", "message_id": "m1"}},
		{Stream: "a", Message: "END RequestId: r1"},
		{Stream: "b", Message: `{"msg":"handled","message_id":"m2"}`, JSON: map[string]any{"msg": "handled", "message_id": "m2"}},
		{Stream: "c", Message: `{"msg":"orphan"}`, JSON: map[string]any{"msg": "orphan"}},
	}
	got := Invocations(evs)
	if len(got) != 2 || got[0].RequestID != "r1" || got[1].RequestID != "r2" {
		t.Fatalf("invocations %+v", got)
	}
	if len(got[0].Lines) != 1 || got[0].Lines[0].Str("message_id") != "m1" || got[1].Lines[0].Msg() != "handled" {
		t.Fatalf("lines %+v", got)
	}
}

// A missing log group is ErrNoLogGroup by the error's __type, and any
// other refusal is an error naming the status.
func TestCallErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   error
	}{
		{400, `{"__type":"ResourceNotFoundException","message":"The specified log group does not exist."}`, ErrNoLogGroup},
		{400, `{"__type":"com.amazonaws.logs#ResourceNotFoundException"}`, ErrNoLogGroup},
		{400, `{"__type":"InvalidParameterException","message":"ResourceNotFoundException in the text"}`, nil},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(c.body))
		}))
		cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
		_, err := New(cfg, srv.URL).Events(context.Background(), "worker", time.Now())
		srv.Close()
		if err == nil {
			t.Fatalf("%s: no error", c.body)
		}
		if c.want != nil && !errors.Is(err, c.want) || c.want == nil && errors.Is(err, ErrNoLogGroup) {
			t.Errorf("%s: %v", c.body, err)
		}
	}
}
