package e2e

// Connections that used to hang or mislead: each must end within --timeout
// (plus a little to find out why) with one line naming the cause.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// connSlack is what a failed connection may take beyond --timeout: the
// process start and the probe that tells why.
const connSlack = 2 * time.Second

// timedRun runs the binary and fails the test if it took longer than limit.
func timedRun(t *testing.T, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	start := time.Now()
	r := runEnv(t, env, "", args...)
	if took := time.Since(start); took > limit {
		t.Errorf("resque-expire %s took %v, want at most %v\n%s", strings.Join(args, " "), took.Round(time.Millisecond), limit, r)
	}
	return r
}

// TestConnTLSToPlainPort: rediss:// (or --tls-*) against a plain-text Redis
// used to wait 15s and say "context deadline exceeded".
func TestConnTLSToPlainPort(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	for _, args := range [][]string{
		{"--redis", "rediss://" + srv.Addr() + "/0", "--tls-skip-verify", "--timeout", "1s", "inspect"},
		{"--redis", "redis://" + srv.Addr() + "/0", "--tls-skip-verify", "--timeout", "1s", "sweep", "--yes"},
	} {
		r := timedRun(t, time.Second+connSlack, nil, args...)
		fltExpectErrorLog(t, r, 1, "plain-text Redis, not TLS", "plain text, not TLS")
		if strings.Contains(r.stderr, "context deadline exceeded") {
			t.Errorf("the error still says only that time ran out: %s", r.stderr)
		}
	}
}

// TestConnPlainToTLSPort: redis:// against a TLS port says TLS is expected.
func TestConnPlainToTLSPort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := fltNewCA(t, dir, "ca")
	certFile, keyFile := ca.issue(t, dir, "redis")
	_, port := fltStartTLS(t, certFile, keyFile, ca.file)
	r := timedRun(t, time.Second+connSlack, nil, "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--timeout", "1s", "inspect")
	fltExpectErrorLog(t, r, 1, "expects TLS")
}

// TestConnStalledServer: a server that accepts and never answers fails
// within --timeout, saying so.
func TestConnStalledServer(t *testing.T) {
	t.Parallel()
	addr := redistest.SilentListener(t)
	r := timedRun(t, time.Second+connSlack, nil, "--redis", "redis://"+addr+"/0", "--timeout", "1s", "inspect")
	fltExpectErrorLog(t, r, 1, "no answer from "+addr+" within 1s")
}

// TestConnURLWithoutScheme: host:port without redis:// used to say
// "invalid URL scheme:"; it is a usage error saying what to write.
func TestConnURLWithoutScheme(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, want string }{
		{"127.0.0.1:6379", "write redis://127.0.0.1:6379/0"},
		{"localhost:6379", "write redis://localhost:6379/0"},
		{"redis.internal", "write redis://redis.internal/0"},
		{":secret-pw-5@redis.internal:6379", "no scheme"},
		{"http://redis.internal:6379", `unknown scheme "http"`},
	} {
		for _, r := range []result{
			runEnv(t, nil, "", "--redis", c.url, "inspect"),
			runEnv(t, []string{"REDIS_URL=" + c.url}, "", "inspect"),
		} {
			r.expect(t, 2)
			oneLineError(t, r, c.want)
			if strings.Contains(r.stderr, "secret-pw-5") {
				t.Errorf("the password was printed: %s", r.stderr)
			}
		}
	}
}

