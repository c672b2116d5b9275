package redisconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// TestCheckScheme: a --redis value without a scheme is refused with what
// to write instead (go-redis said "invalid URL scheme:"), without the
// password.
func TestCheckScheme(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"127.0.0.1:6379", "no scheme: write redis://127.0.0.1:6379/0"},
		{"localhost:6379", "no scheme: write redis://localhost:6379/0"},
		{"redis.internal", "no scheme: write redis://redis.internal/0"},
		{"user:pw-77@h:6379", "no scheme: write redis://HOST:PORT/DB"},
		{"h:6379/2", "no scheme: write redis://HOST:PORT/DB"},
		{"http://h:6379", `unknown scheme "http"`},
	} {
		_, err := New(Options{URL: c.in})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--redis") {
			t.Errorf("New(%q) = %v, want an error with %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw-77") {
			t.Errorf("New(%q) error leaks the password: %v", c.in, err)
		}
	}
	for _, ok := range []string{"redis://h:1/0", "REDIS://h:1", "rediss://h:1", "unix:///tmp/r.sock"} {
		if err := checkScheme(ok); err != nil {
			t.Errorf("checkScheme(%q) = %v", ok, err)
		}
	}
}

// TestSentinelFlagsNeedEachOther: Sentinel settings are never ignored.
func TestSentinelFlagsNeedEachOther(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{SentinelAddrs: []string{"127.0.0.1:26379"}}, "--sentinel-addrs needs --sentinel-master"},
		{Options{SentinelPassword: "x"}, "need --sentinel-master"},
		{Options{SentinelUsername: "x"}, "need --sentinel-master"},
		{Options{SentinelMaster: "m"}, "--sentinel-master needs --sentinel-addrs"},
	} {
		if _, err := New(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want %q", c.o, err, c.want)
		}
	}
	c, err := New(Options{URL: "redis://:master-pw@x/0", SentinelMaster: "m", SentinelAddrs: []string{"127.0.0.1:26379"}, SentinelUsername: "su", SentinelPassword: "sp"})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if d := Describe(Options{SentinelMaster: "m", SentinelAddrs: []string{"a:1"}, SentinelPassword: "sp-secret"}); strings.Contains(d, "sp-secret") {
		t.Errorf("Describe shows the Sentinel password: %q", d)
	}
}

// openWithin runs Open and fails the test if it takes longer than limit.
func openWithin(t *testing.T, limit time.Duration, o Options) error {
	t.Helper()
	start := time.Now()
	c, err := Open(context.Background(), o)
	if took := time.Since(start); took > limit {
		t.Errorf("Open(%s) took %v, want at most %v (%v)", Describe(o), took, limit, err)
	}
	if err == nil {
		_ = c.Close()
	}
	return err
}

// TestOpenWithinTimeout: connections that used to hang for 15s end within
// ConnectTimeout (plus up to a second to tell why), naming the cause.
func TestOpenWithinTimeout(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	quiet := redistest.SilentListener(t)
	const budget = 500 * time.Millisecond
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{URL: "rediss://" + srv.Addr() + "/0", TLSSkipVerify: true}, "speaks plain-text Redis, not TLS"},
		{Options{URL: "redis://" + quiet + "/0"}, "no answer from " + quiet + " within 500ms"},
		{Options{URL: "rediss://" + quiet + "/0", TLSSkipVerify: true}, "no TLS handshake and PING with " + quiet},
		{Options{SentinelMaster: "m", SentinelAddrs: []string{quiet}}, "no Sentinel answered: " + quiet + ": no answer within 500ms"},
	} {
		c.o.ConnectTimeout = budget
		err := openWithin(t, budget+1500*time.Millisecond, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s) = %v, want %q", Describe(c.o), err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "context deadline exceeded") {
			t.Errorf("Open(%s) still says only that time ran out: %v", Describe(c.o), err)
		}
	}
}

// TestOpenACL: CLIENT SETNAME is best-effort; a missing permission the tool
// needs is named with the rule that grants it.
func TestOpenACL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	admin := redistest.Client(t, srv)
	ctx := context.Background()
	for _, rule := range [][]any{
		{"ACL", "SETUSER", "nosetname", "on", ">pw1", "~*", "&*", "+@all", "-client|setname"},
		{"ACL", "SETUSER", "noping", "on", ">pw2", "~*", "&*", "+@all", "-ping"},
	} {
		if err := admin.Do(ctx, rule...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Open(ctx, Options{URL: "redis://nosetname:pw1@" + srv.Addr() + "/0"})
	if err != nil {
		t.Fatalf("a user without +client|setname: %v", err)
	}
	_ = c.Close()
	// A user who may set the name gets it.
	c, err = Open(ctx, Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if name := c.ClientGetName(ctx).Val(); name != ClientName {
		t.Errorf("client name %q, want %q", name, ClientName)
	}
	_ = c.Close()
	_, err = Open(ctx, Options{URL: "redis://noping:pw2@" + srv.Addr() + "/0"})
	if err == nil || !strings.Contains(err.Error(), "the Redis user may not run PING (grant +ping)") || strings.Contains(err.Error(), "pw2") {
		t.Errorf("a user without +ping: %v", err)
	}
}
