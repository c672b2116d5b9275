package e2e

// Operator safety: typos and redirections that used to turn into silent
// no-ops or destructive runs, and logs that cron and terminals can use.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// TestOperatorStrayArguments: a positional argument a command does not
// document is a usage error (exit 2, `unexpected argument "x"`) before
// anything touches Redis; "sweep dry-run" used to run a real sweep.
func TestOperatorStrayArguments(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	before := snapshot(t, rdb)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "dry-run"}, "dry-run"},
		{[]string{"sweep", "--", "--dry-run"}, "--dry-run"},
		{[]string{"sweep", "--yes", "--", "--dry-run"}, "--dry-run"},
		{[]string{"sweep", "--queue", "mailers", "critical"}, "critical"},
		{[]string{"sweep", "critical", "--queue", "mailers"}, "critical"},
		{[]string{"list", "expired"}, "expired"},
		{[]string{"check", "--max-expired", "0", "extra"}, "extra"},
		{[]string{"inspect", "mailers"}, "mailers"},
		{[]string{"backfill", "--ttl", "1h", "mailers"}, "mailers"},
		{[]string{"audit", "keys"}, "keys"},
		{[]string{"version", "now"}, "now"},
		{[]string{"completion", "bash", "zsh"}, "zsh"},
		{[]string{"restore", "a.jsonl", "b.jsonl"}, "b.jsonl"},
		// Global flags are hoisted around the stray argument; it stays.
		{[]string{"sweep", "--format", "json", "dry-run"}, "dry-run"},
		{[]string{"sweep", "dry-run", "--format", "json", "--quiet"}, "dry-run"},
		{[]string{"--format", "json", "sweep", "dry-run", "--yes"}, "dry-run"},
		{[]string{"sweep", "--quiet", "false"}, "false"},
	}
	for _, c := range cases {
		r := run(t, srv, c.args...)
		if r.code != 2 {
			t.Errorf("%v: want exit 2, got %s", c.args, r)
			continue
		}
		oneLineError(t, r, `unexpected argument "`+c.want+`"`)
		if r.stdout != "" {
			t.Errorf("%v: output on stdout: %q", c.args, r.stdout)
		}
	}
	sameSnapshot(t, "stray arguments", before, snapshot(t, rdb))

	// The documented operands still work.
	if r := run(t, srv, "completion", "bash").expect(t, 0); !strings.Contains(r.stdout, "complete") {
		t.Errorf("completion bash printed %q", r.stdout)
	}
	archive := filepath.Join(t.TempDir(), "none.jsonl")
	if err := os.WriteFile(archive, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, srv, "restore", "--dry-run", archive); r.code == 2 || strings.Contains(r.stderr, "unexpected argument") {
		t.Errorf("restore with its one archive file: %s", r)
	}
	run(t, srv, "enqueue", "--queue", "canary", "--class", "Canary", "--ttl", "1h", "--", "42", "--not-a-flag").expect(t, 0)
}

// TestOperatorEmptyAndShortValues: an empty --namespace, --queue or
// --class, and a --lock-ttl too short to be renewed in time, are usage
// errors instead of failing (or matching nothing) later.
func TestOperatorEmptyAndShortValues(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	before := snapshot(t, rdb)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--namespace", "", "inspect"}, "--namespace"},
		{[]string{"sweep", "--yes", "--namespace", ""}, "--namespace"},
		{[]string{"--namespace", ":", "list"}, "--namespace"},
		{[]string{"inspect", "--class", ""}, "--class"},
		{[]string{"sweep", "--yes", "--class", ""}, "--class"},
		{[]string{"list", "--queue", "mailers", "--queue", ""}, "--queue"},
		{[]string{"sweep", "--yes", "--lock-ttl", "1ms"}, "--lock-ttl"},
		{[]string{"sweep", "--yes", "--lock-ttl", "999ms"}, "--lock-ttl"},
	} {
		r := run(t, srv, c.args...)
		if r.code != 2 {
			t.Errorf("%q: want exit 2, got %s", c.args, r)
			continue
		}
		oneLineError(t, r, c.want)
	}
	sameSnapshot(t, "rejected values", before, snapshot(t, rdb))
	var res sweepJSON
	run(t, srv, "sweep", "--lock-ttl", "1s", "--format", "json").expect(t, 0).decode(t, &res)
	if res.Removed == 0 {
		t.Errorf("a sweep with --lock-ttl 1s removed nothing: %+v", res)
	}
}

