// Package e2e runs the resque-expire binary, built once by TestMain, against
// throwaway Redis servers (internal/redistest), the way an operator or cron
// would: flags, stdin that is not a terminal, stdout and stderr, exit codes.
//
// The harness, for every test file of the package:
//
//	binary() string                              path of the built binary
//	run(t, srv, args...) result                  run it with --redis srv.URL() prepended
//	runEnv(t, env, stdin, args...) result        run it with extra environment and stdin
//	spawn(t, env, args...) *proc                 start it in the background (wait or kill it)
//	r.expect(t, code) / r.decode(t, &v) / r.lines()
//	fill(t, rdb, spec) sample.Stats              seed sample data under defaultLayout
//	snapshot(t, rdb) / sameSnapshot(t, what, a, b)   show that a run wrote nothing
//
// Every run gets a clean environment (no REDIS_*, RESQUE_* variables from
// the outside), stdin that is not a terminal, and a 60s time limit.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/sample"
)

// runTimeout bounds every run of the binary.
const runTimeout = 60 * time.Second

// defaultLayout is the key layout the binary uses without --namespace or
// --expiration-key.
var defaultLayout = resque.MustLayout("resque", "")

var binPath string

// TestMain builds the binary once for the whole package.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "resque-expire-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	binPath = filepath.Join(dir, "resque-expire")
	build := exec.Command("go", "build", "-o", binPath, "github.com/resque-expire/resque-expire")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the binary failed:", err)
		_ = os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of the resque-expire binary under test.
func binary() string { return binPath }

// result is what one run of the binary produced.
type result struct {
	stdout, stderr string
	code           int
}

// String shows a result in failure messages.
func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s\n--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// expect fails the test unless the run exited with code.
func (r result) expect(t testing.TB, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
	return r
}

// decode parses stdout as exactly one JSON value into v, failing the test if
// stdout holds anything else.
func (r result) decode(t testing.TB, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON value\n%s", r)
	}
}

// lines splits stdout into its non-empty lines.
func (r result) lines() []string { return splitLines(r.stdout) }

// logs parses stderr as JSON log lines (the format the binary logs in when
// stderr is not a terminal), failing the test on any other line.
func (r result) logs(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range splitLines(r.stderr) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stderr line is not a JSON log line: %q\n%s", l, r)
		}
		out = append(out, m)
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// run runs the binary against srv: --redis srv.URL() is prepended to args.
func run(t testing.TB, srv *redisserver.Server, args ...string) result {
	t.Helper()
	return runEnv(t, nil, "", append([]string{"--redis", srv.URL()}, args...)...)
}

// runEnv runs the binary with args as given, env added to the clean base
// environment (later entries win), and stdin fed from a pipe.
func runEnv(t testing.TB, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(), args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("resque-expire %s: still running after %v\n%s", strings.Join(args, " "), runTimeout, r)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("resque-expire %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// baseEnv is the test process's environment without anything that would
// configure the binary behind the test's back.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "REDIS_") || strings.HasPrefix(kv, "RESQUE_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// proc is a run of the binary in the background.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	res            result
}

// spawn starts the binary in the background with args as given (add
// "--redis", srv.URL() yourself) and env added to the clean base
// environment. It is killed when the test ends if still running.
func spawn(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary(), args...), done: make(chan struct{})}
	p.cmd.Env = append(baseEnv(), env...)
	p.cmd.Stdin = strings.NewReader("")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.res = result{stdout: p.stdout.String(), stderr: p.stderr.String(), code: p.cmd.ProcessState.ExitCode()}
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			p.res.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process (at most runTimeout) and returns its result;
// a process killed by a signal has code -1.
func (p *proc) wait(t testing.TB) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(runTimeout):
		t.Fatalf("background resque-expire still running after %v", runTimeout)
	}
	return p.res
}

// fill seeds spec's sample data under defaultLayout.
func fill(t testing.TB, rdb redis.UniversalClient, spec sample.Spec) sample.Stats {
	t.Helper()
	st, err := sample.Fill(context.Background(), rdb, defaultLayout, spec)
	if err != nil {
		t.Fatalf("fill sample data: %v", err)
	}
	return st
}

// snapshot returns every key of rdb's database with its DUMP serialization
// and whether it has a TTL: equal snapshots mean nothing was written.
func snapshot(t testing.TB, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		d, err := rdb.Dump(ctx, k).Result()
		if err != nil && err != redis.Nil {
			t.Fatalf("dump %s: %v", k, err)
		}
		out[k] = fmt.Sprintf("%q ttl=%v", d, rdb.PTTL(ctx, k).Val() > 0)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameSnapshot fails the test, naming the keys, if two snapshots differ.
func sameSnapshot(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	var diff []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			diff = append(diff, "deleted "+k)
		} else if w != v {
			diff = append(diff, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, "created "+k)
		}
	}
	if len(diff) > 0 {
		sort.Strings(diff)
		t.Errorf("%s changed Redis:\n%s", what, strings.Join(diff, "\n"))
	}
}
