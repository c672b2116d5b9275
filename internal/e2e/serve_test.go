package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// svSeed pushes n jobs onto queue, expired an hour ago when expired is
// set, due in an hour otherwise.
func svSeed(t *testing.T, rdb *redis.Client, queue, prefix string, n int, expired bool) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Hour).Unix()
	if expired {
		deadline = time.Now().Add(-time.Hour).Unix()
	}
	pipe := rdb.TxPipeline()
	pipe.SAdd(ctx, defaultLayout.Queues(), queue)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		pipe.RPush(ctx, defaultLayout.Queue(queue), fmt.Sprintf(`{"class":"Mailer","args":[%d],"id":%q}`, i, id))
		pipe.Set(ctx, defaultLayout.Expiration(id), strconv.FormatInt(deadline, 10), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// svFreePort returns a free loopback port.
func svFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// svGet fetches a URL, returning its status code and body (0 when it
// could not connect).
func svGet(u string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// svWait polls cond every 50ms until it holds, failing the test after
// limit, and checks that the serve process is still running meanwhile.
func svWait(t *testing.T, p *proc, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if p != nil && p.exited() {
			t.Fatalf("serve exited while waiting for %s:\n%s", what, p.res)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// svMetric reads one series' value from a /metrics page (-1 when absent).
func svMetric(page, series string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// svStop sends SIGTERM and expects exit 0 within a few seconds.
func svStop(t *testing.T, p *proc) result {
	t.Helper()
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("serve still running 10s after SIGTERM")
	}
	r := p.res
	if r.code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0\n%s", r.code, r)
	}
	t.Logf("serve exited 0 %v after SIGTERM", time.Since(t0).Round(time.Millisecond))
	return r
}

// TestServeReadyzThroughARedisOutage: Redis is killed for two intervals;
// /readyz goes 503 (naming Redis) and back to 200 once it is restarted,
// /healthz stays 200, and the process never exits. A sweep after the
// restart still works, and SIGTERM ends the process with 0.
func TestServeReadyzThroughARedisOutage(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	base := fmt.Sprintf("http://127.0.0.1:%d", svFreePort(t))
	p := spawn(t, nil, "--redis", srv.URL(), "--log-format", "json", "--timeout", "500ms",
		"serve", "--interval", "1s", "--listen", strings.TrimPrefix(base, "http://"))
	ready := func() bool { code, _ := svGet(base + "/readyz"); return code == 200 }
	svWait(t, p, 5*time.Second, "/readyz 200 at start", ready)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var why string
	svWait(t, p, 4*time.Second, "/readyz 503 with Redis down", func() bool {
		code, body := svGet(base + "/readyz")
		why = body
		return code == 503
	})
	if !strings.Contains(why, "redis") {
		t.Errorf("/readyz says %q; want the reason to name redis", why)
	}
	if code, _ := svGet(base + "/healthz"); code != 200 {
		t.Errorf("/healthz %d while Redis is down, want 200", code)
	}
	if _, page := svGet(base + "/metrics"); svMetric(page, "resque_expire_redis_up") != 0 {
		t.Errorf("resque_expire_redis_up is not 0 while Redis is down")
	}
	time.Sleep(time.Until(killed.Add(2 * time.Second)))
	if p.exited() {
		t.Fatalf("serve exited during the outage:\n%s", p.res)
	}
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	svWait(t, p, 5*time.Second, "/readyz 200 after Redis came back", ready)

	svSeed(t, rdb, "after", "a", 3, true)
	svWait(t, p, 5*time.Second, "a sweep after the outage", func() bool {
		return rdb.LLen(context.Background(), defaultLayout.Queue("after")).Val() == 0
	})
	r := svStop(t, p)
	var errors, cycles int
	for _, l := range r.logs(t) {
		switch l["message"] {
		case "cycle failed; retrying with backoff":
			errors++
		case "cycle":
			cycles++
		}
	}
	if errors == 0 || cycles < 2 {
		t.Errorf("%d failed cycles and %d cycles logged; want both", errors, cycles)
	}
	t.Logf("took %v", time.Since(t0).Round(time.Millisecond))
}

// TestServeLockHeldIsSkippedNotFailed: while another run holds the sweep
// lock, cycles are skipped and counted as lock_held (resque_expire_lock_held
// 1), /readyz stays 200; once the lock is free the next cycle sweeps; on
// SIGTERM serve exits 0 and leaves no lock behind.
func TestServeLockHeldIsSkippedNotFailed(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	svSeed(t, rdb, "mail", "m", 5, true)
	svSeed(t, rdb, "mail", "live", 2, false)
	rdb.Set(ctx, defaultLayout.Lock(), "another run", time.Minute)
	rdb.Set(ctx, "email_sent:42", "sent", 0) // an idempotency key without TTL, for the audit
	base := fmt.Sprintf("http://127.0.0.1:%d", svFreePort(t))
	p := spawn(t, nil, "--redis", srv.URL(), "--log-format", "json",
		"serve", "--interval", "300ms", "--jitter", "10%", "--listen", strings.TrimPrefix(base, "http://"), "--audit-interval", "1h")
	var page string
	svWait(t, p, 5*time.Second, "two lock_held cycles", func() bool {
		_, page = svGet(base + "/metrics")
		return svMetric(page, `resque_expire_runs_total{command="sweep",result="lock_held"}`) >= 2
	})
	// The audit ran (read-only: the key keeps no TTL), once.
	if v := svMetric(page, `resque_expire_idempotency_keys_without_ttl{family="email_sent"}`); v != 1 {
		t.Errorf("email_sent keys without TTL = %v, want 1", v)
	}
	if v := svMetric(page, `resque_expire_runs_total{command="audit",result="ok"}`); v != 1 {
		t.Errorf("%v audits, want 1 within the hour", v)
	}
	if rdb.TTL(ctx, "email_sent:42").Val() != -1 {
		t.Error("a read-only audit gave the key a TTL")
	}
	if v := svMetric(page, "resque_expire_lock_held"); v != 1 {
		t.Errorf("resque_expire_lock_held = %v, want 1", v)
	}
	if v := svMetric(page, `resque_expire_runs_total{command="sweep",result="error"}`); v > 0 {
		t.Errorf("lock held counted as %v errors", v)
	}
	if code, body := svGet(base + "/readyz"); code != 200 {
		t.Errorf("/readyz %d %q while the lock is held, want 200", code, body)
	}
	if n := rdb.LLen(ctx, defaultLayout.Queue("mail")).Val(); n != 7 {
		t.Fatalf("%d jobs left while the lock was held, want all 7", n)
	}
	rdb.Del(ctx, defaultLayout.Lock())
	svWait(t, p, 5*time.Second, "removal counted and the jobs counted again once the lock was free", func() bool {
		_, page = svGet(base + "/metrics")
		return svMetric(page, `resque_expire_jobs_removed_total{action="deleted",queue="mail"}`) == 5 &&
			svMetric(page, `resque_expire_jobs{queue="mail",state="expired"}`) == 0
	})
	for series, want := range map[string]float64{
		"resque_expire_lock_held": 0, `resque_expire_jobs{queue="mail",state="live"}`: 2,
		`resque_expire_jobs{queue="mail",state="expired"}`: 0, "resque_expire_redis_up": 1,
	} {
		if got := svMetric(page, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	svStop(t, p)
	if rdb.Exists(ctx, defaultLayout.Lock()).Val() != 0 {
		t.Error("serve left the sweep lock behind")
	}
	if n := rdb.LLen(ctx, defaultLayout.Queue("mail")).Val(); n != 2 {
		t.Errorf("%d jobs left, want the 2 live ones", n)
	}
	t.Logf("took %v", time.Since(t0).Round(time.Millisecond))
}

// prometheusBin is Debian's prometheus, which make test installs.
func prometheusBin(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPED: %s not installed (make test installs Debian's prometheus package as root: scripts/ensure-prometheus.sh)", name)
	}
	return path
}

// TestServeScrapedByPrometheus: a real Prometheus server on loopback
// scrapes serve; after a cycle removes expired jobs, Prometheus's HTTP API
// answers resque_expire_jobs_removed_total with their number.
func TestServeScrapedByPrometheus(t *testing.T) {
	t.Parallel()
	prom := prometheusBin(t, "prometheus")
	t0 := time.Now()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	svSeed(t, rdb, "mail:high", "p", 4, true)
	svSeed(t, rdb, "reports", "r", 3, true)
	serveAddr := fmt.Sprintf("127.0.0.1:%d", svFreePort(t))
	p := spawn(t, nil, "--redis", srv.URL(), "--log-format", "json",
		"serve", "--interval", "1s", "--listen", serveAddr, "--archive", filepath.Join(t.TempDir(), "removed.jsonl"))

	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: resque-expire\n  static_configs:\n  - targets: ['%s']\n", serveAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", svFreePort(t))
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	var promLog strings.Builder
	cmd.Stdout, cmd.Stderr = &promLog, &promLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	query := func(q string) (float64, bool) {
		code, body := svGet("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if code != 200 {
			return 0, false
		}
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(body), &r) != nil || len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	var got float64
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, ok := query(`sum(resque_expire_jobs_removed_total{action="archived"})`)
		if ok && v == 7 {
			got = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never answered 7 removed jobs (last %v, ok %v)\n--- prometheus log:\n%s", v, ok, tail(promLog.String(), 2000))
		}
		if p.exited() {
			t.Fatalf("serve exited:\n%s", p.res)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v, ok := query(`resque_expire_jobs_removed_total{queue="mail:high",action="archived"}`); !ok || v != 4 {
		t.Errorf("mail:high removed = %v (ok %v), want 4", v, ok)
	}
	if v, ok := query(`up{job="resque-expire"}`); !ok || v != 1 {
		t.Errorf("up = %v, want 1", v)
	}
	t.Logf("Prometheus read %v removed jobs after %v", got, time.Since(t0).Round(time.Millisecond))
	svStop(t, p)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestMetricsFilesPassPromtool: the --metrics-file of sweep, inspect,
// audit and check passes `promtool check metrics`, holds no timestamps,
// and no series appears in two files (node_exporter would refuse it).
func TestMetricsFilesPassPromtool(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	svSeed(t, rdb, "mail:high", "f", 4, true)
	svSeed(t, rdb, "mail:high", "g", 2, false)
	dir := t.TempDir()
	files := map[string]string{}
	for _, args := range [][]string{
		{"sweep", "--to-failed"}, {"inspect"}, {"audit"}, {"check", "--max-expired", "0"},
	} {
		path := filepath.Join(dir, "resque_expire_"+args[0]+".prom")
		files[args[0]] = path
		run(t, srv, append(append([]string{"--log-level", "warn"}, args...), "--metrics-file", path)...).expect(t, 0)
	}
	series := map[string]string{}
	stamp := regexp.MustCompile(`^\S+(\{.*\})? \S+ \S+$`)
	for cmd, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			if stamp.MatchString(line) {
				t.Errorf("%s: a sample with a timestamp: %s", cmd, line)
			}
			name := line[:strings.LastIndexByte(line, ' ')]
			if other, ok := series[name]; ok {
				t.Errorf("%s is in the files of both %s and %s", name, other, cmd)
			}
			series[name] = cmd
		}
		if !strings.HasSuffix(text, "\n") {
			t.Errorf("%s: the file does not end with a newline", cmd)
		}
	}
	for series, want := range map[string]float64{
		`resque_expire_jobs_removed_total{action="failed",queue="mail:high"}`: 4,
		`resque_expire_jobs{queue="mail:high",state="live"}`:                  2,
		`resque_expire_failed_jobs`:                                           4,
		`resque_expire_last_success_timestamp_seconds{command="check"}`:       -1, // present
	} {
		got, ok := -1.0, false
		for _, path := range files {
			b, _ := os.ReadFile(path)
			if v := svMetric(string(b), series); v >= 0 {
				got, ok = v, true
			}
		}
		switch {
		case !ok:
			t.Errorf("no file has %s", series)
		case want >= 0 && got != want:
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// A sweep that finds the lock held rewrites its file: lock_held 1, and
	// the last success of the file it replaces.
	before, _ := os.ReadFile(files["sweep"])
	lastOK := svMetric(string(before), `resque_expire_last_success_timestamp_seconds{command="sweep"}`)
	rdb.Set(context.Background(), defaultLayout.Lock(), "another run", time.Minute)
	run(t, srv, "--log-level", "error", "sweep", "--metrics-file", files["sweep"]).expect(t, 75)
	after, _ := os.ReadFile(files["sweep"])
	if v := svMetric(string(after), "resque_expire_lock_held"); v != 1 {
		t.Errorf("lock_held %v after a run that found the lock held, want 1", v)
	}
	if v := svMetric(string(after), `resque_expire_last_success_timestamp_seconds{command="sweep"}`); v != lastOK || v <= 0 {
		t.Errorf("last success %v after a locked-out run, want the previous %v", v, lastOK)
	}

	promtool := prometheusBin(t, "promtool")
	for cmd, path := range files {
		c := exec.Command(promtool, "check", "metrics")
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		c.Stdin = f
		out, err := c.CombinedOutput()
		f.Close()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("promtool check metrics on %s's file: %v\n%s", cmd, err, out)
		}
	}
	t.Logf("took %v", time.Since(t0).Round(time.Millisecond))
}

// TestServeSIGTERMMidSweep: SIGTERM while a cycle is sweeping a large
// queue: serve finishes its batch, releases the lock, flushes the archive
// and exits 0 within seconds; every job gone from the queue is in the
// archive and counted once in the stats hash.
func TestServeSIGTERMMidSweep(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	const n = 40000
	svSeed(t, rdb, "big", "b", n, true)
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	p := spawn(t, nil, "--redis", srv.URL(), "--log-format", "json", "--batch", "100",
		"serve", "--interval", "1m", "--listen", fmt.Sprintf("127.0.0.1:%d", svFreePort(t)), "--archive", archive,
		"--max-script-time", "1ms")
	svWait(t, p, 10*time.Second, "the sweep under way", func() bool {
		st, err := os.Stat(archive)
		return err == nil && st.Size() > 64<<10
	})
	svStop(t, p)
	left := rdb.LLen(ctx, defaultLayout.Queue("big")).Val()
	if left == 0 {
		t.Log("the sweep finished before SIGTERM arrived; the test proves less")
	}
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	archived := int64(strings.Count(string(b), "\n"))
	counted, _ := strconv.ParseInt(rdb.HGet(ctx, defaultLayout.Stats(), "archived:big").Val(), 10, 64)
	if archived != n-left || counted != n-left {
		t.Errorf("%d jobs gone, %d archived, %d counted: want all equal", n-left, archived, counted)
	}
	if rdb.Exists(ctx, defaultLayout.Lock()).Val() != 0 {
		t.Error("the lock is still held after SIGTERM")
	}
	if j := rdb.LLen(ctx, defaultLayout.Journal()).Val(); j != 0 {
		t.Errorf("%d records left in the journal", j)
	}
	t.Logf("removed %d of %d before stopping; took %v", n-left, n, time.Since(t0).Round(time.Millisecond))
}
