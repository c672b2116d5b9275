package redisserver_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/redistest"
)

// start starts a server and stops it on cleanup. A missing redis-server
// fails the test loudly (never skips).
func start(t *testing.T, opts redisserver.Options) *redisserver.Server {
	t.Helper()
	if _, err := redisserver.LookPath(opts.Bin); err != nil {
		t.Fatal(err)
	}
	s, err := redisserver.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func client(t *testing.T, s *redisserver.Server, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:        s.Addr(),
		Password:    password,
		MaxRetries:  -1,
		DialTimeout: time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// down checks that nothing accepts connections on s.Addr().
func down(t *testing.T, s *redisserver.Server) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections", s.Addr())
	}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestStartPingStop(t *testing.T) {
	t.Parallel()
	s := start(t, redisserver.Options{})

	if got, want := s.Addr(), "127.0.0.1:"+strconv.Itoa(s.Port()); got != want {
		t.Errorf("Addr() = %q, want %q", got, want)
	}
	if got, want := s.URL(), "redis://127.0.0.1:"+strconv.Itoa(s.Port())+"/0"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", s.URL(), err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(ctx(t)).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	v, err := s.Version(ctx(t))
	if err != nil || v == "" {
		t.Fatalf("Version() = %q, %v", v, err)
	}
	t.Logf("redis %s on %s", v, s.Addr())

	// Nothing but loopback.
	info, err := c.ConfigGet(ctx(t), "bind").Result()
	if err != nil {
		t.Fatalf("CONFIG GET bind: %v", err)
	}
	if info["bind"] != "127.0.0.1" {
		t.Errorf("bind = %q, want 127.0.0.1", info["bind"])
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	down(t, s)
}

func TestTwoServersGetDifferentPorts(t *testing.T) {
	t.Parallel()
	a := start(t, redisserver.Options{})
	b := start(t, redisserver.Options{})
	if a.Port() == b.Port() {
		t.Fatalf("both servers on port %d", a.Port())
	}
	if a.Dir() == b.Dir() {
		t.Fatalf("both servers in dir %s", a.Dir())
	}
	for _, s := range []*redisserver.Server{a, b} {
		if err := client(t, s, "").Ping(ctx(t)).Err(); err != nil {
			t.Errorf("PING %s: %v", s.Addr(), err)
		}
	}
}

func TestRestartKeepsPort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		down func(*redisserver.Server) error
	}{
		{"after Kill", (*redisserver.Server).Kill},
		{"after Stop", (*redisserver.Server).Stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, redisserver.Options{})
			c := client(t, s, "")
			port := s.Port()
			if err := c.Set(ctx(t), "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}

			if err := tt.down(s); err != nil {
				t.Fatalf("down: %v", err)
			}
			down(t, s)

			if err := s.Restart(ctx(t)); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if s.Port() != port {
				t.Fatalf("port changed: %d -> %d", port, s.Port())
			}
			if err := c.Ping(ctx(t)).Err(); err != nil {
				t.Fatalf("PING after Restart: %v", err)
			}
			// No persistence: the data is gone.
			if err := c.Get(ctx(t), "k").Err(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET k after Restart: err = %v, want redis.Nil", err)
			}
			if err := c.Set(ctx(t), "k", "v2", 0).Err(); err != nil {
				t.Fatalf("SET after Restart: %v", err)
			}
		})
	}
}

func TestRequirePass(t *testing.T) {
	t.Parallel()
	s := start(t, redisserver.Options{ExtraArgs: []string{"--requirepass", "secret"}})
	if v, err := s.Version(ctx(t)); err != nil || v == "" {
		t.Fatalf("Version() = %q, %v", v, err)
	}
	tests := []struct {
		name     string
		password string
		wantErr  string // prefix; "" = PONG
	}{
		{"right password", "secret", ""},
		{"no password", "", "NOAUTH"},
		{"wrong password", "nope", "WRONGPASS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := client(t, s, tt.password).Ping(ctx(t)).Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("PING: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Fatalf("PING: err = %v, want %s...", err, tt.wantErr)
			}
		})
	}

	t.Run("redistest client", func(t *testing.T) {
		rs := redistest.Start(t, "--requirepass", "secret")
		if err := redistest.Client(t, rs).Ping(ctx(t)).Err(); err != nil {
			t.Fatalf("PING: %v", err)
		}
	})
}

func TestDirCleanup(t *testing.T) {
	t.Parallel()
	own := t.TempDir()
	tests := []struct {
		name     string
		dir      string
		wantGone bool
	}{
		{"temp dir is removed", "", true},
		{"given dir is kept", own, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, redisserver.Options{Dir: tt.dir})
			dir := s.Dir()
			if tt.dir != "" && dir != tt.dir {
				t.Fatalf("Dir() = %q, want %q", dir, tt.dir)
			}
			if _, err := os.Stat(filepath.Join(dir, "redis.log")); err != nil {
				t.Fatalf("log file: %v", err)
			}
			if err := s.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			_, err := os.Stat(dir)
			if gone := errors.Is(err, os.ErrNotExist); gone != tt.wantGone {
				t.Fatalf("after Stop: stat %s: %v; want gone=%v", dir, err, tt.wantGone)
			}
		})
	}
}

func TestFixedPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	s := start(t, redisserver.Options{Port: port})
	if s.Port() != port {
		t.Fatalf("Port() = %d, want %d", s.Port(), port)
	}
	if err := client(t, s, "").Ping(ctx(t)).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}

	// A second server cannot take the same port; Start must fail rather
	// than mistake the first server for its own.
	if _, err := redisserver.Start(ctx(t), redisserver.Options{Port: port}); err == nil {
		t.Fatal("second Start on a taken port succeeded")
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    redisserver.Options
		wantErr string
	}{
		{"bind is managed", redisserver.Options{ExtraArgs: []string{"--bind", "0.0.0.0"}}, "--bind may not be set"},
		{"port is managed", redisserver.Options{ExtraArgs: []string{"--port", "6379"}}, "--port may not be set"},
		{"bad directive shows log", redisserver.Options{ExtraArgs: []string{"--no-such-directive", "x"}}, "no-such-directive"},
		{"missing binary", redisserver.Options{Bin: "/nonexistent/redis-server"}, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := redisserver.Start(ctx(t), tt.opts)
			if err == nil {
				_ = s.Stop()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestLookPathMissing(t *testing.T) {
	// Not parallel: changes the environment.
	t.Setenv("PATH", t.TempDir())
	t.Setenv(redisserver.EnvBin, "")
	_, err := redisserver.LookPath("")
	if err == nil {
		t.Fatal("LookPath succeeded with an empty PATH")
	}
	want := "redis-server not found in PATH: install it (Debian/Ubuntu: apt-get install -y redis-server) or set REDIS_SERVER_BIN"
	if err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}

	t.Setenv(redisserver.EnvBin, "/nonexistent/redis-server")
	if _, err := redisserver.LookPath(""); err == nil || !strings.Contains(err.Error(), redisserver.EnvBin) {
		t.Fatalf("err = %v, want it to mention %s", err, redisserver.EnvBin)
	}
}
