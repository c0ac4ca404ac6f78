// Package scripts_test checks functions of scripts/emulator.sh by sourcing
// it in bash (it runs nothing when sourced) and the pins it installs.
package scripts_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// lsReady runs emulator.sh's ls_ready on a health document with
// LS_SERVICES_RUN set to the services asked for.
func lsReady(t *testing.T, services, health string) bool {
	t.Helper()
	cmd := exec.Command("bash", "-c", `source ./emulator.sh && ls_ready "$1"`, "ls_ready", health)
	cmd.Env = append(os.Environ(), "LS_SERVICES_RUN="+services)
	out, err := cmd.CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("bash: %v: %s", err, out)
	}
	return err == nil
}

// Ready means: what was asked for is up (sqs and sns running if asked),
// nothing asked for still starting; a service not asked for does not count.
func TestLocalStackReady(t *testing.T) {
	for _, tc := range []struct {
		name, services, health string
		want                   bool
	}{
		{"sqs and sts without sns", "sqs,sts",
			`{"services":{"sqs":"running","sts":"running","sns":"disabled"}}`, true},
		{"default set", "sqs,sns,s3",
			`{"services":{"sqs":"running","sns":"running","s3":"available"}}`, true},
		{"sqs still starting", "sqs,sts",
			`{"services":{"sqs":"starting","sts":"running"}}`, false},
		{"asked-for sns not up", "sqs,sns",
			`{"services":{"sqs":"running","sns":"disabled"}}`, false},
		{"other service starting", "sqs,lambda",
			`{"services":{"sqs":"running","lambda":"initialized"}}`, false},
		{"service in error: ready, with a warning", "sqs,dynamodb",
			`{"services":{"sqs":"running","dynamodb":"error"}}`, true},
		{"no document", "sqs", `not json`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lsReady(t, tc.services, tc.health); got != tc.want {
				t.Errorf("ls_ready with %s on %s = %v, want %v", tc.services, tc.health, got, tc.want)
			}
		})
	}
}

// Releases yanked by their makers: pip warns on every install of a pin to
// one, and the makers say not to run them.
var yanked = map[string][]string{
	"grpcio": {"1.78.1"}, // grpc/grpc#41725
}

func TestConstraintsAvoidYanked(t *testing.T) {
	f, err := os.Open("../localstack/constraints-4.14.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, version, ok := strings.Cut(strings.TrimSpace(s.Text()), "==")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		for _, v := range yanked[strings.ToLower(name)] {
			if v == version {
				t.Errorf("constraints pin %s==%s, a yanked release", name, version)
			}
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}
