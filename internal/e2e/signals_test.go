package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/sample"
)

// TestSecondInterruptKills: the first Ctrl-C asks a sweep to stop after the
// Redis call in flight; when that call hangs (here another client's script
// keeps Redis busy for seconds), a second Ctrl-C ends the process at once
// instead of being swallowed.
func TestSecondInterruptKills(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	fill(t, redistest.Client(t, srv), sample.Bench(40000, time.Now()))
	p := spawn(t, nil, "--redis", srv.URL(), "--timeout", "30s", "--batch", "1", "sweep", "--dry-run")
	time.Sleep(400 * time.Millisecond) // connected, paging a job at a time
	stalled := make(chan struct{})
	go func() {
		defer close(stalled)
		redistest.Stall(srv.Addr(), 4*time.Second)
	}()
	time.Sleep(200 * time.Millisecond)
	if p.exited() {
		t.Fatalf("the sweep ended before Redis stalled: %s", p.wait(t))
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(os.Interrupt)
	time.Sleep(200 * time.Millisecond)
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		t.Errorf("still running %v after the second interrupt", time.Since(start).Round(time.Millisecond))
	}
	<-stalled
}
