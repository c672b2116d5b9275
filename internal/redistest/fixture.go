package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// Fixture is a throwaway Redis with the default Resque layout and a clock
// fixed at a whole second close to the wall clock (Redis expires keys by
// its own clock, so TTLs must make sense against it), with helpers to seed
// it and to read and write deadline keys. Tests that need a scanner build
// one in their own package (redistest cannot import inspect, whose tests
// import redistest).
type Fixture struct {
	T      testing.TB
	Ctx    context.Context
	RDB    *redis.Client
	Layout resque.Layout
	Now    time.Time
}

// NewFixture starts a fresh redis-server (extraArgs as for Start).
func NewFixture(t testing.TB, extraArgs ...string) *Fixture {
	t.Helper()
	srv := Start(t, extraArgs...)
	return &Fixture{T: t, Ctx: context.Background(), RDB: Client(t, srv),
		Layout: resque.MustLayout("resque", ""), Now: time.Now().Truncate(time.Second).UTC()}
}

// Clock is the fixture's fixed clock, to hand to a scanner or a run.
func (f *Fixture) Clock() time.Time { return f.Now }

// Unix is the deadline value d away from the fixture's now.
func (f *Fixture) Unix(d time.Duration) string { return resque.FormatDeadline(f.Now.Add(d)) }

// Seed returns a Seeder writing with the fixture's layout.
func (f *Fixture) Seed() *Seeder { return Seed(f.T, f.RDB, f.Layout) }

// Dump is Dump of the fixture's whole database.
func (f *Fixture) Dump() map[string]string {
	f.T.Helper()
	return Dump(f.T, f.RDB, nil)
}

// SetDeadline writes id's deadline key with no Redis TTL (ttl 0) or one.
func (f *Fixture) SetDeadline(id, value string, ttl time.Duration) {
	f.T.Helper()
	if err := f.RDB.Set(f.Ctx, f.Layout.Expiration(id), value, ttl).Err(); err != nil {
		f.T.Fatal(err)
	}
}

// Deadline returns the value of id's deadline key ("" when there is none).
func (f *Fixture) Deadline(id string) string {
	f.T.Helper()
	v, err := f.RDB.Get(f.Ctx, f.Layout.Expiration(id)).Result()
	if err == redis.Nil {
		return ""
	}
	if err != nil {
		f.T.Fatal(err)
	}
	return v
}

// KeyTTL is the Redis TTL of id's deadline key (-1 none, -2 no key).
func (f *Fixture) KeyTTL(id string) time.Duration {
	f.T.Helper()
	d, err := f.RDB.PTTL(f.Ctx, f.Layout.Expiration(id)).Result()
	if err != nil {
		f.T.Fatal(err)
	}
	return d // go-redis gives -1 (no TTL) and -2 (no key) as -1ns and -2ns
}

// WantKeyExpiresAt checks that id's deadline key expires at at (within the
// seconds the test has been running).
func (f *Fixture) WantKeyExpiresAt(id string, at time.Time) {
	f.T.Helper()
	ttl := f.KeyTTL(id)
	want := time.Until(at)
	if ttl < 0 || ttl > want+time.Second || ttl < want-5*time.Second {
		f.T.Errorf("key TTL of %s = %s, want about %s (expiring at %s)", id, ttl, want.Round(time.Second), at.UTC().Format(time.RFC3339))
	}
}
