package patterns_test

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
	b, ok := backend.First()
	switch {
	case !ok && flag.Lookup("test.run").Value.String() == "":
		fmt.Fprintln(os.Stderr, "BACKEND ABSENT: no backend (COURIER_MEMORY=0 and no emulator); the Examples are skipped (make test starts one)")
		_ = flag.Set("test.run", "^(Test|Fuzz)")
	case ok && b.Server() != nil && flag.Lookup("test.skip").Value.String() == "":
		// Only the in-process memory backend: the Examples run on it but
		// for those that need what memaws does not serve.
		fmt.Fprintln(os.Stderr, "BACKEND ABSENT: no emulator running; ExampleAggregator (DynamoDB) and ExampleHTTPSubscriber (an HTTP endpoint SNS posts to) are skipped, the other Examples run on memaws")
		_ = flag.Set("test.skip", "^(ExampleAggregator|ExampleHTTPSubscriber)$")
	}
	os.Exit(m.Run())
}
