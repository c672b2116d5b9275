package e2e

import (
	"testing"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// TestDoctorExitCodes: doctor exits 0 with warnings only (a test server
// has no persistence), 3 on a Redis Cluster node, and its JSON is the
// list of checks.
func TestDoctorExitCodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	var rep struct {
		Checks []struct{ Name, Status, Detail string } `json:"checks"`
	}
	run(t, srv, "--format", "json", "doctor").expect(t, 0).decode(t, &rep)
	got := map[string]string{}
	for _, c := range rep.Checks {
		got[c.Name] = c.Status
	}
	for name, want := range map[string]string{"server": "ok", "mode": "ok", "persistence": "warn", "permissions": "ok", "scripts": "ok"} {
		if got[name] != want {
			t.Errorf("check %s: %q, want %q (%+v)", name, got[name], want, rep.Checks)
		}
	}
	cluster := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	r := run(t, cluster, "doctor").expect(t, 3)
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
}