// TestOperatorFilterMatchedNothing: a --queue or --class glob that matches
// nothing is reported (a warning and a JSON problem) rather than being a
// silent no-op, and inspect names the filter that left jobs out.
func TestOperatorFilterMatchedNothing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	type problems struct {
		Problems []struct{ Key, Kind, Detail string } `json:"problems"`
	}
	unmatched := func(p problems) []string {
		var out []string
		for _, pr := range p.Problems {
			if pr.Kind == "filter-matched-nothing" {
				out = append(out, pr.Detail)
			}
		}
		return out
	}
	warned := func(r result, what string) bool {
		for _, l := range r.logs(t) {
			if l["level"] == "warn" && l["kind"] == "filter-matched-nothing" && strings.Contains(l["message"].(string), what) {
				return true
			}
		}
		return false
	}

	var p problems
	r := run(t, srv, "inspect", "--queue", "mailerz*", "--format", "json").expect(t, 0)
	r.decode(t, &p)
	if got := unmatched(p); len(got) != 1 || !strings.Contains(got[0], `"mailerz*"`) || !warned(r, "mailerz*") {
		t.Errorf("inspect --queue 'mailerz*': problems %q\n%s", got, r)
	}

	before := snapshot(t, rdb)
	p = problems{}
	r = run(t, srv, "sweep", "--class", "Nope::*", "--format", "json").expect(t, 0)
	r.decode(t, &p)
	if got := unmatched(p); len(got) != 1 || !strings.Contains(got[0], `"Nope::*"`) || !warned(r, "Nope::*") {
		t.Errorf("sweep --class 'Nope::*': problems %q\n%s", got, r)
	}
	sameSnapshot(t, "a sweep whose --class matched nothing", before, snapshot(t, rdb))

	// A pattern that matches is not reported, even next to one that does not.
	p = problems{}
	r = run(t, srv, "sweep", "--dry-run", "--queue", "mail*", "--queue", "defualt", "--format", "json").expect(t, 0)
	r.decode(t, &p)
	if got := unmatched(p); len(got) != 1 || !strings.Contains(got[0], `"defualt"`) {
		t.Errorf("sweep --queue 'mail*' --queue defualt: problems %q\n%s", got, r)
	}

	r = run(t, srv, "list", "--queue", "nothing-here").expect(t, 0)
	if !warned(r, "nothing-here") {
		t.Errorf("list --queue nothing-here does not warn:\n%s", r)
	}

	// No filter matched nothing: no problem.
	p = problems{}
	run(t, srv, "inspect", "--queue", "mail*", "--class", "*", "--format", "json").expect(t, 0).decode(t, &p)
	if got := unmatched(p); len(got) != 0 {
		t.Errorf("matching filters reported: %q", got)
	}

	// Delayed jobs of other queues are left out by --queue, not --class.
	r = run(t, srv, "inspect", "--queue", "mail*").expect(t, 0)
	if strings.Contains(r.stdout, "did not match --class") || !strings.Contains(r.stdout, "did not match --queue") {
		t.Errorf("inspect --queue 'mail*' blames the wrong filter:\n%s", r.stdout)
	}
}

// TestOperatorJSONErrorLine: under --log-format json every stderr line is
// a JSON object, the final error line too, with the exit code in it.
func TestOperatorJSONErrorLine(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	closed := "redis://" + closedPort(t) + "/0"
	for _, c := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{nil, []string{"--redis", srv.URL(), "--log-format", "json", "sweep", "dry-run"}, 2, "dry-run"},
		{nil, []string{"--redis", srv.URL(), "sweep", "--bogus", "--log-format", "json"}, 2, "bogus"},
		{nil, []string{"--redis", srv.URL(), "--log-format=json", "list", "--state", "stale"}, 2, "stale"},
		{[]string{"RESQUE_EXPIRE_LOG_FORMAT=json"}, []string{"--redis", srv.URL(), "frobnicate"}, 2, "frobnicate"},
		{nil, []string{"--redis", closed, "--log-format", "json", "--log-level", "debug", "inspect"}, 1, "connect"},
		{[]string{"RESQUE_EXPIRE_LOG_FORMAT=json"}, []string{"--redis", closed, "sweep", "--yes"}, 1, "connect"},
	} {
		r := runEnv(t, c.env, "", c.args...)
		if r.code != c.code {
			t.Errorf("%v %v: want exit %d, got %s", c.env, c.args, c.code, r)
			continue
		}
		logs := r.logs(t)
		if len(logs) == 0 {
			t.Errorf("%v: nothing on stderr", c.args)
			continue
		}
		last := logs[len(logs)-1]
		code, _ := last["exit_code"].(float64)
		if last["level"] != "error" || int(code) != c.code || !strings.Contains(last["message"].(string), c.want) {
			t.Errorf("%v: last stderr line is not the error event with exit_code %d mentioning %q:\n%s", c.args, c.code, c.want, r)
		}
	}
	// Without --log-format json the error line stays the plain one.
	oneLineError(t, run(t, srv, "sweep", "dry-run").expect(t, 2), "dry-run")
}

