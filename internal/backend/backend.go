// Package backend is the integration-test harness: it finds the SQS/SNS
// backends that are running (LocalStack, moto, real AWS), makes SDK clients
// for them, and makes uniquely named queues and topics that are removed when
// the test ends. A test written once runs against every backend found;
// a backend that is absent is reported loudly, and is a failure when
// COURIER_REQUIRE_BACKENDS names it (CI requires localstack and moto).
//
// Where a backend is found:
//   - COURIER_<NAME>_ENDPOINT (COURIER_LOCALSTACK_ENDPOINT, COURIER_MOTO_ENDPOINT), or
//   - the env file scripts/emulator.sh writes, .courier/<name>.env, found
//     by walking up from the working directory;
//   - aws: when COURIER_AWS=1, with the SDK's default credentials and region;
//   - memory: always (the in-process memaws Server), unless COURIER_MEMORY=0.
//
// COURIER_BACKEND=<name> restricts a run to one backend.
package backend

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/courier-aws/courier/memaws"
)

// Names of the backends, in the order tests run them. memory is the
// in-process memaws Server: nothing to start, so it is always there.
var Names = []string{"memory", "localstack", "moto", "aws"}

// Backend is one SQS/SNS endpoint the tests can use.
type Backend struct {
	Name     string
	Endpoint string // "" for AWS
	Caps     Capabilities
	cfg      aws.Config
	mem      *memaws.Server // the memory backend's server
}

var (
	memOnce   sync.Once
	memServer *memaws.Server
)

// Memory is the process's in-memory backend: one memaws Server that every
// test of the process shares, as they share an emulator.
func Memory() *memaws.Server {
	memOnce.Do(func() { memServer = memaws.New() })
	return memServer
}

// Server is the memaws Server of the memory backend, nil for the others.
func (b *Backend) Server() *memaws.Server { return b.mem }

// Config returns an SDK config for the backend.
func (b *Backend) Config() aws.Config { return b.cfg.Copy() }

var (
	discoverOnce sync.Once
	found        []*Backend
	absent       = map[string]string{}
)

func discover() {
	only := os.Getenv("COURIER_BACKEND")
	for _, name := range Names {
		if only != "" && only != name {
			continue
		}
		b, why := find(name)
		if b == nil {
			absent[name] = why
			continue
		}
		found = append(found, b)
	}
}

func find(name string) (*Backend, string) {
	ctx := context.Background()
	if name == "memory" {
		if os.Getenv("COURIER_MEMORY") == "0" {
			return nil, "turned off (COURIER_MEMORY=0)"
		}
		return &Backend{Name: name, Caps: capsFor(name), cfg: Memory().Config(), mem: Memory()}, ""
	}
	if name == "aws" {
		if os.Getenv("COURIER_AWS") != "1" {
			return nil, "set COURIER_AWS=1 (with credentials and region) to run against real AWS"
		}
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, err.Error()
		}
		return &Backend{Name: name, Caps: capsFor(name), cfg: cfg}, ""
	}
	endpoint := os.Getenv("COURIER_" + strings.ToUpper(name) + "_ENDPOINT")
	if endpoint == "" {
		endpoint = endpointFromEnvFile(name)
	}
	if endpoint == "" {
		return nil, fmt.Sprintf("not running (start it: scripts/emulator.sh start %s, or make test)", name)
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
	)
	if err != nil {
		return nil, err.Error()
	}
	return &Backend{Name: name, Endpoint: endpoint, Caps: capsFor(name), cfg: cfg}, ""
}

