package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// leaks reports whether s contains the password in any spelling a URL or
// an error message could carry it.
func leaks(s, password string) bool {
	for _, form := range []string{password, url.QueryEscape(password), url.PathEscape(password), userinfoEscape(password)} {
		if form != "" && strings.Contains(s, form) {
			return true
		}
	}
	return false
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://user:pw@h:6379/0", "redis://user:xxxxx@h:6379/0"},
		{"redis://:pw@h:6379", "redis://:xxxxx@h:6379"},
		{"rediss://user:pw@h:6380/2", "rediss://user:xxxxx@h:6380/2"},
		{"rediss://:pw@h", "rediss://:xxxxx@h"},
		{"unix://user:pw@/var/run/redis.sock?db=3", "unix://user:xxxxx@/var/run/redis.sock?db=3"},
		{"unix://:pw@/tmp/r.sock", "unix://:xxxxx@/tmp/r.sock"},
		{"redis://secret@h:6379", "redis://xxxxx@h:6379"},
		{"redis://user:p%40ss%2Fw%3A@h", "redis://user:xxxxx@h"},
		{"redis://h:6379/0", "redis://h:6379/0"},
		{"unix:///tmp/r.sock", "unix:///tmp/r.sock"},
		{"127.0.0.1:6379", "127.0.0.1:6379"},
		{"", ""},
		// Unparseable: the userinfo is cut out by hand.
		{"redis://user:pw@h:port", "redis://xxxxx@h:port"},
		{"redis://user:p#w@h", "redis://xxxxx@h"},
		{"redis://user:p w@h", "redis://xxxxx@h"},
		{"redis://user:pw\n@h", "redis://xxxxx@h"},
		// No scheme (a common typo): still no password.
		{"user:pw@h:6379", "xxxxx@h:6379"},
		{":pw@h", "xxxxx@h"},
		{"//user:pw@h:6379", "//user:xxxxx@h:6379"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRedactNeverLeaks tries awkward passwords in every URL shape,
// well-formed or not, and checks that neither Redact nor RedactError nor
// New's error lets the password through.
func TestRedactNeverLeaks(t *testing.T) {
	passwords := []string{"hunter2-secret", "p@ss:w/rd?#x", "päßwörd✓", "with space", "100%sure", "a+b=c&d", `q"uote\slash`}
	shapes := []string{
		"redis://user:%s@localhost:6379/0",
		"redis://:%s@localhost:6379",
		"rediss://user:%s@localhost:6380",
		"unix://user:%s@/tmp/redis.sock",
		"redis://%s@localhost",
		"redis://user:%s@localhost:notaport",
		"redis://user:%s@localhost/not-a-db",
		"redis://user:%s@localhost/0?bogus=1",
		"unix://user:%s@",
		"rediss://user:%s@[::1",
	}
	for _, pw := range passwords {
		for _, shape := range shapes {
			// The password as typed, and escaped as a URL's userinfo may
			// carry it (both decode back to pw).
			for _, enc := range []string{pw, url.PathEscape(pw), userinfoEscape(pw)} {
				if strings.HasPrefix(shape, "redis://%s@") && strings.Contains(enc, ":") {
					continue // "a:b@h" is user a, password b
				}
				raw := fmt.Sprintf(shape, enc)
				if r := Redact(raw); leaks(r, pw) || strings.Contains(r, enc) {
					t.Errorf("Redact(%q) = %q leaks the password", raw, r)
				}
				// Errors quote the URL as given (url.Error does) and, once
				// parsed, could carry the decoded password.
				msg := "dial " + raw + ": failed"
				if u, err := url.Parse(raw); err == nil && u.User != nil {
					p, ok := u.User.Password()
					if !ok {
						p = u.User.Username()
					}
					msg += " (auth " + p + ")"
				}
				err := RedactError(errors.New(msg), raw)
				if leaks(err.Error(), pw) || strings.Contains(err.Error(), enc) {
					t.Errorf("RedactError for %q = %q leaks the password", raw, err)
				}
				if c, err := New(Options{URL: raw}); err != nil && (leaks(err.Error(), pw) || strings.Contains(err.Error(), enc)) {
					t.Errorf("New(%q) error %q leaks the password", raw, err)
				} else if err == nil {
					_ = c.Close()
				}
				if d := Describe(Options{URL: raw, SentinelMaster: "m", SentinelAddrs: []string{"s:26379"}}); leaks(d, pw) || strings.Contains(d, enc) {
					t.Errorf("Describe(%q) = %q leaks the password", raw, d)
				}
			}
		}
	}
}

func userinfoEscape(pw string) string { return url.UserPassword("u", pw).String()[2:] }

// TestNewRejectsBadURLs: New refuses what go-redis cannot use, and its
// error shows the URL with the password redacted.
func TestNewRejectsBadURLs(t *testing.T) {
	const pw = "s3cr3t-pw"
	bad := []string{
		"http://user:" + pw + "@h:6379",
		"redis://user:" + pw + "@h:notaport",
		"redis://user:" + pw + "@h/not-a-db",
		"redis://user:" + pw + "@h/0/extra",
		"redis://user:" + pw + "@h/0?bogus=1",
		"unix://user:" + pw + "@",
		"redis://user:" + pw + "@h:6379/0\x7f",
		"user:" + pw + "@h:6379", // no scheme: a common typo
		"//user:" + pw + "@h:6379",
		":" + pw + "@h",
	}
	for _, raw := range bad {
		_, err := New(Options{URL: raw})
		if err == nil {
			t.Errorf("New(%q) accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("New(%q) error leaks the password: %q", raw, err)
		}
		if !strings.Contains(err.Error(), "--redis") {
			t.Errorf("New(%q) error %q does not name the flag", raw, err)
		}
	}
}

func TestRedactError(t *testing.T) {
	if RedactError(nil, "redis://u:pw@h") != nil {
		t.Error("RedactError(nil) != nil")
	}
	base := errors.New("plain failure")
	if RedactError(base, "redis://h:6379") != base {
		t.Error("RedactError without credentials must return err itself")
	}
	if RedactError(base, "redis://u:pw@h") != base {
		t.Error("RedactError of a message without the password must return err itself")
	}
	inner := fmt.Errorf("auth with pw failed: %w", context.DeadlineExceeded)
	got := RedactError(inner, "redis://u:pw@h")
	if strings.Contains(got.Error(), "pw") || !errors.Is(got, context.DeadlineExceeded) || errors.Unwrap(got) != inner {
		t.Errorf("RedactError = %q (unwrap %v), want the password scrubbed and the chain kept", got, errors.Unwrap(got))
	}
	var re redis.Error
	rerr := RedactError(fmt.Errorf("x %w", proto("WRONGPASS p%40ss")), "redis://u:p%40ss@h")
	if strings.Contains(rerr.Error(), "p%40ss") || strings.Contains(rerr.Error(), "p@ss") || !errors.As(rerr, &re) {
		t.Errorf("RedactError = %q (As redis.Error %v)", rerr, errors.As(rerr, &re))
	}
}

// proto is a redis.Error.
type proto string

func (p proto) Error() string { return string(p) }
func (proto) RedisError()     {}

func TestSecrets(t *testing.T) {
	tests := []struct {
		raw  string
		want string // one secret that must be among them, "" for none
	}{
		{"redis://u:pw@h", "pw"},
		{"redis://u:p%40ss@h", "p@ss"},
		{"redis://u:p%40ss@h", "p%40ss"},
		{"redis://token@h", "token"},
		{"redis://u:pw@h:bad", "pw"},
		{"redis://u:pa:ss@h:bad", "pa:ss"},
		{"redis://h", ""},
		{"not a url", ""},
	}
	for _, tt := range tests {
		got := Secrets(tt.raw)
		found := tt.want == "" && len(got) == 0
		for _, s := range got {
			if s == tt.want {
				found = true
			}
		}
		if !found {
			t.Errorf("Secrets(%q) = %q, want %q among them", tt.raw, got, tt.want)
		}
	}
	if got := Scrub("a pw b pw", "pw", ""); got != "a xxxxx b xxxxx" {
		t.Errorf("Scrub = %q", got)
	}
}

func TestNewOptions(t *testing.T) {
	c, err := New(Options{URL: "redis://u:pw@localhost:6380/3"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.(*redis.Client).Options()
	if o.Addr != "localhost:6380" || o.DB != 3 || o.Username != "u" || o.Password != "pw" || o.TLSConfig != nil {
		t.Errorf("options %+v", o)
	}
	if o.DialTimeout != 5*time.Second || o.ReadTimeout != 10*time.Second || o.WriteTimeout != 10*time.Second || o.MaxRetries != 3 || o.PoolSize != 4 || o.ClientName != "" || o.OnConnect == nil {
		t.Errorf("defaults: dial %v read %v write %v retries %d pool %d name %q", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries, o.PoolSize, o.ClientName)
	}
	c2, err := New(Options{DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	o = c2.(*redis.Client).Options()
	if o.Addr != "127.0.0.1:6379" || o.DialTimeout != time.Second || o.ReadTimeout != 2*time.Second || o.WriteTimeout != 3*time.Second || o.MaxRetries > 0 { // go-redis stores "disabled" (-1) as 0
		t.Errorf("explicit: %+v", o)
	}
	c3, err := New(Options{URL: "rediss://:pw@localhost:6380"})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if tc := c3.(*redis.Client).Options().TLSConfig; tc == nil || tc.ServerName != "localhost" || tc.MinVersion < tls.VersionTLS12 || tc.InsecureSkipVerify {
		t.Errorf("rediss:// TLS config %+v", tc)
	}
	c4, err := New(Options{URL: "redis://localhost:6380", TLSSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if tc := c4.(*redis.Client).Options().TLSConfig; tc == nil || !tc.InsecureSkipVerify || tc.ServerName != "localhost" || tc.MinVersion < tls.VersionTLS12 {
		t.Errorf("--tls-skip-verify TLS config %+v", tc)
	}
	if _, err := New(Options{SentinelMaster: "mymaster"}); err == nil || !strings.Contains(err.Error(), "--sentinel-addrs") {
		t.Errorf("sentinel without addresses: %v", err)
	}
	fc, err := New(Options{URL: "redis://:pw@ignored/2", SentinelMaster: "mymaster", SentinelAddrs: []string{"127.0.0.1:26379"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = fc.Close()
	if d := Describe(Options{URL: "redis://:pw@ignored/2", SentinelMaster: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379"}}); d != `sentinel master "mymaster" via s1:26379,s2:26379 (redis://:xxxxx@ignored/2)` {
		t.Errorf("Describe = %q", d)
	}
	if d := Describe(Options{}); d != DefaultURL {
		t.Errorf("Describe(default) = %q", d)
	}
}

// TestNewTLSOptionErrors: bad TLS files fail New, before any connection,
// without the URL's password.
func TestNewTLSOptionErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const url = "rediss://user:tls-pw@h:6380"
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"missing CA", Options{TLSCA: filepath.Join(dir, "missing.pem")}, "--tls-ca"},
		{"CA not PEM", Options{TLSCA: notPEM}, "no PEM certificates"},
		{"cert without key", Options{TLSCert: notPEM}, "go together"},
		{"key without cert", Options{TLSKey: notPEM}, "go together"},
		{"missing cert and key", Options{TLSCert: filepath.Join(dir, "c.pem"), TLSKey: filepath.Join(dir, "k.pem")}, "--tls-cert/--tls-key"},
		{"cert and key not PEM", Options{TLSCert: notPEM, TLSKey: notPEM}, "--tls-cert/--tls-key"},
	}
	for _, tt := range tests {
		for _, u := range []string{url, "redis://user:tls-pw@h:6379"} {
			tt.o.URL = u
			_, err := New(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "tls-pw") {
				t.Errorf("%s (%s): error %v, want one mentioning %q without the password", tt.name, u, err, tt.want)
			}
		}
	}
}

// TestOpen connects to a real Redis that wants a password.
func TestOpen(t *testing.T) {
	const pw = "right-pw-1"
	srv := redistest.Start(t, "--requirepass", pw)
	ctx := context.Background()
	host := srv.Addr()

	c, err := Open(ctx, Options{URL: "redis://:" + pw + "@" + host + "/1"})
	if err != nil {
		t.Fatalf("Open with the right password: %v", err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	for _, raw := range []string{
		"redis://:wrong-pw-2@" + host + "/0",
		"redis://default:wrong-pw-2@" + host + "/0",
		"redis://:wrong%2Dpw%2D2@" + host + "/0",
	} {
		_, err := Open(ctx, Options{URL: raw, MaxRetries: -1})
		if err == nil {
			t.Errorf("Open(%q) with a wrong password succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "wrong-pw-2") || strings.Contains(err.Error(), "wrong%2Dpw%2D2") {
			t.Errorf("Open error leaks the password: %q", err)
		}
		if !strings.Contains(err.Error(), host) {
			t.Errorf("Open error %q does not say where", err)
		}
	}
	// Nobody listening.
	_, err = Open(ctx, Options{URL: "redis://:closed-pw@127.0.0.1:1/0", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	if err == nil || strings.Contains(err.Error(), "closed-pw") {
		t.Errorf("Open on a closed port: %v", err)
	}
}
