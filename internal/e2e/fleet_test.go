package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/sample"
)

// fleetSeed queues n jobs on "mail" under namespace ns, the even ones
// expired an hour ago by Redis's clock; it returns how many are expired.
func fleetSeed(t *testing.T, rdb *redis.Client, ns string, n int) int {
	t.Helper()
	ctx := t.Context()
	l := resque.MustLayout(ns, "")
	now := rdb.Time(ctx).Val()
	expired := 0
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%03d", ns, i)
		deadline := now.Add(time.Hour)
		if i%2 == 0 {
			deadline, expired = now.Add(-time.Hour), expired+1
		}
		rdb.SAdd(ctx, l.Queues(), "mail")
		rdb.RPush(ctx, l.Queue("mail"), fmt.Sprintf(`{"class":"Mailer","args":[],"id":%q}`, id))
		rdb.Set(ctx, l.Expiration(id), resque.FormatDeadline(deadline), 0)
	}
	return expired
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFleetSweepRestoreCheck: three Redis targets (one under another
// namespace, one behind a password given through url_env) and one that is
// down. The sweep completes exactly on the three, names the one that failed
// and exits 1; its archive restores each job to its own target; check
// across targets exits 3 when one of them breaches.
func TestFleetSweepRestoreCheck(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	c := redistest.Start(t, "--requirepass", "fleet-secret")
	down := redistest.Start(t)
	downAddr := down.Addr()
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	ra, rb, rc := redistest.Client(t, a), redistest.Client(t, b), redistest.Client(t, c)
	want := map[string]int{"a": fleetSeed(t, ra, "resque", 10), "b": fleetSeed(t, rb, "app", 8), "c": fleetSeed(t, rc, "resque", 6)}
	targets := writeFile(t, "targets.yml", fmt.Sprintf(`- name: a
  url: redis://%s/0
- name: b
  url: redis://%s/0
  namespace: app
- name: c
  url_env: FLEET_C_URL
- name: down
  url: redis://%s/0
`, a.Addr(), b.Addr(), downAddr))
	env := []string{"FLEET_C_URL=redis://:fleet-secret@" + c.Addr() + "/0"}
	archive := filepath.Join(t.TempDir(), "removed.jsonl")

	r := runEnv(t, env, "", "--targets", targets, "--timeout", "2s", "--format", "json", "sweep", "--yes", "--archive", archive)
	r.expect(t, 1)
	if strings.Contains(r.stdout+r.stderr, "fleet-secret") {
		t.Fatalf("the password of target c was printed\n%s", r)
	}
	var out struct {
		Targets []struct {
			Target   string `json:"target"`
			ExitCode int    `json:"exit_code"`
			Result   *struct {
				Removed int `json:"removed"`
			} `json:"result"`
			Error string `json:"error"`
		} `json:"targets"`
		Totals struct {
			Removed int `json:"removed"`
		} `json:"totals"`
	}
	r.decode(t, &out)
	if len(out.Targets) != 4 {
		t.Fatalf("%d targets in the JSON, want 4\n%s", len(out.Targets), r)
	}
	for _, tr := range out.Targets {
		switch {
		case tr.Target == "down":
			if tr.ExitCode != 1 || tr.Error == "" {
				t.Errorf("target down: exit %d error %q, want 1 and its error", tr.ExitCode, tr.Error)
			}
		case tr.Result == nil || tr.ExitCode != 0 || tr.Result.Removed != want[tr.Target]:
			t.Errorf("target %s: exit %d, result %+v, want 0 and %d removed", tr.Target, tr.ExitCode, tr.Result, want[tr.Target])
		}
	}
	if out.Totals.Removed != want["a"]+want["b"]+want["c"] {
		t.Errorf("totals removed %d, want %d", out.Totals.Removed, want["a"]+want["b"]+want["c"])
	}
	if !strings.Contains(r.stderr, "down: ") && !strings.Contains(r.stderr, `"target":"down"`) {
		t.Errorf("stderr does not name the target that failed\n%s", r.stderr)
	}
	for name, n := range map[string]int64{"a": 5, "c": 3} {
		rdb := map[string]*redis.Client{"a": ra, "c": rc}[name]
		if got := rdb.LLen(t.Context(), "resque:queue:mail").Val(); got != n {
			t.Errorf("target %s keeps %d jobs, want %d", name, got, n)
		}
	}
	if got := rb.LLen(t.Context(), "app:queue:mail").Val(); got != 4 {
		t.Errorf("target b keeps %d jobs, want 4", got)
	}

	// Every archived job goes back to the target it came from.
	r = runEnv(t, env, "", "--targets", targets, "--target", "[abc]", "restore", archive)
	r.expect(t, 0)
	for name, q := range map[string]struct {
		rdb *redis.Client
		key string
		n   int64
	}{"a": {ra, "resque:queue:mail", 10}, "b": {rb, "app:queue:mail", 8}, "c": {rc, "resque:queue:mail", 6}} {
		if got := q.rdb.LLen(t.Context(), q.key).Val(); got != q.n {
			t.Errorf("after restore target %s holds %d jobs, want %d\n%s", name, got, q.n, r)
		}
	}

	// Restored jobs have no deadline now; give b expired ones again: check
	// across a and b breaches on b alone.
	fleetSeed(t, rb, "app", 2)
	r = runEnv(t, env, "", "--targets", targets, "--target", "a", "--target", "b", "--format", "json", "check", "--max-expired", "0")
	r.expect(t, 3)
}

// TestFleetTargetsFileErrors: unknown fields, duplicate names and a --target
// that matches nothing are usage errors naming what is wrong.
func TestFleetTargetsFileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, args, want string }{
		{"- name: a\n  url: redis://127.0.0.1:1/0\n  urll: x\n", "inspect", "line 1"},
		{"- name: a\n  url: redis://127.0.0.1:1/0\n- name: a\n  url: redis://127.0.0.1:2/0\n", "inspect", "line 3"},
		{"- name: a\n  url: redis://127.0.0.1:1/0\n", "--target nope inspect", "nope"},
		{"- name: a\n  url: redis://127.0.0.1:1/0\n", "sweep", "--yes"},
		{"- name: a\n  url: redis://127.0.0.1:1/0\n", "enqueue --queue q --class C --ttl 1h", "enqueue"},
	} {
		f := writeFile(t, "targets.yml", tc.body)
		r := runEnv(t, nil, "", append([]string{"--targets", f}, strings.Fields(tc.args)...)...)
		r.expect(t, 2)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: stderr does not say %q:\n%s", tc.body, tc.want, r.stderr)
		}
	}
}

