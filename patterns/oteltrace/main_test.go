package oteltrace_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/courier-aws/courier/internal/backend"
)

// TestMain skips the Examples, loudly, when no backend is running: they
// send real messages, and an Example cannot skip itself.
func TestMain(m *testing.M) {
	flag.Parse()
	if _, ok := backend.First(); !ok && flag.Lookup("test.run").Value.String() == "" {
		fmt.Fprintln(os.Stderr, "BACKEND ABSENT: no emulator running; the Examples are skipped (make test starts one)")
		_ = flag.Set("test.run", "^(Test|Fuzz)")
	}
	os.Exit(m.Run())
}