// TestOperatorREADMECronLine runs the README's cron line as cron would,
// through sh with its redirections, and checks that the log it appends to
// is JSON on every line: logs, error and summary alike, no table.
func TestOperatorREADMECronLine(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\*/5 \* \* \* \* REDIS_URL=\S+ (resque-expire .*)$`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no cron line of the form */5 * * * * REDIS_URL=... resque-expire ...")
	}
	dir := t.TempDir()
	line := strings.NewReplacer("/var/lib/resque-expire/", dir+"/", "/var/log/", dir+"/").Replace(string(m[1]))
	if !strings.Contains(line, dir+"/resque-expire.log") {
		t.Fatalf("the cron line does not log to /var/log/resque-expire.log: %s", m[1])
	}
	logFile := filepath.Join(dir, "resque-expire.log")

	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	env := []string{"REDIS_URL=" + srv.URL(), "PATH=" + filepath.Dir(binary()) + ":" + os.Getenv("PATH")}
	cronRun := func() result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Env = append(baseEnv(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		res := result{stdout: stdout.String(), stderr: stderr.String()}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			res.code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("sh -c %s: %v", line, err)
		}
		return res
	}
	first := cronRun()
	// A second run while the lock is held by someone else: exit 75 and an
	// error line, also JSON.
	rdb.Set(context.Background(), defaultLayout.Lock(), `{"token":"t","host":"elsewhere","pid":1,"since":"2024-05-01T12:00:00Z"}`, time.Minute)
	second := cronRun()
	if first.code != 0 || second.code != 75 {
		t.Errorf("cron runs: want exit 0 then 75, got %d and %d", first.code, second.code)
	}
	if first.stdout+first.stderr+second.stdout+second.stderr != "" {
		t.Errorf("the cron line printed outside its log:\n%s\n%s", first, second)
	}
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	removed, summaries, lines := 0, 0, 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Errorf("log line %d is not JSON (%v): %q", lines, err, sc.Text())
			continue
		}
		if v["message"] == "removed expired job" {
			removed++
		}
		if _, ok := v["removed"]; ok {
			summaries++
		}
	}
	if removed == 0 || summaries != 1 {
		t.Errorf("log has %d removal lines and %d summaries; want some and 1:\n%s", removed, summaries, data)
	}
}

// TestOperatorRefusedSweep: a sweep refused before it did anything (a
// read-only replica, a lock key it cannot use) prints the one error line
// of docs/exit-codes.md: no warning, no all-zero "partial summary".
func TestOperatorRefusedSweep(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	mdb := redistest.Client(t, master)
	fill(t, mdb, sweepSpec())
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	rdb := redistest.Client(t, replica)
	ctx := context.Background()
	want := mdb.DBSize(ctx).Val()
	for end := time.Now().Add(15 * time.Second); ; {
		if strings.Contains(rdb.Info(ctx, "replication").Val(), "master_link_status:up") && rdb.DBSize(ctx).Val() == want {
			break
		}
		if time.Now().After(end) {
			t.Fatal("replica did not sync")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, args := range [][]string{{"sweep", "--yes"}, {"sweep", "--yes", "--format", "json"}} {
		r := run(t, replica, args...).expect(t, 1)
		oneLineError(t, r, "read-only replica")
		if r.stdout != "" {
			t.Errorf("%v on a replica printed a summary:\n%s", args, r.stdout)
		}
	}

	other := redistest.Start(t)
	odb := redistest.Client(t, other)
	fill(t, odb, sweepSpec())
	odb.HSet(ctx, defaultLayout.Lock(), "owner", "someone")
	r := run(t, other, "sweep", "--yes").expect(t, 1)
	oneLineError(t, r, "hash")
	if r.stdout != "" {
		t.Errorf("a sweep refused by its lock key printed a summary:\n%s", r.stdout)
	}
}

// ptyReader collects what the binary writes to a pseudo-terminal.
type ptyReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func readPTY(master *os.File) *ptyReader {
	p := &ptyReader{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			p.mu.Lock()
			p.buf.Write(b[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *ptyReader) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// runOnTTY runs the binary with stdin and/or stderr on a pseudo-terminal,
// types input on it, and returns the result and what the terminal showed.
func runOnTTY(t *testing.T, stdinTTY, stderrTTY, ctty bool, input string, args ...string) (result, string) {
	t.Helper()
	master, slave := openPTY(t)
	out := readPTY(master)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(), args...)
	cmd.Env = baseEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stdin, cmd.Stderr = strings.NewReader(input), &stderr
	if stdinTTY {
		cmd.Stdin = slave
	}
	if stderrTTY {
		cmd.Stderr = slave
	}
	cmd.SysProcAttr = sessionAttr(ctty && stdinTTY)
	if stdinTTY && input != "" {
		if _, err := io.WriteString(master, input); err != nil {
			t.Fatal(err)
		}
	}
	err := cmd.Run()
	slave.Close()
	select {
	case <-out.done:
	case <-time.After(5 * time.Second):
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("resque-expire %v: still running after %v (waiting for an answer?)\n%s\n--- terminal:\n%s", args, runTimeout, r, out)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r, out.String()
}

// TestOperatorConfirmation: the question is asked on the terminal even
// when stderr goes to a file; with no terminal to ask on, the sweep is
// refused (exit 2) instead of waiting; answering no is exit 1.
func TestOperatorConfirmation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	before := snapshot(t, rdb)
	url := "--redis=" + srv.URL()

	// stdin and stderr on the terminal; "n" aborts with exit 1.
	r, tty := runOnTTY(t, true, true, true, "n\n", url, "sweep")
	if r.code != 1 || !strings.Contains(tty, "[y/N]") {
		t.Errorf("answering n: want exit 1 after a question, got %s\n--- terminal:\n%s", r, tty)
	}
	sameSnapshot(t, "a sweep answered with n", before, snapshot(t, rdb))

	// stderr to a file: the question still shows on the terminal, and
	// nowhere in the log.
	r, tty = runOnTTY(t, true, false, true, "no\n", url, "sweep")
	if r.code != 1 || !strings.Contains(tty, "[y/N]") || strings.Contains(r.stderr, "[y/N]") {
		t.Errorf("sweep 2>file: want the question on the terminal and exit 1, got %s\n--- terminal:\n%s", r, tty)
	}
	if !strings.Contains(r.stderr, "aborted") {
		t.Errorf("sweep 2>file: the log does not say the sweep was aborted:\n%s", r)
	}
	sameSnapshot(t, "a sweep answered with no", before, snapshot(t, rdb))

	// No terminal to ask on (no controlling terminal, stderr a file):
	// refused, even though "y" is waiting on stdin.
	r, _ = runOnTTY(t, true, false, false, "y\n", url, "sweep")
	if r.code != 2 {
		t.Errorf("no terminal to ask on: want exit 2, got %s", r)
	}
	oneLineError(t, r, "--yes", "--dry-run")
	sameSnapshot(t, "a sweep with no terminal to ask on", before, snapshot(t, rdb))

	// "y" on the terminal sweeps.
	r, _ = runOnTTY(t, true, false, true, "y\n", url, "sweep", "--format", "json")
	r.expect(t, 0)
	var res sweepJSON
	r.decode(t, &res)
	if res.Removed == 0 {
		t.Errorf("answering y removed nothing: %s", r)
	}
}

// TestOperatorTerminalLogs: on a terminal a sweep does not print a line
// per removed job (it would bury the progress bar); --log-level debug
// shows them. Off a terminal, each removed job still has its JSON line.
func TestOperatorTerminalLogs(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	url := "--redis=" + srv.URL()
	r, tty := runOnTTY(t, false, true, false, "", url, "sweep", "--dry-run", "--format", "json")
	r.expect(t, 0)
	var res sweepJSON
	r.decode(t, &res)
	if res.Removed == 0 {
		t.Fatalf("nothing to remove: %s", r)
	}
	if n := strings.Count(tty, "would remove expired job"); n != 0 {
		t.Errorf("a sweep on a terminal printed %d per-job lines:\n%s", n, tty)
	}
	_, tty = runOnTTY(t, false, true, false, "", url, "--log-level", "debug", "sweep", "--dry-run")
	if n := strings.Count(tty, "would remove expired job"); int64(n) != res.Removed {
		t.Errorf("--log-level debug on a terminal: %d per-job lines, want %d", n, res.Removed)
	}

	r = run(t, srv, "sweep", "--format", "json").expect(t, 0)
	res = sweepJSON{}
	r.decode(t, &res)
	n := 0
	for _, l := range r.logs(t) {
		if l["message"] == "removed expired job" && l["level"] == "info" {
			n++
		}
	}
	if int64(n) != res.Removed || n == 0 {
		t.Errorf("off a terminal: %d per-job lines for %d removed jobs", n, res.Removed)
	}
}

// TestOperatorDocs: examples an operator copies must do what they say.
func TestOperatorDocs(t *testing.T) {
	t.Parallel()
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// The GitHub Actions gate pipes check into tee: without pipefail the
	// step's status is tee's and the gate can never fail.
	check := read("docs/check.md")
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(check, -1) {
		if strings.Contains(block[1], "| tee") && !strings.Contains(block[1], "pipefail") {
			t.Errorf("docs/check.md pipes check into tee without pipefail:\n%s", block[1])
		}
	}
	// backfill's JSON has no "stopped": "" (the field is absent, null to jq).
	if strings.Contains(read("docs/backfill.md"), `"stopped": ""`) {
		t.Error(`docs/backfill.md documents "stopped": "", which the JSON never holds`)
	}
	// The README lists every global flag.
	readme := read("README.md")
	for _, f := range []string{"--redis", "--timeout", "--namespace", "--id-path", "--expiration-key", "--batch", "--format", "--log-level", "--log-format", "--quiet", "--no-progress"} {
		if !strings.Contains(readme, "`"+f) {
			t.Errorf("README.md's global flags omit %s", f)
		}
	}
	// Every example that sweeps after a canary sweeps the canary's queue only.
	r := runEnv(t, nil, "", "enqueue", "--help").expect(t, 0)
	help := r.stdout + read("docs/enqueue.md")
	for _, l := range strings.Split(help, "\n") {
		if strings.Contains(l, "canary") && strings.Contains(l, "sweep --yes") && !strings.Contains(l, "--queue canary") {
			t.Errorf("a canary example sweeps every queue: %s", strings.TrimSpace(l))
		}
		if strings.Contains(l, "resque-expire sweep --yes") && strings.Contains(l, "sleep") && !strings.Contains(l, "sweep --yes --queue") {
			t.Errorf("a canary example sweeps every queue: %s", strings.TrimSpace(l))
		}
	}
}

