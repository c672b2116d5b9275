package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// TestFleetServe: serve --targets sweeps every target each cycle behind one
// HTTP face: /metrics carries each target's series with a target label,
// /readyz is ready when both are, and SIGTERM ends it with exit 0.
func TestFleetServe(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	wantA := fleetSeed(t, redistest.Client(t, a), "resque", 6)
	wantB := fleetSeed(t, redistest.Client(t, b), "app", 4)
	targets := writeFile(t, "targets.yml", fmt.Sprintf("- name: a\n  url: redis://%s/0\n- name: b\n  url: redis://%s/0\n  namespace: app\n", a.Addr(), b.Addr()))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := spawn(t, nil, "--targets", targets, "serve", "--interval", "1s", "--listen", addr)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	want := []string{
		fmt.Sprintf(`resque_expire_jobs_removed_total{action="deleted",queue="mail",target="a"} %d`, wantA),
		fmt.Sprintf(`resque_expire_jobs_removed_total{action="deleted",queue="mail",target="b"} %d`, wantB),
	}
	deadline := time.Now().Add(20 * time.Second)
	var metrics string
	for {
		_, metrics = get("/metrics")
		if strings.Contains(metrics, want[0]) && strings.Contains(metrics, want[1]) {
			break
		}
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("the metrics never showed %q and %q:\n%s", want[0], want[1], metrics)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d: %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d", code)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	r := p.wait(t)
	r.expect(t, 0)
}
