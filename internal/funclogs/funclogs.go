// Package funclogs reads what a Lambda function deployed to LocalStack
// logged. LocalStack stores each invocation's output (START, the
// bootstrap's own lines, END, REPORT) in CloudWatch Logs, group
// /aws/lambda/<name>, one stream per execution environment. The demo and
// the deployed functions' tests read it to show what the function itself
// did. CloudWatch Logs' JSON API is called directly, signed as the SDK
// would: the module does not depend on its client for this.
package funclogs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ErrNoLogGroup: the function has not logged yet (CloudWatch Logs answers
// ResourceNotFoundException).
var ErrNoLogGroup = errors.New("no such log group (the function has not run yet)")

// callTimeout bounds each request.
const callTimeout = 10 * time.Second

// Reader reads functions' logs at endpoint with cfg's credentials and region.
type Reader struct {
	cfg      aws.Config
	endpoint string
	client   *http.Client
}

// New returns a Reader for the CloudWatch Logs at endpoint (LocalStack's).
func New(cfg aws.Config, endpoint string) *Reader {
	return &Reader{cfg: cfg, endpoint: endpoint, client: &http.Client{Timeout: callTimeout}}
}

// Event is one line a function logged.
type Event struct {
	Stream  string    // the log stream: one per execution environment
	Time    time.Time // when LocalStack stored it (all lines of an invocation alike)
	Message string
	JSON    map[string]any // the line decoded, when it is one of the function's JSON lines
}

// Msg returns the slog message of a JSON line ("" for other lines).
func (e Event) Msg() string { s, _ := e.JSON["msg"].(string); return s }

// Str returns field key of a JSON line as a string.
func (e Event) Str(key string) string { s, _ := e.JSON[key].(string); return s }

var startLine = regexp.MustCompile(`^START RequestId: (\S+)`)

// RequestID is the request id of a START line, or "".
func (e Event) RequestID() string {
	if m := startLine.FindStringSubmatch(e.Message); m != nil {
		return m[1]
	}
	return ""
}

// Events returns what function logged since since, oldest first.
func (r *Reader) Events(ctx context.Context, function string, since time.Time) ([]Event, error) {
	var out []Event
	in := map[string]any{"logGroupName": "/aws/lambda/" + function, "startTime": since.Add(-time.Second).UnixMilli(), "interleaved": true}
	for {
		var page struct {
			Events []struct {
				LogStreamName string `json:"logStreamName"`
				Timestamp     int64  `json:"timestamp"`
				Message       string `json:"message"`
			} `json:"events"`
			NextToken string `json:"nextToken"`
		}
		if err := r.call(ctx, "FilterLogEvents", in, &page); err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			ev := Event{Stream: e.LogStreamName, Time: time.UnixMilli(e.Timestamp), Message: strings.TrimRight(e.Message, "\n")}
			if strings.HasPrefix(ev.Message, "{") {
				_ = json.Unmarshal([]byte(ev.Message), &ev.JSON)
			}
			out = append(out, ev)
		}
		if page.NextToken == "" || len(page.Events) == 0 {
			return out, nil
		}
		in["nextToken"] = page.NextToken
	}
}

// Invocation is one invocation's lines: the function's JSON lines between
// LocalStack's START line for it and the next START in its stream.
type Invocation struct {
	RequestID string
	Lines     []Event
}

// Invocations groups events by invocation.
func Invocations(evs []Event) []Invocation {
	var out []Invocation
	current := map[string]int{} // stream -> index in out of its invocation under way
	for _, e := range evs {
		if id := e.RequestID(); id != "" {
			out = append(out, Invocation{RequestID: id})
			current[e.Stream] = len(out) - 1
			continue
		}
		if i, ok := current[e.Stream]; ok && e.JSON != nil {
			out[i].Lines = append(out[i].Lines, e)
		}
	}
	return out
}

func (r *Reader) call(ctx context.Context, op string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Logs_20140328."+op)
	creds, err := r.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "logs", r.cfg.Region, time.Now()); err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("logs %s: read: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		// An AWS JSON error names its kind in __type ("ResourceNotFoundException",
		// possibly with a namespace prefix).
		var apiErr struct {
			Type string `json:"__type"`
		}
		_ = json.Unmarshal(data, &apiErr)
		if apiErr.Type == "ResourceNotFoundException" || strings.HasSuffix(apiErr.Type, "#ResourceNotFoundException") {
			return fmt.Errorf("logs %s: %w", op, ErrNoLogGroup)
		}
		return fmt.Errorf("logs %s: HTTP %d: %s", op, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}