// TestConnACLPermissions: a user without +client|setname used to be
// refused at connect (NOPERM from the CLIENT SETNAME go-redis sends); the
// name is now set best-effort. A permission the tool does need is named,
// with the ACL rule that grants it.
func TestConnACLPermissions(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	admin := redistest.Client(t, srv)
	ctx := context.Background()
	fill(t, admin, sweepSpec())
	for _, rule := range [][]any{
		{"ACL", "SETUSER", "nosetname", "on", ">nosetname-pw", "~*", "&*", "+@all", "-client|setname"},
		{"ACL", "SETUSER", "noping", "on", ">noping-pw", "~*", "&*", "+@all", "-ping"},
		{"ACL", "SETUSER", "noselect", "on", ">noselect-pw", "~*", "&*", "+@all", "-select"},
	} {
		if err := admin.Do(ctx, rule...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	url := func(user string, db int) string {
		return fmt.Sprintf("redis://%s:%s-pw@%s/%d", user, user, srv.Addr(), db)
	}
	var inspected struct {
		Totals struct {
			Expired int64 `json:"expired"`
		} `json:"totals"`
	}
	runEnv(t, nil, "", "--redis", url("nosetname", 0), "inspect", "--format", "json").expect(t, 0).decode(t, &inspected)
	if inspected.Totals.Expired == 0 {
		t.Errorf("inspect as a user without +client|setname saw no expired jobs: %v", inspected.Totals)
	}
	runEnv(t, nil, "", "--redis", url("nosetname", 0), "sweep", "--yes").expect(t, 0)

	r := runEnv(t, nil, "", "--redis", url("noping", 0), "inspect")
	fltExpectErrorLog(t, r, 1, "may not run PING (grant +ping)")
	r = runEnv(t, nil, "", "--redis", url("noselect", 1), "inspect")
	fltExpectErrorLog(t, r, 1, "may not run SELECT (grant +select)")
}

// TestConnSentinelUnreachable: Sentinels that refuse or never answer used
// to take 15s whatever --timeout said, and to be reported as "all
// sentinels are unreachable" without a reason per Sentinel.
func TestConnSentinelUnreachable(t *testing.T) {
	t.Parallel()
	silent, closed := redistest.SilentListener(t), closedPort(t)
	r := timedRun(t, time.Second+connSlack, nil, "--sentinel-master", "mymaster", "--sentinel-addrs", silent+","+closed, "--timeout", "1s", "inspect")
	line := fltExpectErrorLog(t, r, 1, "no Sentinel answered")
	for _, want := range []string{silent + ": no answer within 1s", closed + ": ", "refused"} {
		if !strings.Contains(line, want) {
			t.Errorf("error line %q does not mention %q", line, want)
		}
	}
}

// TestConnSentinelFlagsAlone: Sentinel flags without --sentinel-master
// used to be ignored silently (the tool connected to --redis instead).
func TestConnSentinelFlagsAlone(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{args: []string{"--sentinel-addrs", "127.0.0.1:26379", "inspect"}, want: "--sentinel-addrs needs --sentinel-master"},
		{env: []string{"REDIS_SENTINEL_ADDRS=127.0.0.1:26379"}, args: []string{"inspect"}, want: "--sentinel-addrs needs --sentinel-master"},
		{env: []string{"REDIS_SENTINEL_PASSWORD=sentinel-pw-3"}, args: []string{"inspect"}, want: "--sentinel-password and --sentinel-username need --sentinel-master"},
		{args: []string{"--sentinel-master", "m", "inspect"}, want: "--sentinel-master needs --sentinel-addrs"},
	} {
		r := runEnv(t, c.env, "", append([]string{"--redis", srv.URL()}, c.args...)...).expect(t, 2)
		oneLineError(t, r, c.want)
		if strings.Contains(r.stderr+r.stdout, "sentinel-pw-3") {
			t.Errorf("the Sentinel password was printed: %s", r)
		}
	}
	// --help shows neither a Sentinel password from the environment nor
	// one given as a flag.
	for _, args := range [][]string{{"--help"}, {"inspect", "--help"}, {"--sentinel-password", "sentinel-pw-3", "--help"}} {
		r := runEnv(t, []string{"REDIS_SENTINEL_PASSWORD=sentinel-pw-3"}, "", args...)
		if strings.Contains(r.stdout+r.stderr, "sentinel-pw-3") {
			t.Errorf("%v printed the Sentinel password:\n%s", args, r)
		}
	}
}
