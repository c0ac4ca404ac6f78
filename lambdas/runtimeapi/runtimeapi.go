//go:build unix

// Package runtimeapi runs one Lambda execution environment as local
// processes: a provided.al2023 `bootstrap` started as a child process, and
// the Lambda Runtime API it talks to (next invocation, response, error,
// init error) served on a loopback port. It is what courier's LocalStack
// runtime executor (localstack/executor) starts for each execution
// environment, so functions deployed with `cdk deploy` run inside LocalStack
// host mode without Docker; cmd/courier-lambda-runtime is its main.
//
// Like the Lambda service, an Environment:
//   - initialises the bootstrap once and reuses it for invocation after
//     invocation, one at a time;
//   - gives each invocation the function's timeout as its deadline and, when
//     the bootstrap has not answered by then, kills its process group and
//     reports "Task timed out"; the next invocation initialises it again;
//   - reports a bootstrap that calls /init/error or exits as the
//     invocation's error (Runtime.ExitError), and initialises again next time;
//   - returns the bootstrap's output during the invocation, framed by
//     START, END and REPORT lines, as the invocation's logs.
//
// What it does not do: isolate the function (it runs as the emulator's user
// on the host, with the host's files and network), limit memory, or run any
// architecture but the host's. See README.md ("Functions on LocalStack").
package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes one execution environment.
type Config struct {
	// Dir holds the function's unzipped code; Dir/bootstrap is started with
	// Dir as its working directory and LAMBDA_TASK_ROOT.
	Dir string
	// Env is the function's environment (KEY=value), as the Lambda service
	// sets it; AWS_LAMBDA_RUNTIME_API and LAMBDA_TASK_ROOT are added.
	Env []string
	// Timeout is the function's timeout: each invocation's deadline.
	Timeout time.Duration
	// InitTimeout bounds an initialisation (default 10 s, Lambda's limit).
	InitTimeout time.Duration
	// Output receives everything the bootstrap writes (default: discarded);
	// each invocation's share is also returned in Result.Logs.
	Output io.Writer
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("runtimeapi: Config.Dir is empty")
	case c.Timeout <= 0:
		return fmt.Errorf("runtimeapi: Config.Timeout %v must be positive", c.Timeout)
	case c.InitTimeout < 0:
		return fmt.Errorf("runtimeapi: Config.InitTimeout %v is negative", c.InitTimeout)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "bootstrap")); err != nil {
		return fmt.Errorf("runtimeapi: no bootstrap in the function's code: %w", err)
	}
	return nil
}

// Invocation is one request, as the Lambda service hands it to a runtime.
type Invocation struct {
	RequestID   string
	FunctionARN string
	TraceID     string
	Payload     []byte
}

// Result is what the function answered.
type Result struct {
	Payload []byte
	// IsError: Payload is an error document ({"errorType","errorMessage"}),
	// from the function, a timeout or a failed runtime.
	IsError bool
	// Logs: the START line, the bootstrap's output during the invocation,
	// the END and REPORT lines.
	Logs string
}

// ErrClosed is returned by Invoke after Close.
var ErrClosed = errors.New("runtimeapi: environment closed")

// Environment is one execution environment: a Runtime API server and the
// bootstrap process it serves. Its methods are safe for concurrent use;
// invocations run one at a time.
type Environment struct {
	cfg    Config
	ln     net.Listener
	srv    *http.Server
	logs   logBuffer
	invMu  sync.Mutex // one invocation at a time
	mu     sync.Mutex
	proc   *process // the running bootstrap, nil when none
	closed bool
}

// process is one run of the bootstrap.
type process struct {
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the process has exited
	exitErr   error
	ready     chan struct{} // closed at its first /next: initialised
	readyOnce sync.Once
	initErr   []byte // body of /init/error, if any
	next      chan *pending
	mu        sync.Mutex
	current   *pending
}

type pending struct {
	inv      Invocation
	deadline time.Time
	done     chan Result
	once     sync.Once
}

func (p *pending) finish(r Result) { p.once.Do(func() { p.done <- r }) }

// Listen makes an Environment serving the Runtime API on addr (e.g.
// "127.0.0.1:0"). The bootstrap is started by Init or the first Invoke.
func Listen(addr string, cfg Config) (*Environment, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.InitTimeout == 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("runtimeapi: listen: %w", err)
	}
	e := &Environment{cfg: cfg, ln: ln}
	e.logs.out = cfg.Output
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", e.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", e.response)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", e.invocationError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", e.initError)
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go e.srv.Serve(ln) //nolint:errcheck // ends with Close
	return e, nil
}

// Addr is the Runtime API's host:port (AWS_LAMBDA_RUNTIME_API).
func (e *Environment) Addr() string { return e.ln.Addr().String() }

