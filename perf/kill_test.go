package perf

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// TestFaultChildConsumer is the consumer process that
// TestFaultsConsumerKilled starts and kills: it handles messages by
// appending their bodies to a file (synced before the handler returns, so
// the record survives a SIGKILL that comes before the delete).
func TestFaultChildConsumer(t *testing.T) {
	queue, out, name := os.Getenv("COURIER_FAULT_QUEUE"), os.Getenv("COURIER_FAULT_LOG"), os.Getenv("COURIER_FAULT_BACKEND")
	if queue == "" {
		t.Skip("run by TestFaultsConsumerKilled")
	}
	b := backend.Require(t, name)
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	c, err := patterns.NewConsumer(b.SQS(), queue, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet()
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Run(context.Background(), func(_ context.Context, m *patterns.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintln(f, string(m.Body)); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond) // slow enough to be killed mid-batch
		return f.Sync()
	})
}

// A consumer process killed with SIGKILL mid-batch and started again:
// every message is handled at least once; the ones it handled but had not
// deleted come back after their visibility timeout and count as
// duplicates.
func TestFaultsConsumerKilled(t *testing.T) {
	t.Parallel()
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		const n = 300
		q := b.CreateQueue(t, backend.QueueOptions{VisibilityTimeout: 2 * time.Second})
		ck := newChecker()
		p, err := patterns.NewProducer(b.SQS(), q.URL)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []*patterns.Message
		for i := range n {
			msgs = append(msgs, &patterns.Message{Body: []byte(fmt.Sprintf("job-%03d", i))})
		}
		ck.sendResult(msgs, p.Send(context.Background(), msgs...))

		out := filepath.Join(t.TempDir(), "handled.log")
		start := func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFaultChildConsumer$", "-test.count=1")
			cmd.Env = append(os.Environ(), "COURIER_FAULT_QUEUE="+q.URL, "COURIER_FAULT_LOG="+out, "COURIER_FAULT_BACKEND="+b.Name)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			return cmd
		}
		lines := func() []string {
			f, err := os.Open(out)
			if err != nil {
				return nil
			}
			defer f.Close()
			var l []string
			for s := bufio.NewScanner(f); s.Scan(); {
				if line := strings.TrimSpace(s.Text()); line != "" {
					l = append(l, line)
				}
			}
			return l
		}
		wait := func(d time.Duration, cond func() bool) bool {
			for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if cond() {
					return true
				}
			}
			return false
		}
		kill := func(cmd *exec.Cmd) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}

		first := start()
		if !wait(time.Minute, func() bool { return len(lines()) >= n/3 }) {
			kill(first)
			t.Fatalf("the first consumer handled %d messages in a minute", len(lines()))
		}
		kill(first) // mid-batch: handled, not all deleted
		killedAt := len(lines())
		second := start()
		defer kill(second)
		uniq := func() int {
			seen := map[string]bool{}
			for _, l := range lines() {
				seen[l] = true
			}
			return len(seen)
		}
		wait(time.Minute, func() bool { return uniq() >= n })
		kill(second)
		for _, l := range lines() {
			ck.handle(l)
		}
		t.Logf("killed after %d handlings", killedAt)
		ck.report(t, "sigkill/"+b.Name, false)
	})
}
