package e2e

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// oneLineError fails the test unless stderr is exactly one line, the
// binary's "resque-expire: ..." error line, containing each of want.
func oneLineError(t *testing.T, r result, want ...string) {
	t.Helper()
	lines := splitLines(r.stderr)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "resque-expire: ") {
		t.Errorf("want one error line on stderr, got %d lines:\n%s", len(lines), r)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("error line %q does not mention %q", lines[0], w)
		}
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestExitOK: successful runs exit 0.
func TestExitOK(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := runEnv(t, nil, "", "version").expect(t, 0)
	if !strings.HasPrefix(r.stdout, "resque-expire ") {
		t.Errorf("version: %s", r)
	}
	run(t, srv, "inspect").expect(t, 0)
	run(t, srv, "sweep").expect(t, 0)
	run(t, srv, "list", "--format", "jsonl").expect(t, 0)
	// The environment works like --redis.
	runEnv(t, []string{"REDIS_URL=" + srv.URL()}, "", "inspect", "--format", "json").expect(t, 0)
}

// TestExitUnreachable: no Redis at the address: exit 1 with one line.
func TestExitUnreachable(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	for _, cmd := range [][]string{{"inspect"}, {"sweep", "--yes"}} {
		args := append([]string{"--redis", "redis://" + addr + "/0"}, cmd...)
		r := runEnv(t, nil, "", args...).expect(t, 1)
		oneLineError(t, r, addr)
		if r.stdout != "" {
			t.Errorf("%v: output on stdout: %q", cmd, r.stdout)
		}
	}
}

// TestExitWrongPassword: a refused password is exit 1 with one line, and
// neither the wrong password nor the right one is printed, however it was
// given. The right password is never printed either.
func TestExitWrongPassword(t *testing.T) {
	t.Parallel()
	const right, wrong = "s3cret-Right-pw77", "Wr0ng-Passw0rd-42"
	srv := redistest.Start(t, "--requirepass", right)
	secretFree := func(r result) {
		t.Helper()
		for _, s := range []string{right, wrong} {
			if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
				t.Errorf("the password %q was printed:\n%s", s, r)
			}
		}
	}
	addr := srv.Addr()
	for _, c := range []struct {
		env  []string
		args []string
	}{
		{args: []string{"--redis", "redis://:" + wrong + "@" + addr + "/0", "inspect"}},
		{args: []string{"--redis", "redis://default:" + wrong + "@" + addr + "/0", "sweep", "--log-level", "debug"}},
		{args: []string{"--redis=redis://:" + wrong + "@" + addr + "/0", "list", "--log-format", "console"}},
		{args: []string{"inspect", "--redis", "redis://:" + wrong + "@" + addr + "/0"}},
		{env: []string{"REDIS_URL=redis://:" + wrong + "@" + addr + "/0"}, args: []string{"inspect", "--log-level", "debug"}},
		{args: []string{"--redis", "redis://" + addr + "/0", "inspect"}}, // no password at all
	} {
		r := runEnv(t, c.env, "", c.args...)
		if r.code != 1 {
			t.Errorf("%v %v: want exit 1, got %s", c.env, c.args, r)
		}
		oneLineError(t, r)
		secretFree(r)
	}
	// With the right password everything works, and nothing shows it.
	good := "redis://:" + right + "@" + addr + "/0"
	fill(t, redistest.Client(t, srv), sweepSpec())
	for _, args := range [][]string{
		{"--redis", good, "--log-level", "debug", "inspect", "--format", "json"},
		{"--redis", good, "--log-level", "debug", "sweep", "--dry-run"},
		{"--log-level", "debug", "list", "--state", "expired", "--format", "jsonl", "--redis", good},
	} {
		secretFree(runEnv(t, nil, "", args...).expect(t, 0))
	}
	secretFree(runEnv(t, []string{"REDIS_URL=" + good}, "", "inspect", "--log-level", "debug").expect(t, 0))
	// Right password, wrong database: the error names the URL, redacted.
	r := runEnv(t, nil, "", "--redis", "redis://:"+right+"@"+addr+"/99", "inspect").expect(t, 1)
	oneLineError(t, r)
	secretFree(r)
	// A URL that does not parse still hides its password.
	r = runEnv(t, nil, "", "--redis", "redis://:"+right+"@"+srv.Addr()+":extra/0", "inspect").expect(t, 2)
	secretFree(r)
}

// TestExitUsage: usage errors exit 2 with one line, before touching Redis.
func TestExitUsage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	before := snapshot(t, rdb)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"sweep", "--bogus"}, "bogus"},
		{"unknown global flag", []string{"--bogus", "inspect"}, "bogus"},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"bad duration", []string{"sweep", "--grace", "5parsecs"}, "5parsecs"},
		{"negative duration", []string{"sweep", "--max-duration", "-1s"}, "max-duration"},
		{"negative limit", []string{"sweep", "--limit", "-3"}, "limit"},
		{"bad format", []string{"inspect", "--format", "xml"}, "xml"},
		{"bad format after command", []string{"sweep", "-o", "yaml"}, "yaml"},
		{"bad log format", []string{"inspect", "--log-format", "xml"}, "log-format"},
		{"bad batch", []string{"--batch", "0", "inspect"}, "batch"},
		{"bad state", []string{"list", "--state", "stale"}, "stale"},
		{"restore without file", []string{"restore"}, "archive"},
		{"orphans with a queue", []string{"sweep", "--orphans", "--queue", "mailers"}, "orphans"},
		{"bad expiration template", []string{"--expiration-key", "job:expiration", "inspect"}, "expiration"},
		{"format without its value", []string{"sweep", "--format"}, "format"},
		{"redis without its value", []string{"inspect", "--redis"}, "redis"},
	}
	for _, c := range cases {
		r := run(t, srv, c.args...)
		if r.code != 2 {
			t.Errorf("%s (%v): want exit 2, got %s", c.name, c.args, r)
			continue
		}
		oneLineError(t, r, c.want)
	}
	for _, url := range []string{"ftp://127.0.0.1/0", "redis://127.0.0.1:notaport/0", "not a url at all"} {
		r := runEnv(t, nil, "", "--redis", url, "inspect")
		if r.code != 2 {
			t.Errorf("bad URL %q: want exit 2, got %s", url, r)
			continue
		}
		oneLineError(t, r)
	}
	sameSnapshot(t, "usage errors", before, snapshot(t, rdb))
}

// TestExitLocked: a held lock is exit 75 (EX_TEMPFAIL) with one line; dry
// runs, which take no lock, still work.
func TestExitLocked(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	ctx := context.Background()
	if err := rdb.Set(ctx, defaultLayout.Lock(), `{"token":"t","host":"cron-host-7","pid":4321,"since":"2024-05-01T12:00:00Z"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, rdb)
	r := run(t, srv, "sweep", "--yes").expect(t, 75)
	oneLineError(t, r, "lock", "cron-host-7", strconv.Itoa(4321))
	sameSnapshot(t, "a locked sweep", before, snapshot(t, rdb))
	run(t, srv, "sweep", "--dry-run").expect(t, 0)

	rdb.Set(ctx, defaultLayout.Lock(), "hand-made", 0)
	oneLineError(t, run(t, srv, "sweep", "--format", "json").expect(t, 75), "hand-made")
	rdb.Del(ctx, defaultLayout.Lock())
	run(t, srv, "sweep").expect(t, 0)
}