// Init starts the bootstrap, if it is not running, and waits until it asks
// for its first invocation. An error says why initialisation failed; the
// next Init or Invoke tries again.
func (e *Environment) Init(ctx context.Context) error {
	p, err := e.ensureProcess()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.InitTimeout)
	defer cancel()
	select {
	case <-p.ready:
		return nil
	case <-p.exited:
		e.reap(p)
		if len(p.initErr) > 0 {
			return &InitError{Body: p.initErr}
		}
		return &InitError{Body: errorDoc("Runtime.ExitError", fmt.Sprintf("Runtime exited with error: %v", p.exitErr))}
	case <-ctx.Done():
		e.kill(p)
		return &InitError{Body: errorDoc("Runtime.InitTimeout", fmt.Sprintf("Init timed out after %.2f seconds", e.cfg.InitTimeout.Seconds()))}
	}
}

// InitError is a failed initialisation; Body is its error document.
type InitError struct{ Body []byte }

func (e *InitError) Error() string { return "runtimeapi: init failed: " + string(e.Body) }

// Invoke runs one invocation and returns the function's answer, an error
// document for a failure of the function or its runtime, or an error when
// the environment cannot run it at all (closed, ctx ended).
func (e *Environment) Invoke(ctx context.Context, inv Invocation) (Result, error) {
	e.invMu.Lock()
	defer e.invMu.Unlock()
	start := time.Now()
	mark := e.logs.mark()
	e.logs.printf("START RequestId: %s Version: $LATEST\n", inv.RequestID)
	res, err := e.invoke(ctx, inv, start)
	if err != nil {
		return Result{}, err
	}
	e.logs.settle()
	e.logs.printf("END RequestId: %s\n", inv.RequestID)
	e.logs.printf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\n",
		inv.RequestID, float64(time.Since(start).Microseconds())/1000, time.Since(start).Milliseconds()+1)
	res.Logs = e.logs.since(mark)
	return res, nil
}

func (e *Environment) invoke(ctx context.Context, inv Invocation, start time.Time) (Result, error) {
	if err := e.Init(ctx); err != nil {
		var ie *InitError
		if errors.As(err, &ie) {
			e.logs.printf("INIT_REPORT Status: error %s\n", ie.Body)
			return Result{Payload: ie.Body, IsError: true}, nil
		}
		return Result{}, err
	}
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	if p == nil {
		return Result{}, ErrClosed
	}
	pd := &pending{inv: inv, deadline: start.Add(e.cfg.Timeout), done: make(chan Result, 1)}
	timer := time.NewTimer(time.Until(pd.deadline))
	defer timer.Stop()
	select { // the bootstrap is, or will shortly be, waiting in /next
	case p.next <- pd:
	case <-p.exited:
		e.reap(p)
		return Result{Payload: e.exitDoc(inv.RequestID, p), IsError: true}, nil
	case <-timer.C:
		e.kill(p)
		return e.timedOut(inv), nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case r := <-pd.done:
		return r, nil
	case <-p.exited:
		e.reap(p)
		select { // it may have answered just before exiting
		case r := <-pd.done:
			return r, nil
		default:
		}
		return Result{Payload: e.exitDoc(inv.RequestID, p), IsError: true}, nil
	case <-timer.C:
		e.kill(p)
		return e.timedOut(inv), nil
	case <-ctx.Done():
		e.kill(p) // its answer would go to no one, and the next invocation must not get it
		return Result{}, ctx.Err()
	}
}

func (e *Environment) timedOut(inv Invocation) Result {
	msg := fmt.Sprintf("%s %s Task timed out after %.2f seconds",
		time.Now().UTC().Format(time.RFC3339Nano), inv.RequestID, e.cfg.Timeout.Seconds())
	e.logs.printf("%s\n", msg)
	return Result{Payload: errorDoc("Sandbox.Timedout", msg), IsError: true}
}

func (e *Environment) exitDoc(requestID string, p *process) []byte {
	msg := fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %v", requestID, p.exitErr)
	e.logs.printf("%s\n", msg)
	return errorDoc("Runtime.ExitError", msg)
}

func errorDoc(typ, msg string) []byte {
	b, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": msg})
	return b
}

// Close kills the bootstrap's process group and stops serving.
func (e *Environment) Close() error {
	e.mu.Lock()
	e.closed = true
	p := e.proc
	e.mu.Unlock()
	if p != nil {
		e.kill(p)
	}
	return e.srv.Close()
}

// ensureProcess returns the running bootstrap, starting one if none runs.
func (e *Environment) ensureProcess() (*process, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if e.proc != nil {
		return e.proc, nil
	}
	cmd := exec.Command(filepath.Join(e.cfg.Dir, "bootstrap"))
	cmd.Dir = e.cfg.Dir
	cmd.Env = append(append([]string{}, e.cfg.Env...),
		"AWS_LAMBDA_RUNTIME_API="+e.Addr(), "LAMBDA_TASK_ROOT="+e.cfg.Dir)
	cmd.Stdout, cmd.Stderr = &e.logs, &e.logs
	// Its own process group, so a timeout kills whatever it started too.
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		// Like an exit at once: reported as the invocation's error.
		p := &process{exited: make(chan struct{}), ready: make(chan struct{}), exitErr: err}
		close(p.exited)
		e.proc = p
		return p, nil
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), ready: make(chan struct{}), next: make(chan *pending)}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	e.proc = p
	return p, nil
}