// endpointFromEnvFile reads AWS_ENDPOINT_URL from .courier/<name>.env.
func endpointFromEnvFile(name string) string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		f, err := os.Open(filepath.Join(dir, ".courier", name+".env"))
		if err == nil {
			defer f.Close()
			s := bufio.NewScanner(f)
			for s.Scan() {
				line := strings.TrimPrefix(strings.TrimSpace(s.Text()), "export ")
				if v, ok := strings.CutPrefix(line, "AWS_ENDPOINT_URL="); ok {
					return strings.Trim(v, `"'`)
				}
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Each runs fn as a subtest for every backend found. For each absent one it
// logs a skip, records it for the summary make test prints, and fails the
// test if COURIER_REQUIRE_BACKENDS names it.
func Each(t *testing.T, fn func(t *testing.T, b *Backend)) {
	t.Helper()
	discoverOnce.Do(discover)
	required := map[string]bool{}
	for _, n := range strings.Split(os.Getenv("COURIER_REQUIRE_BACKENDS"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			required[n] = true
		}
	}
	for _, name := range Names {
		why, missing := absent[name]
		if !missing {
			continue
		}
		if required[name] {
			t.Errorf("BACKEND ABSENT: %s is required (COURIER_REQUIRE_BACKENDS) but %s", name, why)
			continue
		}
		if name != "aws" {
			recordSkip(t, name, why)
		}
	}
	// The backends run side by side (each backend still sees one test at
	// a time): most of a test's time is waiting on one backend's clock,
	// and make test would otherwise pay the sum. One that slows down under
	// load (SharesMachineWell false: moto) runs alone first.
	for _, b := range found {
		t.Run(b.Name, func(t *testing.T) {
			if !serial && b.Caps.SharesMachineWell {
				t.Parallel()
			}
			t.Cleanup(func() {
				result := "pass"
				switch {
				case t.Failed():
					result = "fail"
				case t.Skipped():
					result = "skip"
				}
				record("conformance.log", fmt.Sprintf("%s\t%s\t%s\n", b.Name, result, t.Name()))
			})
			fn(t, b)
		})
	}
}

// serial (COURIER_SERIAL_BACKENDS=1) runs a test's backends one after the
// other, for reading a failure's log in order.
var serial = os.Getenv("COURIER_SERIAL_BACKENDS") == "1"

// record appends a line to .courier/<file>, which make test summarizes.
func record(file, line string) {
	skipMu.Lock()
	defer skipMu.Unlock()
	dir := courierDir()
	if dir == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(line)
}

// Require returns the backend name for tests that need one specific
// backend, or skips loudly.
func Require(t *testing.T, name string) *Backend {
	t.Helper()
	discoverOnce.Do(discover)
	for _, b := range found {
		if b.Name == name {
			return b
		}
	}
	recordSkip(t, name, absent[name])
	t.SkipNow()
	return nil
}

var skipMu sync.Mutex

// recordSkip logs the skip and appends it to .courier/skips.log, which make
// test prints at the end, so an absent backend is never silent.
func recordSkip(t *testing.T, name, why string) {
	t.Logf("BACKEND ABSENT: %s: %s: %s skipped", name, why, t.Name())
	record("skips.log", fmt.Sprintf("BACKEND ABSENT: %s (%s): %s\n", name, why, t.Name()))
}

// courierDir finds the repository's .courier directory (made if missing).
func courierDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "patterns")); err == nil {
				d := filepath.Join(dir, ".courier")
				_ = os.MkdirAll(d, 0o755)
				return d
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// First returns the first backend found (in the order of Names), for code
// that runs outside a test, such as Examples.
//
// An emulator (or AWS) comes before the in-process memory backend: the
// Examples show DynamoDB stores and HTTP subscriptions, which memaws does
// not serve. With memory alone, see NeedsEmulator.
func First() (*Backend, bool) {
	discoverOnce.Do(discover)
	for _, b := range found {
		if b.mem == nil {
			return b, true
		}
	}
	if len(found) == 0 {
		return nil, false
	}
	return found[0], true
}

// NeedSocket skips the test on a backend that no socket reaches (memory:
// the in-process memaws Server), for tests that put a proxy in front of
// the endpoint or hand it to a child process. internal/sim injects those
// faults into memaws directly.
func (b *Backend) NeedSocket(t testing.TB) {
	t.Helper()
	if b.Endpoint == "" && b.Name != "aws" {
		t.Skipf("%s: in-process, no endpoint a socket reaches (internal/sim injects these faults on it)", b.Name)
	}
}
