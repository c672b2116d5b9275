package serve

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/sweep"
)

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		interval time.Duration
		fails    int
		want     time.Duration
	}{
		{time.Minute, 1, 7500 * time.Millisecond}, {time.Minute, 2, 15 * time.Second}, {time.Minute, 4, time.Minute},
		{time.Minute, 50, time.Minute}, {time.Second, 1, 125 * time.Millisecond}, {200 * time.Millisecond, 1, 100 * time.Millisecond},
		{200 * time.Millisecond, 3, 200 * time.Millisecond},
	} {
		if got := Backoff(c.interval, c.fails); got != c.want {
			t.Errorf("Backoff(%v, %d) = %v, want %v", c.interval, c.fails, got, c.want)
		}
	}
}

// TestRunCyclesAndStops: the service sweeps, turns ready, counts what it
// removed from the stats hash, and Run returns nil when its context ends.
func TestRunCyclesAndStops(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	l := resque.MustLayout("resque", "")
	rdb.SAdd(ctx, l.Queues(), "q:1")
	rdb.RPush(ctx, l.Queue("q:1"), `{"class":"X","args":[],"id":"a"}`)
	rdb.Set(ctx, l.Expiration("a"), time.Now().Add(-time.Hour).Unix(), 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Options{Version: "test", Runs: true})
	svc, err := Start(Options{
		Client: rdb, Layout: l, Interval: 100 * time.Millisecond, Jitter: 0.1, Listener: ln, Metrics: m, Log: zerolog.Nop(),
		Sweep: sweep.Options{Delayed: true},
		Scanner: func(context.Context) (*inspect.Scanner, time.Duration, error) {
			s, err := inspect.NewScanner(rdb, inspect.Config{Layout: l})
			return s, 0, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := svc.Ready(time.Now()); ok || why != "no cycle has ended yet" {
		t.Errorf("ready before any cycle: %v %q", ok, why)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Second)
	var page string
	for !strings.Contains(page, `resque_expire_jobs_removed_total{action="deleted",queue="q:1"} 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("no removal counted:\n%s", page)
		}
		time.Sleep(20 * time.Millisecond)
		if resp, err := http.Get("http://" + svc.Addr() + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page = string(b)
		}
	}
	if ok, why := svc.Ready(time.Now()); !ok {
		t.Errorf("not ready after a cycle: %s", why)
	}
	if ok, why := svc.Ready(time.Now().Add(time.Second)); ok || !strings.Contains(why, "more than two intervals") {
		t.Errorf("ready with the last cycle a second ago: %v %q", ok, why)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := http.Get("http://" + svc.Addr() + "/healthz"); err == nil {
		t.Error("the HTTP server still answers after Run returned")
	}
}
