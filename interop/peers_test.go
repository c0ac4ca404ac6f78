package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

const (
	// peerTimeout bounds every Python process (its context's deadline).
	peerTimeout = 60 * time.Second
	// peerWait is what a Python program is told to wait at most for what
	// it expects, below peerTimeout so that it reports its own reason.
	peerWait = "30"
	// slow: a step that takes longer is logged (an emulator under load).
	slow = 5 * time.Second
	// tp is the W3C traceparent the request-response tests carry.
	tp  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tp2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

// errText is an error text with what form encoding must carry: spaces,
// '&', '=', '%', '+', quotes and non-ASCII characters.
const errText = `no stock for "sku=A&B" at 100% + tax, ünïcode ✓`

// logger is courier's: warnings and errors to stderr, which go test shows
// when a test fails.
var logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// repoRoot is the repository's root: the directory above with go.mod and patterns/.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "patterns")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod and patterns/) not found above the working directory")
		}
		dir = parent
	}
}

// needPeers returns the Python of .venv-peers, or skips the test when
// scripts/peers.sh has not made it.
func needPeers(t *testing.T) string {
	t.Helper()
	py := filepath.Join(repoRoot(t), ".venv-peers", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no Python peers (%s missing): run scripts/peers.sh (make test does)", py)
	}
	return py
}

// peer is one Python program run as a subprocess.
type peer struct {
	t              *testing.T
	name           string
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	stdout, stderr bytes.Buffer
	once           sync.Once
	err            error
	started        time.Time
}

// startPeer starts interop/python/<script> with args, stdin (JSON of in,
// when in is not nil) and the backend's endpoint, region and credentials in
// its environment. Its context's deadline is peerTimeout.
func startPeer(t *testing.T, b *backend.Backend, in any, script string, args ...string) *peer {
	t.Helper()
	py := needPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	p := &peer{t: t, name: script + " " + strings.Join(args, " "), cancel: cancel}
	p.cmd = exec.CommandContext(ctx, py, append([]string{filepath.Join(repoRoot(t), "interop", "python", script)}, args...)...)
	p.cmd.Env = peerEnv(t, b)
	p.cmd.WaitDelay = 5 * time.Second
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		p.cmd.Stdin = bytes.NewReader(data)
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", p.name, err)
	}
	t.Cleanup(func() { _ = p.stop() })
	return p
}

// stop ends the program if it still runs and returns its stderr.
func (p *peer) stop() string {
	p.cancel()
	_ = p.finish()
	return p.stderr.String()
}

func (p *peer) finish() error {
	p.once.Do(func() {
		p.err = p.cmd.Wait()
		p.cancel()
	})
	return p.err
}

// wait waits for the program to exit and decodes its JSON output into out;
// it fails the test with the program's stderr if it failed.
func (p *peer) wait(out any) {
	p.t.Helper()
	err := p.finish()
	if d := time.Since(p.started); d > slow {
		p.t.Logf("slow: python %s took %v (stderr %q)", p.name, d.Round(time.Millisecond), p.stderr.String())
	}
	if err != nil {
		p.t.Fatalf("python %s: %v\nstderr:\n%s", p.name, err, p.stderr.String())
	}
	if err := json.Unmarshal(p.stdout.Bytes(), out); err != nil {
		p.t.Fatalf("python %s: output %.300q: %v\nstderr:\n%s", p.name, p.stdout.String(), err, p.stderr.String())
	}
}

// runPeer runs a Python program to its end and decodes its JSON output into out.
func runPeer(t *testing.T, b *backend.Backend, in, out any, script string, args ...string) {
	t.Helper()
	startPeer(t, b, in, script, args...).wait(out)
}

// peerEnv is the environment of a Python program: this process's, less
// every AWS_ variable, plus the backend's endpoint, region and
// credentials. No shared config or credentials file is read for an
// emulator; Python writes no __pycache__ into the work tree.
func peerEnv(t *testing.T, b *backend.Backend) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	cfg := b.Config()
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("credentials of %s: %v", b.Name, err)
	}
	env = append(env,
		"AWS_ACCESS_KEY_ID="+creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey,
		"AWS_REGION="+cfg.Region,
		"AWS_DEFAULT_REGION="+cfg.Region,
		"PYTHONDONTWRITEBYTECODE=1",
	)
	if creds.SessionToken != "" {
		env = append(env, "AWS_SESSION_TOKEN="+creds.SessionToken)
	}
	if b.Endpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL="+b.Endpoint, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
	}
	return env
}

