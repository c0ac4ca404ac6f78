// Command echo is the test function of runtimeapi's tests: a provided.al2023
// bootstrap whose event says what to do.
//
//	{"echo": "x"}       answers {"echo": "x", "env": <COURIER_TEST_ENV>}
//	{"sleep_ms": 5000}  sleeps first (a timeout)
//	{"fail": "why"}     returns an error
//	{"exit": 3}         exits the process
//
// It prints "echo: <event>" to stdout on each invocation (the logs).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Echo    string `json:"echo"`
	SleepMS int    `json:"sleep_ms"`
	Fail    string `json:"fail"`
	Exit    int    `json:"exit"`
}

func handle(ctx context.Context, raw json.RawMessage) (map[string]string, error) {
	fmt.Printf("echo: %s\n", raw)
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	if ev.SleepMS > 0 {
		select {
		case <-time.After(time.Duration(ev.SleepMS) * time.Millisecond):
		case <-ctx.Done():
			time.Sleep(time.Hour) // as a function that ignores its deadline
		}
	}
	if ev.Exit != 0 {
		os.Exit(ev.Exit)
	}
	if ev.Fail != "" {
		return nil, errors.New(ev.Fail)
	}
	return map[string]string{"echo": ev.Echo, "env": os.Getenv("COURIER_TEST_ENV")}, nil
}

func main() {
	if os.Getenv("COURIER_TEST_INIT_FAIL") != "" {
		fmt.Fprintln(os.Stderr, "echo: init failed on purpose")
		os.Exit(2)
	}
	lambda.Start(handle)
}
