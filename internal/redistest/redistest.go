// Package redistest is the real-Redis harness for tests: each call to Start
// runs a fresh, throwaway redis-server on 127.0.0.1 that is stopped when
// the test ends.
package redistest

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
)

// Start starts a fresh redis-server (extraArgs are passed through, e.g.
// "--requirepass", "secret") and stops it on t.Cleanup. A missing
// redis-server fails the test; it is never skipped.
func Start(t testing.TB, extraArgs ...string) *redisserver.Server {
	t.Helper()
	if _, err := redisserver.LookPath(""); err != nil {
		t.Fatal(err)
	}
	s, err := redisserver.Start(context.Background(), redisserver.Options{ExtraArgs: extraArgs})
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop redis-server: %v", err)
		}
	})
	return s
}

// Client returns a go-redis client for db 0 of s, closed on t.Cleanup. It
// authenticates with the server's --requirepass password, if any.
func Client(t testing.TB, s *redisserver.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.Password(), DB: 0})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Proxy is a loopback TCP proxy in front of a Redis that can lose a reply:
// the command reaches Redis and runs, but its answer never reaches the
// client, whose connection is cut instead, as a network fault or a read
// timeout would leave it. The client then retries on a new connection.
type Proxy struct {
	ln     net.Listener
	target string
	lose   atomic.Int32
	mu     sync.Mutex
	match  []byte
	losing int
}

// StartProxy starts a Proxy to the Redis at addr, stopped on t.Cleanup.
func StartProxy(t testing.TB, addr string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: addr}
	t.Cleanup(func() { _ = ln.Close() })
	go p.serve()
	return p
}

// Addr is the proxy's address, to give clients in place of Redis's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// LoseReplies makes the next n replies Redis sends (on any connection) go
// missing: each is dropped and its client connection closed.
func (p *Proxy) LoseReplies(n int) { p.lose.Store(int32(n)) }

// LoseRepliesTo makes the replies to the next n requests that contain match
// (say "evalsha") go missing, each with its connection.
func (p *Proxy) LoseRepliesTo(match string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.match, p.losing = []byte(strings.ToLower(match)), n
}

// Pending is how many of the replies LoseRepliesTo asked for are still to
// be lost.
func (p *Proxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.losing
}

// requestLoses reports whether the reply to this request is to be lost.
func (p *Proxy) requestLoses(req []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.losing == 0 || !bytes.Contains(bytes.ToLower(req), p.match) {
		return false
	}
	p.losing--
	return true
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		var doomed atomic.Bool
		go p.requests(c, s, &doomed)
		go p.replies(s, c, &doomed)
	}
}

// requests forwards what the client sends, marking the connection doomed
// before a request whose reply is to be lost reaches Redis.
func (p *Proxy) requests(client, server net.Conn, doomed *atomic.Bool) {
	defer server.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if p.requestLoses(buf[:n]) {
				doomed.Store(true)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) replies(server, client net.Conn, doomed *atomic.Bool) {
	defer client.Close()
	defer server.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if doomed.Load() {
				return // the reply is lost with the connection
			}
			if left := p.lose.Add(-1); left >= 0 {
				return // the reply is lost with the connection
			}
			p.lose.Store(0)
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Stall blocks the event loop of the Redis at addr for about d with a busy
// script from a connection of its own: commands other clients send
// meanwhile wait in their sockets, and run when it ends even if their client
// gave up waiting for the reply. No DEBUG needed.
func Stall(addr string, d time.Duration) {
	c := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: d + 5*time.Second, MaxRetries: -1})
	defer c.Close()
	_ = c.Eval(context.Background(), `local t = redis.call('TIME')
local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[1])
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop
return 1`, nil, d.Microseconds()).Err()
}

// SilentListener accepts TCP connections on loopback and never answers,
// like a firewalled or wedged service; it is closed on t.Cleanup. It
// returns its address.
func SilentListener(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}
