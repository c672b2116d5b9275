package sweep

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/redistest"
)

// expiredJobs pushes n expired jobs onto queue "default".
func (f *sweepFixture) expiredJobs(n int) {
	f.t.Helper()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("exp-%04d", i)
		f.push("default", f.job(id, "X"), id, f.at(-time.Hour))
	}
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLockHeldByAnotherRun: while a lock is held, a sweep refuses with a
// *LockHeldError naming the holder and changes nothing; a dry run still
// works; once released, the sweep runs.
func TestLockHeldByAnotherRun(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.expiredJobs(3)
	held, err := AcquireLock(f.ctx, f.rdb, f.layout.Lock(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	before := f.dump()
	res, _, err := f.sweep(Options{}, nil)
	var lh *LockHeldError
	if !errors.As(err, &lh) {
		t.Fatalf("sweep under a held lock: %v, want *LockHeldError", err)
	}
	host, _ := os.Hostname()
	if lh.Key != f.layout.Lock() || lh.Holder.Host != host || lh.Holder.PID != os.Getpid() || lh.Holder.Token == "" ||
		time.Since(lh.Holder.Since) > 10*time.Second || time.Since(lh.Holder.Since) < 0 {
		t.Errorf("holder %+v (key %s)", lh.Holder, lh.Key)
	}
	msg := lh.Error()
	for _, want := range []string{host, "pid " + strconv.Itoa(os.Getpid()), lh.Holder.Since.UTC().Format(time.RFC3339), f.layout.Lock()} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if res.Removed != 0 || res.Stopped != "error" {
		t.Errorf("result under a held lock: removed %d stopped %q", res.Removed, res.Stopped)
	}
	if d := diffDumps(before, f.dump()); d != "" {
		t.Errorf("a refused sweep changed Redis:\n%s", d)
	}
	if _, err := AcquireLock(f.ctx, f.rdb, f.layout.Lock(), time.Second); !errors.As(err, &lh) {
		t.Errorf("second AcquireLock: %v", err)
	}
	// Dry runs take no lock.
	if res, _ := f.mustSweep(Options{DryRun: true}, nil); res.Removed != 3 {
		t.Errorf("dry run under a held lock found %d", res.Removed)
	}
	if err := held.Release(f.ctx); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.mustSweep(Options{}, nil); res.Removed != 3 {
		t.Errorf("after release removed %d", res.Removed)
	}
}

// TestLockLeftByDeadRunExpires: the lock of a run that died expires by its
// own TTL; until then sweeps refuse, naming the dead holder; afterwards
// they run.
func TestLockLeftByDeadRunExpires(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.expiredJobs(2)
	dead, _ := json.Marshal(LockInfo{Token: "0123", Host: "dead-host", PID: 4242, Since: f.now.Add(-time.Minute)})
	if err := f.rdb.Set(f.ctx, f.layout.Lock(), dead, 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.sweep(Options{}, nil)
	var lh *LockHeldError
	if !errors.As(err, &lh) || lh.Holder.Host != "dead-host" || lh.Holder.PID != 4242 || !strings.Contains(err.Error(), "dead-host") {
		t.Fatalf("sweep under a dead run's lock: %v", err)
	}
	waitFor(t, 3*time.Second, "the dead lock to expire", func() bool { return !f.exists(f.layout.Lock()) })
	if res, _ := f.mustSweep(Options{}, nil); res.Removed != 2 {
		t.Errorf("removed %d after the lock expired", res.Removed)
	}
	if f.exists(f.layout.Lock()) {
		t.Error("lock left after a finished run")
	}

	// A lock value nobody can decode is still a held lock, shown raw.
	f.rdb.Set(f.ctx, f.layout.Lock(), "held by hand", time.Minute)
	_, _, err = f.sweep(Options{}, nil)
	if !errors.As(err, &lh) || lh.Raw != "held by hand" || !strings.Contains(err.Error(), `"held by hand"`) {
		t.Errorf("undecodable lock: %v (%+v)", err, lh)
	}
}

// TestLockReleaseOnlyOwn: Release deletes the lock only if it is still the
// caller's: a lock that expired and was re-taken by another run survives.
func TestLockReleaseOnlyOwn(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	mine, err := AcquireLock(f.ctx, f.rdb, f.layout.Lock(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// It expires (here: deleted) and someone else takes it.
	f.rdb.Del(f.ctx, f.layout.Lock())
	theirs, err := AcquireLock(f.ctx, f.rdb, f.layout.Lock(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	theirValue := f.rdb.Get(f.ctx, f.layout.Lock()).Val()
	if err := mine.Release(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.rdb.Get(f.ctx, f.layout.Lock()).Val(); got != theirValue {
		t.Fatalf("releasing a lost lock deleted or changed the new holder's: %q", got)
	}
	if err := mine.Release(f.ctx); err != nil { // twice is harmless
		t.Fatal(err)
	}
	if err := theirs.Release(f.ctx); err != nil {
		t.Fatal(err)
	}
	if f.exists(f.layout.Lock()) {
		t.Error("the holder's Release left the lock")
	}
}

// TestLockRenewedDuringSlowRun: a run lasting several times the lock's TTL
// keeps the lock, renewed in the background, and releases it at the end.
func TestLockRenewedDuringSlowRun(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.expiredJobs(100)
	const ttl = 300 * time.Millisecond
	var value string
	var start time.Time
	var lastCheck time.Duration
	p := &slowPages{delay: 60 * time.Millisecond, hook: func(page int) {
		v, err := f.rdb.Get(f.ctx, f.layout.Lock()).Result()
		pttl := f.rdb.PTTL(f.ctx, f.layout.Lock()).Val()
		if page == 1 {
			value, start = v, time.Now()
		}
		lastCheck = time.Since(start)
		if err != nil || v != value || pttl <= 0 || pttl > ttl {
			t.Errorf("page %d (%v into the run): lock %q (%v), pttl %v", page, lastCheck, v, err, pttl)
		}
	}}
	res, _ := f.mustSweep(Options{LockTTL: ttl, Progress: p}, func(c *inspect.Config) { c.Batch = 5 })
	if res.Removed != 100 {
		t.Errorf("removed %d", res.Removed)
	}
	if lastCheck < 3*ttl {
		t.Errorf("the run lasted only %v; the test wants more than 3x the TTL", lastCheck)
	}
	if f.exists(f.layout.Lock()) {
		t.Error("lock not released")
	}
}

// TestLockLostStopsRun: if the lock disappears under a run (deleted, or
// expired while Redis was unreachable) the run stops with ErrLockLost.
func TestLockLostStopsRun(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.expiredJobs(100)
	p := &slowPages{delay: 40 * time.Millisecond, hook: func(page int) {
		if page == 2 {
			f.rdb.Del(f.ctx, f.layout.Lock())
		}
	}}
	res, _, err := f.sweep(Options{LockTTL: 300 * time.Millisecond, Progress: p}, func(c *inspect.Config) { c.Batch = 5 })
	if !errors.Is(err, ErrLockLost) || res.Stopped != "error" {
		t.Fatalf("err %v stopped %q, want ErrLockLost", err, res.Stopped)
	}
	if res.Removed == 0 || res.Removed == 100 {
		t.Errorf("removed %d", res.Removed)
	}
}

// TestReadOnlyReplica: against a replica a sweep (and a restore) fails
// with ErrReadOnly, while a dry run works and reports what the master holds.
func TestReadOnlyReplica(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.expiredJobs(5)
	f.push("default", f.job("live", "X"), "live", f.at(time.Hour))
	// Redis waits 5s for more replicas before a diskless full sync.
	if err := f.rdb.ConfigSet(f.ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatal(err)
	}
	replicaSrv := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(f.srv.Port()))
	replica := &sweepFixture{t: t, ctx: f.ctx, srv: replicaSrv, rdb: redistest.Client(t, replicaSrv), layout: f.layout, now: f.now}
	waitFor(t, 10*time.Second, "the replica to sync", func() bool {
		info := replica.rdb.Info(f.ctx, "replication").Val()
		return strings.Contains(info, "master_link_status:up") && replica.rdb.DBSize(f.ctx).Val() == f.rdb.DBSize(f.ctx).Val()
	})

	res, _, err := replica.sweep(Options{}, nil)
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("sweep on a replica: %v, want ErrReadOnly", err)
	}
	if res.Removed != 0 {
		t.Errorf("removed %d on a replica", res.Removed)
	}
	dry, removed := replica.mustSweep(Options{DryRun: true, Delayed: true}, nil)
	if dry.Removed != 5 || len(removed) != 5 {
		t.Errorf("dry run on the replica found %d", dry.Removed)
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val(); n != 6 {
		t.Errorf("master queue has %d jobs, want 6", n)
	}
	line, _ := json.Marshal(ArchiveRecord{RemovedAt: f.now, Queue: "default", List: f.layout.Queue("default"), Payload: f.job("r", "X")})
	_, err = Restore(f.ctx, replica.rdb, f.layout, bytes.NewReader(line), RestoreOptions{})
	if !errors.Is(err, ErrReadOnly) {
		t.Errorf("restore on a replica: %v, want ErrReadOnly", err)
	}
	if !redis.IsReadOnlyError(replica.rdb.Set(f.ctx, "x", "y", 0).Err()) || redis.IsReadOnlyError(redis.Nil) || redis.IsReadOnlyError(nil) {
		t.Error("redis.IsReadOnlyError misjudges a real replica's answer")
	}
}