// TestFleetJSONLines: every JSON line names its target.
func TestFleetJSONLines(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	fleetSeed(t, redistest.Client(t, a), "resque", 4)
	fleetSeed(t, redistest.Client(t, b), "resque", 2)
	f := writeFile(t, "targets.yml", fmt.Sprintf("- name: a\n  url: redis://%s/0\n- name: b\n  url: redis://%s/0\n", a.Addr(), b.Addr()))
	r := runEnv(t, nil, "", "--targets", f, "--format", "jsonl", "list")
	r.expect(t, 0)
	count := map[string]int{}
	for _, l := range r.lines() {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		name, _ := m["target"].(string)
		count[name]++
	}
	if count["a"] != 4 || count["b"] != 2 {
		t.Errorf("lines per target %v, want a:4 b:2\n%s", count, r)
	}
}

// TestFleetTargetStoppedMidRun: one target's Redis dies while its sweep
// runs; the other targets complete exactly, the run exits 1 and names it.
func TestFleetTargetStoppedMidRun(t *testing.T) {
	t.Parallel()
	a, b, mid := redistest.Start(t), redistest.Start(t), redistest.Start(t)
	ra, rb := redistest.Client(t, a), redistest.Client(t, b)
	wantA, wantB := fleetSeed(t, ra, "resque", 10), fleetSeed(t, rb, "resque", 12)
	fill(t, redistest.Client(t, mid), sample.Bench(30000, time.Now()))
	targets := writeFile(t, "targets.yml", fmt.Sprintf("- name: a\n  url: redis://%s/0\n- name: b\n  url: redis://%s/0\n- name: mid\n  url: redis://%s/0\n",
		a.Addr(), b.Addr(), mid.Addr()))
	p := spawn(t, nil, "--targets", targets, "--timeout", "2s", "--batch", "10", "--format", "json", "sweep", "--yes")
	time.Sleep(700 * time.Millisecond)
	if p.exited() {
		t.Fatalf("the fleet sweep ended before the target was stopped: %s", p.wait(t))
	}
	if err := mid.Kill(); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t)
	r.expect(t, 1)
	var out struct {
		Targets []struct {
			Target   string `json:"target"`
			ExitCode int    `json:"exit_code"`
			Error    string `json:"error"`
			Result   *struct {
				Removed int `json:"removed"`
			} `json:"result"`
		} `json:"targets"`
	}
	r.decode(t, &out)
	for _, tr := range out.Targets {
		want := map[string]int{"a": wantA, "b": wantB}[tr.Target]
		switch {
		case tr.Target == "mid" && (tr.ExitCode != 1 || tr.Error == ""):
			t.Errorf("target mid: exit %d, error %q; want 1 and why", tr.ExitCode, tr.Error)
		case tr.Target != "mid" && (tr.ExitCode != 0 || tr.Result == nil || tr.Result.Removed != want):
			t.Errorf("target %s: exit %d, result %+v; want 0 and %d removed", tr.Target, tr.ExitCode, tr.Result, want)
		}
	}
	if !strings.Contains(r.stderr, "mid: ") && !strings.Contains(r.stderr, `"target":"mid"`) {
		t.Errorf("stderr does not name the target that failed\n%s", r.stderr)
	}
}

// TestFleetMetricsFiles: with --targets, each target writes its own
// --metrics-file (the target's name before the extension), its series
// labelled with it, so that node_exporter never sees one series twice.
func TestFleetMetricsFiles(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	fleetSeed(t, redistest.Client(t, a), "resque", 4)
	fleetSeed(t, redistest.Client(t, b), "resque", 2)
	f := writeFile(t, "targets.yml", fmt.Sprintf("- name: a\n  url: redis://%s/0\n- name: b\n  url: redis://%s/0\n", a.Addr(), b.Addr()))
	dir := t.TempDir()
	runEnv(t, nil, "", "--targets", f, "sweep", "--yes", "--metrics-file", filepath.Join(dir, "resque_expire.prom")).expect(t, 0)
	for name, removed := range map[string]int{"a": 2, "b": 1} {
		b, err := os.ReadFile(filepath.Join(dir, "resque_expire-"+name+".prom"))
		if err != nil {
			t.Fatalf("target %s wrote no metrics file of its own: %v", name, err)
		}
		want := fmt.Sprintf(`resque_expire_jobs_removed_total{action="deleted",queue="mail",target=%q} %d`, name, removed)
		if !strings.Contains(string(b), want) {
			t.Errorf("target %s's file lacks %s:\n%s", name, want, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "resque_expire.prom")); err == nil {
		t.Error("a file without a target was written too")
	}
}