// jsonAttr is a message attribute as the Python programs read and write
// it (boto3's form; encoding/json writes and reads BinaryValue in base64).
type jsonAttr struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue,omitempty"`
	BinaryValue []byte `json:"BinaryValue,omitempty"`
}

func toJSONAttrs(attrs map[string]patterns.Attribute) map[string]jsonAttr {
	out := make(map[string]jsonAttr, len(attrs))
	for name, a := range attrs {
		out[name] = jsonAttr{DataType: a.DataType, StringValue: a.Value, BinaryValue: a.Binary}
	}
	return out
}

// attrDiff says how got differs from want, "" when it does not.
func attrDiff(want, got map[string]jsonAttr) string {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s missing (want %+v)", name, w))
		case g.DataType != w.DataType || g.StringValue != w.StringValue || !bytes.Equal(g.BinaryValue, w.BinaryValue):
			diffs = append(diffs, fmt.Sprintf("%s = %+v, want %+v", name, g, w))
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s = %+v", name, g))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

// userAttributes are 9 attributes of the application's: the most a
// claim-checked message may carry (docs/wire.md, "Claim check"). custom
// adds SQS's custom types (String.json, Number.int), which SNS does not
// take; binary puts a Binary one in place of "source".
func userAttributes(custom, binary bool) map[string]patterns.Attribute {
	a := map[string]patterns.Attribute{
		"order-id": patterns.StringAttr("ord-42"),
		"customer": patterns.StringAttr("Zoë & Søn = 100% ✓"),
		"lang":     patterns.StringAttr("日本語"),
		"amount":   {DataType: "Number", Value: "1234.5"},
		"ratio":    {DataType: "Number", Value: "0.00025"},
		"count":    {DataType: "Number", Value: "7"},
		"schema":   patterns.StringAttr(`{"v":2,"tags":["a","b"]}`),
		"priority": {DataType: "Number", Value: "3"},
		"source":   patterns.StringAttr("interop"),
	}
	if custom {
		a["schema"] = patterns.Attribute{DataType: "String.json", Value: a["schema"].Value}
		a["priority"] = patterns.Attribute{DataType: "Number.int", Value: "3"}
	}
	if binary {
		delete(a, "source")
		a["thumbnail"] = patterns.BinaryAttr([]byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff})
	}
	return a
}

// largeBody is n bytes of UTF-8 text, with multi-byte characters (so that
// a length in characters and one in bytes differ) and numbers that make
// every stretch different (a truncated or shuffled copy shows).
func largeBody(n int) string {
	var b strings.Builder
	for i := 0; ; i++ {
		chunk := fmt.Sprintf("%d ünï✓ ", i)
		if b.Len()+len(chunk) > n {
			break
		}
		b.WriteString(chunk)
	}
	b.WriteString(strings.Repeat(".", n-b.Len()))
	return b.String()
}

// consume runs a Consumer of queueURL with claim check cc until it has
// handled n messages (at most a minute) and returns them.
func consume(t *testing.T, b *backend.Backend, queueURL string, cc *patterns.ClaimCheck, n int) []*patterns.Message {
	t.Helper()
	c, err := patterns.NewConsumer(b.SQS(), queueURL, func(o *patterns.ConsumerOptions) {
		o.ClaimCheck, o.WaitTime, o.Logger = cc, time.Second, logger
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > slow {
			t.Logf("slow: consuming %d messages from %s took %v (stats %+v)", n, queueURL, d.Round(time.Millisecond), c.Stats())
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu   sync.Mutex
		got  []*patterns.Message
		done = make(chan struct{})
		ran  = make(chan error, 1)
	)
	go func() {
		ran <- c.Run(ctx, func(_ context.Context, m *patterns.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m)
			if len(got) == n {
				close(done)
			}
			return nil
		})
	}()
	select {
	case <-done:
	case err := <-ran:
		t.Fatalf("consumer of %s stopped: %v", queueURL, err)
	case <-time.After(time.Minute):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("consumer of %s: %d of %d messages in a minute (stats %+v)", queueURL, len(got), n, c.Stats())
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("consumer of %s: %v", queueURL, err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("consumer of %s did not stop in a minute", queueURL)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// runBackground runs fn until the test ends, then cancels it and waits
// (at most a minute) for it to return.
func runBackground(t *testing.T, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("stopped with %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("did not stop within a minute of its context's end")
		}
	})
}