// TestOperatorShortPasswordRedaction: with a password as short as "re" or
// "s", stderr hides it where it is a credential and leaves every ordinary
// word and JSON key alone ("xxxxxdis" in place of "redis" would both mangle
// the log and give the password away).
func TestOperatorShortPasswordRedaction(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{"re", "s"} {
		srv := redistest.Start(t, "--requirepass", pw)
		fill(t, redistest.Client(t, srv), sweepSpec())
		good := "redis://:" + pw + "@" + srv.Addr() + "/0"
		check := func(what string, r result) {
			t.Helper()
			if strings.Contains(r.stderr, "xxxxx"+strings.TrimPrefix("redis", pw)) || strings.Contains(r.stderr, "xxxxxdis") ||
				strings.Contains(r.stderr, "jobxxxxx") || strings.Contains(r.stderr, "xxxxxmoved") {
				t.Errorf("%s (password %q): words mangled by redaction:\n%s", what, pw, r.stderr)
			}
			if strings.Contains(r.stderr, ":"+pw+"@") {
				t.Errorf("%s (password %q): the password is printed:\n%s", what, pw, r.stderr)
			}
		}
		r := runEnv(t, []string{"REDIS_URL=" + good}, "", "--log-level", "debug", "--log-format", "json", "sweep", "--format", "json")
		r.expect(t, 0)
		check("sweep", r)
		sawURL, sawRemoved := false, false
		for _, l := range r.logs(t) {
			if u, ok := l["redis"].(string); ok && strings.Contains(u, "://:xxxxx@") {
				sawURL = true
			}
			if l["message"] == "removed expired job" {
				sawRemoved = true
			}
		}
		if !sawURL || !sawRemoved {
			t.Errorf("password %q: want a \"redis\" field with the URL redacted and \"removed expired job\" lines:\n%s", pw, r.stderr)
		}

		// A wrong password as short, which occurs in the error's words.
		other := map[string]string{"re": "s", "s": "re"}[pw]
		wrong := "redis://:" + other + "@" + srv.Addr() + "/0"
		r = runEnv(t, []string{"REDIS_URL=" + wrong}, "", "inspect").expect(t, 1)
		check("wrong password", r)
		if strings.Contains(r.stderr, ":"+other+"@") {
			t.Errorf("the wrong password %q is printed:\n%s", other, r.stderr)
		}
		oneLineError(t, r, "connect to redis://:xxxxx@", "WRONGPASS invalid username-password pair")
	}
}
