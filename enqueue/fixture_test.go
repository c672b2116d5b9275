package enqueue

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// fixture is a throwaway Redis with a Resque layout and a clock fixed at
// a whole second close to the wall clock (Redis expires keys by its own
// clock, so TTLs must make sense against it). The backfill tests have its
// twin.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	rdb    *redis.Client
	layout resque.Layout
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	return &fixture{t: t, ctx: context.Background(), rdb: redistest.Client(t, srv),
		layout: resque.MustLayout("resque", ""), now: time.Now().Truncate(time.Second).UTC()}
}

func (f *fixture) clock() time.Time { return f.now }

func (f *fixture) unix(d time.Duration) string { return resque.FormatDeadline(f.now.Add(d)) }

// setDeadline writes a deadline key with no Redis TTL (ttl 0) or one.
func (f *fixture) setDeadline(id, value string, ttl time.Duration) {
	f.t.Helper()
	if err := f.rdb.Set(f.ctx, f.layout.Expiration(id), value, ttl).Err(); err != nil {
		f.t.Fatal(err)
	}
}

// deadline returns the value of id's deadline key ("" when there is none).
func (f *fixture) deadline(id string) string {
	f.t.Helper()
	v, err := f.rdb.Get(f.ctx, f.layout.Expiration(id)).Result()
	if err == redis.Nil {
		return ""
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// keyTTL is the Redis TTL of id's deadline key (-1 none, -2 no key).
func (f *fixture) keyTTL(id string) time.Duration {
	f.t.Helper()
	d, err := f.rdb.PTTL(f.ctx, f.layout.Expiration(id)).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return d // go-redis gives -1 (no TTL) and -2 (no key) as -1ns and -2ns
}

// wantKeyExpiresAt checks that id's key expires at Unix second at (within
// the seconds the test has been running).
func (f *fixture) wantKeyExpiresAt(id string, at time.Time) {
	f.t.Helper()
	ttl := f.keyTTL(id)
	want := time.Until(at)
	if ttl < 0 || ttl > want+time.Second || ttl < want-5*time.Second {
		f.t.Errorf("key TTL of %s = %s, want about %s (expiring at %s)", id, ttl, want.Round(time.Second), at.UTC().Format(time.RFC3339))
	}
}

func (f *fixture) scanner(mod func(*inspect.Config)) *inspect.Scanner {
	f.t.Helper()
	cfg := inspect.Config{Layout: f.layout, Now: f.clock}
	if mod != nil {
		mod(&cfg)
	}
	s, err := inspect.NewScanner(f.rdb, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// dump returns every key with its type, value and whether it has a TTL.
func (f *fixture) dump() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	keys, err := f.rdb.Keys(f.ctx, "*").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, k := range keys {
		typ := f.rdb.Type(f.ctx, k).Val()
		var v any
		switch typ {
		case "string":
			v = f.rdb.Get(f.ctx, k).Val()
		case "list":
			v = f.rdb.LRange(f.ctx, k, 0, -1).Val()
		case "set":
			m := f.rdb.SMembers(f.ctx, k).Val()
			sort.Strings(m)
			v = m
		case "zset":
			v = f.rdb.ZRangeWithScores(f.ctx, k, 0, -1).Val()
		case "hash":
			v = f.rdb.HGetAll(f.ctx, k).Val()
		}
		out[k] = fmt.Sprintf("%s %v ttl=%v", typ, v, f.rdb.TTL(f.ctx, k).Val() > 0)
	}
	return out
}

func (f *fixture) sameDump(before, after map[string]string) {
	f.t.Helper()
	for k, v := range before {
		if after[k] != v {
			f.t.Errorf("key %s changed:\n  before %s\n  after  %s", k, v, after[k])
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			f.t.Errorf("key %s appeared: %s", k, v)
		}
	}
}
