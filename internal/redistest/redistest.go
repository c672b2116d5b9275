// Package redistest is the real-Redis harness for tests: each call to Start
// runs a fresh, throwaway redis-server on 127.0.0.1 that is stopped when
// the test ends.
package redistest

import (
	"context"
	"testing"

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
