package perf

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/check"
)

// The fault table README.md quotes is written by the run that measured it:
// each scenario's counts are recorded here and TestMain writes them to
// bench/faults.md (FAULTS_TABLE overrides the path; "-" turns it off).
var (
	recordMu sync.Mutex
	recorded = map[string]check.Counts{}
)

func recordFaults(scenario string, n check.Counts) {
	recordMu.Lock()
	recorded[scenario] = n
	recordMu.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := writeFaultTable(); err != nil {
			fmt.Fprintln(os.Stderr, "perf: fault table:", err)
		}
	}
	os.Exit(code)
}

func writeFaultTable() error {
	path := os.Getenv("FAULTS_TABLE")
	if path == "-" || len(recorded) == 0 {
		return nil
	}
	if path == "" {
		path = filepath.Join("..", "bench", "faults.md")
	}
	names := make([]string, 0, len(recorded))
	for k := range recorded {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- written by the fault suite (perf/, make test) on %s; do not edit -->\n", time.Now().UTC().Format("2006-01-02"))
	b.WriteString("| scenario / backend | sent | indeterminate | handled | duplicates | unexpected | lost |\n|---|---|---|---|---|---|---|\n")
	for _, k := range names {
		n := recorded[k]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d |\n", k, n.Sent, n.Indeterminate, n.Handled, n.Duplicates, n.Unexpected, n.Lost)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
