package doctor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

var layout = resque.MustLayout("resque", "")

func check(t *testing.T, r *Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", name, r.Checks)
	return Check{}
}

func expect(t *testing.T, r *Report, name, status, detail string) {
	t.Helper()
	c := check(t, r, name)
	if c.Status != status || !strings.Contains(c.Detail, detail) {
		t.Errorf("%s: %s %q; want %s containing %q", name, c.Status, c.Detail, status, detail)
	}
}

// TestDoctorPlainRedis: a fresh test server (no persistence) with Resque
// data passes, warning only about persistence.
func TestDoctorPlainRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	rdb.SAdd(ctx, layout.Queues(), "mail")
	rdb.RPush(ctx, layout.Queue("mail"), `{"class":"X","args":[],"id":"a"}`)
	rdb.Set(ctx, layout.Expiration("a"), "1900000000", 0)
	r := Run(ctx, rdb, Options{Layout: layout})
	if r.Failed {
		t.Errorf("failed: %+v", r.Checks)
	}
	expect(t, r, "server", OK, "Redis ")
	expect(t, r, "mode", OK, "standalone")
	expect(t, r, "maxmemory-policy", OK, "noeviction")
	expect(t, r, "persistence", Warn, "restart loses every deadline key")
	expect(t, r, "clock", OK, "within 1s")
	expect(t, r, "permissions", OK, "may run every command")
	expect(t, r, "scripts", OK, "loads")
	expect(t, r, "namespace", OK, "1 queues (mail), 1 jobs")
	expect(t, r, "namespace", OK, "1 deadline keys")
}

// TestDoctorEvictionSkewEmpty: a volatile-* policy and a skewed host clock
// are warned about, as is a namespace with nothing in it.
func TestDoctorEvictionSkewEmpty(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru", "--appendonly", "yes")
	rdb := redistest.Client(t, srv)
	r := Run(context.Background(), rdb, Options{Layout: layout, Host: func() time.Time { return time.Now().Add(-time.Minute) }})
	if r.Failed {
		t.Errorf("failed: %+v", r.Checks)
	}
	expect(t, r, "maxmemory-policy", Warn, "volatile-lru")
	expect(t, r, "maxmemory-policy", Warn, "evicted_keys: 0")
	expect(t, r, "persistence", OK, "AOF on")
	// The skew is measured across a round trip: about a minute, to the
	// millisecond only on a quiet machine.
	expect(t, r, "clock", Warn, "behind Redis's")
	if d := check(t, r, "clock").Detail; !strings.Contains(d, "1m0s behind") && !strings.Contains(d, "59.9") && !strings.Contains(d, "1m0.0") {
		t.Errorf("clock: %q, want a skew of about 1m0s", d)
	}
	expect(t, r, "namespace", Warn, "is --namespace right?")
}

// TestDoctorWithoutConfigOrWrites: a user that may not run CONFIG gets
// every check, persistence saying what it could not see; a read-only user
// fails the permission check, naming what it may not run.
func TestDoctorWithoutConfigOrWrites(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	admin := redistest.Client(t, srv)
	ctx := context.Background()
	for _, acl := range [][]any{
		{"ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "&*", "+@all", "-config"},
		{"ACL", "SETUSER", "reader", "on", ">pw", "resetkeys", "~resque:*", "-@all", "+ping", "+hello", "+client|setname",
			"+time", "+scan", "+sscan", "+type", "+get", "+mget", "+exists", "+pttl", "+llen", "+lrange", "+lindex", "+zrange",
			"+zcard", "+smembers", "+hscan", "+info", "+eval"},
	} {
		if err := admin.Do(ctx, acl...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: user, Password: "pw"})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	r := Run(ctx, as("noconfig"), Options{Layout: layout})
	if r.Failed {
		t.Errorf("failed: %+v", r.Checks)
	}
	expect(t, r, "persistence", Warn, "could not see the RDB snapshot schedule")
	expect(t, r, "maxmemory-policy", OK, "noeviction")

	if err := admin.Do(ctx, "ACL", "SETUSER", "noinfo", "on", ">pw", "~*", "&*", "+@all", "-config", "-info").Err(); err != nil {
		t.Fatal(err)
	}
	r = Run(ctx, as("noinfo"), Options{Layout: layout})
	if r.Failed {
		t.Errorf("failed without INFO: %+v", r.Checks)
	}
	expect(t, r, "server", Warn, "could not read INFO")
	expect(t, r, "maxmemory-policy", Warn, "could not see the eviction policy")
	expect(t, r, "persistence", Warn, "could not read INFO")
	expect(t, r, "permissions", OK, "may run every command")

	r = Run(ctx, as("reader"), Options{Layout: layout})
	if !r.Failed {
		t.Errorf("a read-only user passed: %+v", r.Checks)
	}
	expect(t, r, "permissions", Fail, "may not run")
	expect(t, r, "permissions", Fail, "LREM")
	expect(t, r, "server", OK, "Redis")
}

// TestDoctorRefusesCluster: a Redis Cluster node is refused, with the
// reason, and the other checks are not run.
func TestDoctorRefusesCluster(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	r := Run(context.Background(), redistest.Client(t, srv), Options{Layout: layout})
	if !r.Failed {
		t.Fatalf("a cluster passed: %+v", r.Checks)
	}
	expect(t, r, "mode", Fail, "Resque itself does not run on Cluster")
	if len(r.Checks) != 2 {
		t.Errorf("%d checks after refusing a cluster, want 2 (server, mode)", len(r.Checks))
	}
}

// TestDoctorReplica: a replica is named as one, with the master.
func TestDoctorReplica(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	host, port, _ := strings.Cut(master.Addr(), ":")
	replica := redistest.Start(t, "--replicaof", host, port)
	r := Run(context.Background(), redistest.Client(t, replica), Options{Layout: layout})
	expect(t, r, "mode", Warn, fmt.Sprintf("replica of %s:%s", host, port))
}