// kill ends p's process group and forgets p once it has exited.
func (e *Environment) kill(p *process) {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.exited
	e.reap(p)
}

// reap forgets p if it is still the current process.
func (e *Environment) reap(p *process) {
	e.mu.Lock()
	if e.proc == p {
		e.proc = nil
	}
	e.mu.Unlock()
}

func (e *Environment) current() *process {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proc
}

// ---------------------------------------------------------------- Runtime API

func (e *Environment) next(w http.ResponseWriter, r *http.Request) {
	p := e.current()
	if p == nil {
		http.Error(w, "no execution environment", http.StatusGone)
		return
	}
	p.mu.Lock()
	if p.current != nil { // /next without answering: Lambda treats it as an empty response
		p.current.finish(Result{Payload: []byte("null")})
		p.current = nil
	}
	p.mu.Unlock()
	p.readyOnce.Do(func() { close(p.ready) })
	var pd *pending
	select {
	case pd = <-p.next:
	case <-p.exited:
		return
	case <-r.Context().Done():
		return
	}
	p.mu.Lock()
	p.current = pd
	p.mu.Unlock()
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", pd.inv.RequestID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(pd.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", pd.inv.FunctionARN)
	if pd.inv.TraceID != "" {
		h.Set("Lambda-Runtime-Trace-Id", pd.inv.TraceID)
	}
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(pd.inv.Payload)
}

func (e *Environment) response(w http.ResponseWriter, r *http.Request) {
	e.answer(w, r, false)
}

func (e *Environment) invocationError(w http.ResponseWriter, r *http.Request) {
	e.answer(w, r, true)
}

// maxResponse is Lambda's limit for a synchronous response.
const maxResponse = 6 << 20

func (e *Environment) answer(w http.ResponseWriter, r *http.Request, isError bool) {
	id := r.PathValue("id")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxResponse+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := e.current()
	if p == nil {
		http.Error(w, "no execution environment", http.StatusGone)
		return
	}
	p.mu.Lock()
	pd := p.current
	if pd == nil || pd.inv.RequestID != id {
		p.mu.Unlock()
		http.Error(w, `{"errorType":"InvalidRequestID","errorMessage":"unknown request id"}`, http.StatusBadRequest)
		return
	}
	p.current = nil
	p.mu.Unlock()
	res := Result{Payload: body, IsError: isError}
	if len(body) > maxResponse {
		res = Result{IsError: true, Payload: errorDoc("Function.ResponseSizeTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", maxResponse))}
	} else if isError && !json.Valid(body) {
		res.Payload = errorDoc(r.Header.Get("Lambda-Runtime-Function-Error-Type"), string(body))
	}
	pd.finish(res)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func (e *Environment) initError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if !json.Valid(body) || len(bytes.TrimSpace(body)) == 0 {
		body = errorDoc(r.Header.Get("Lambda-Runtime-Function-Error-Type"), string(body))
	}
	if p := e.current(); p != nil {
		p.mu.Lock()
		p.initErr = body
		p.mu.Unlock()
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// ---------------------------------------------------------------- logs

// logBuffer keeps what the bootstrap writes (and the report lines) so that
// each invocation can return its share; everything also goes to out.
type logBuffer struct {
	mu      sync.Mutex
	buf     strings.Builder
	base    int // bytes dropped from the front of buf
	out     io.Writer
	written time.Time
}

// keep bounds the memory held: an invocation's logs are read at its end.
const keep = 4 << 20

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	l.written = time.Now()
	_, _ = l.out.Write(b)
	if l.buf.Len() > 2*keep {
		s := l.buf.String()
		drop := len(s) - keep
		l.base += drop
		l.buf.Reset()
		l.buf.WriteString(s[drop:])
	}
	return len(b), nil
}

func (l *logBuffer) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(l, format, args...)
}

func (l *logBuffer) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.base + l.buf.Len()
}

func (l *logBuffer) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	if i := mark - l.base; i > 0 && i <= len(s) {
		return s[i:]
	} else if i > len(s) {
		return ""
	}
	return s
}

// settle waits briefly for output the bootstrap wrote before answering:
// os/exec copies its pipes in goroutines, which may still hold the last lines.
func (l *logBuffer) settle() {
	const quiet, most = 5 * time.Millisecond, 50 * time.Millisecond
	for end := time.Now().Add(most); time.Now().Before(end); {
		time.Sleep(quiet)
		l.mu.Lock()
		idle := time.Since(l.written) >= quiet
		l.mu.Unlock()
		if idle {
			return
		}
	}
}
