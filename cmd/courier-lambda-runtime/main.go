//go:build unix

// Command courier-lambda-runtime is one Lambda execution environment for
// courier's LocalStack runtime executor (localstack/executor): it serves the
// Lambda Runtime API to the function's `bootstrap` (lambdas/runtimeapi) and
// takes invocations from the executor on a control port.
//
//	courier-lambda-runtime -dir CODE -timeout SECONDS
//
// The function's environment is this process's environment. Once the first
// initialisation has finished (or failed: the first invocation reports it),
// it prints one JSON line to stdout: {"control": "127.0.0.1:PORT"}. Then
//
//	POST /invoke  {"invoke-id", "invoked-function-arn", "payload", "trace-id"}
//	          ->  {"payload": base64, "is_error": bool, "logs": "..."}
//
// The bootstrap's output goes to stderr. It exits, killing the bootstrap's
// process group, on SIGTERM or SIGINT, or when stdin reaches EOF (the
// executor, holding the other end, has gone).
//
// It lives in cmd/ rather than lambdas/ because lambdas/ holds one main per
// function courier deploys; this is a tool the emulator runs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/courier-aws/courier/lambdas/runtimeapi"
)

func main() {
	dir := flag.String("dir", "", "the function's unzipped code (holds bootstrap)")
	timeout := flag.Float64("timeout", 3, "the function's timeout in seconds")
	flag.Parse()
	if err := run(*dir, time.Duration(*timeout*float64(time.Second))); err != nil {
		fmt.Fprintln(os.Stderr, "courier-lambda-runtime:", err)
		os.Exit(1)
	}
}

// request is what LocalStack's execution environment passes to invoke.
type request struct {
	InvokeID    string `json:"invoke-id"`
	FunctionARN string `json:"invoked-function-arn"`
	Payload     string `json:"payload"`
	TraceID     string `json:"trace-id"`
}

type response struct {
	Payload []byte `json:"payload"`
	IsError bool   `json:"is_error"`
	Logs    string `json:"logs"`
}

func run(dir string, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the executor holds stdin open while it wants us
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	env, err := runtimeapi.Listen("127.0.0.1:0", runtimeapi.Config{
		Dir: dir, Env: os.Environ(), Timeout: timeout, Output: os.Stderr,
	})
	if err != nil {
		return err
	}
	defer env.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := env.Invoke(r.Context(), runtimeapi.Invocation{
			RequestID: req.InvokeID, FunctionARN: req.FunctionARN,
			TraceID: req.TraceID, Payload: []byte(req.Payload),
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(response{Payload: res.Payload, IsError: res.IsError, Logs: res.Logs})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()

	// Initialise before saying we are ready, as Lambda does; a failure is
	// the first invocation's error, so it is only logged here.
	var ie *runtimeapi.InitError
	if err := env.Init(ctx); errors.As(err, &ie) {
		fmt.Fprintf(os.Stderr, "INIT_REPORT Status: error %s\n", ie.Body)
	} else if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]string{"control": ln.Addr().String()})
	if _, err := fmt.Printf("%s\n", line); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
