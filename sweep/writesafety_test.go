package sweep

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/preflight"
	"github.com/resque-expire/resque-expire/internal/redisconn"
	"github.com/resque-expire/resque-expire/internal/redistest"
)

// seedMixed fills queue "default" with n jobs, every other one expired an
// hour ago, and a delayed bucket with two expired jobs; it returns the ids
// of the expired ones.
func (f *sweepFixture) seedMixed(n int) []string {
	var expired []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("j%04d", i)
		deadline := f.at(time.Hour)
		if i%2 == 0 {
			deadline = f.at(-time.Hour)
			expired = append(expired, id)
		}
		f.push("default", f.job(id, "Mailer"), id, deadline)
	}
	ts := f.now.Add(time.Hour).Unix()
	for _, id := range []string{"d1", "d2"} {
		f.delay(ts, fmt.Sprintf(`{"class":"Mailer","args":[],"id":%q,"queue":"default"}`, id), id, f.at(-time.Hour))
		expired = append(expired, id)
	}
	return expired
}

// archiveIDs reads the ids of an archive file's records.
func archiveIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		i := strings.Index(line, `"id":"`)
		ids = append(ids, line[i+6:i+6+strings.Index(line[i+6:], `"`)])
	}
	return ids
}

// TestSweepCountsExactlyWhenRepliesAreLost: go-redis retries a removal
// script whose reply was lost after Redis ran it. The retry must answer
// what the first run did: every removal counted as removed (not "already
// gone"), archived once, and the lock taken by a retried SET is ours.
func TestSweepCountsExactlyWhenRepliesAreLost(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	expired := f.seedMixed(600)
	proxy := redistest.StartProxy(t, f.srv.Addr())
	f.via = redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: 3,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond})
	t.Cleanup(func() { _ = f.via.Close() })
	proxy.LoseRepliesTo(removeExpiredScript.Hash(), 3) // the first removal scripts
	path := filepath.Join(t.TempDir(), "removed.jsonl")
	arch, err := OpenArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	defer arch.Close()
	res, _ := f.mustSweep(Options{Delayed: true, Archive: arch, MaxScriptTime: time.Second}, func(c *inspect.Config) { c.Batch = 100 })
	if n := proxy.Pending(); n != 0 {
		t.Fatalf("%d replies were not lost: the test proves nothing", n)
	}
	if res.Removed != int64(len(expired)) || res.AlreadyGone != 0 || res.Changed != 0 {
		t.Errorf("removed %d, already gone %d, changed %d; want %d, 0, 0", res.Removed, res.AlreadyGone, res.Changed, len(expired))
	}
	if got := archiveIDs(t, path); len(got) != len(expired) {
		t.Errorf("archive has %d records, want %d", len(got), len(expired))
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val(); n != 300 {
		t.Errorf("%d jobs left, want 300", n)
	}
	// The removal counter counts each removal once, though replies were
	// lost and scripts sent again.
	var counted int64
	for field, n := range f.stats() {
		if !strings.HasPrefix(field, ActionArchived+":") {
			t.Errorf("stats field %q", field)
		}
		counted += n
	}
	if counted != int64(len(expired)) {
		t.Errorf("stats count %d removals, want %d", counted, len(expired))
	}
	f.rdb.Del(f.ctx, f.layout.Stats())
	if keys := f.rdb.Keys(f.ctx, "resque:resque-expire:*").Val(); len(keys) != 0 {
		t.Errorf("left behind: %v", keys)
	}
}

// TestLockTakenByARetriedSet: the SET NX that takes the lock ran, its reply
// was lost, go-redis sent it again: the run holds the lock, not "another
// sweep holds it".
func TestLockTakenByARetriedSet(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr())
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: 3, MinRetryBackoff: time.Millisecond})
	defer c.Close()
	ctx := t.Context()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	proxy.LoseRepliesTo("set", 1)
	lock, err := AcquireLock(ctx, c, "resque:resque-expire:lock", time.Minute)
	if err != nil {
		t.Fatalf("AcquireLock after a lost reply: %v", err)
	}
	if err := lock.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSweepWaitsOutBusy: another client's long script makes Redis answer
// BUSY; the sweep backs off and finishes, and leaves no lock behind.
func TestSweepWaitsOutBusy(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t, "--busy-reply-threshold", "50")
	expired := f.seedMixed(20)
	c, err := redisconn.New(redisconn.Options{URL: "redis://" + f.srv.Addr(), ReadTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.via = c
	stalled := make(chan struct{})
	go func() {
		defer close(stalled)
		redistest.Stall(f.srv.Addr(), 700*time.Millisecond)
	}()
	time.Sleep(150 * time.Millisecond) // past the threshold: Redis answers BUSY
	res, _ := f.mustSweep(Options{Delayed: true}, nil)
	<-stalled
	if res.Removed != int64(len(expired)) {
		t.Errorf("removed %d, want %d", res.Removed, len(expired))
	}
	if f.exists(f.layout.Lock()) {
		t.Error("the lock was left behind")
	}
}

// TestRemovalRefusesWithoutEveryPermission: for each command a sweep's
// writes use, a user lacking only that one: the sweep fails naming it
// before it writes anything, and the removal script itself, called anyway,
// refuses before its first write. The database is the same afterwards.
func TestRemovalRefusesWithoutEveryPermission(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"lset", "lrem", "del", "rpush", "srem", "zrem", "hset", "set", "evalsha", "pexpire", "ltrim"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			f := newSweepFixture(t)
			f.seedMixed(10)
			if err := f.rdb.Do(f.ctx, "ACL", "SETUSER", "t", "on", ">pw", "~*", "+@all", "-"+cmd).Err(); err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(&redis.Options{Addr: f.srv.Addr(), Username: "t", Password: "pw"})
			defer c.Close()
			f.via = c
			before := f.dump()
			arch, err := OpenArchive(filepath.Join(t.TempDir(), "a.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer arch.Close()
			_, _, err = f.sweep(Options{Delayed: true, ToFailed: true, Archive: arch}, nil)
			var pe *preflight.PermissionError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), strings.ToUpper(cmd)) {
				t.Fatalf("sweep without %s: %v, want a permission error naming it", cmd, err)
			}
			if after := f.dump(); !reflect.DeepEqual(before, after) {
				t.Fatalf("the refused sweep changed the database")
			}
		})
	}
}

// TestRemovalScriptRefusesBeforeWriting calls the removal script as users
// lacking one write each (what a run would meet should the permissions
// change after its preflight): NOPERM, and no marker, no change.
func TestRemovalScriptRefusesBeforeWriting(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"lset", "lrem", "del", "hset"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			f := newSweepFixture(t)
			q := f.layout.Queue("default")
			var cands [][3]string
			for i := 0; i < 5; i++ {
				id := fmt.Sprintf("j%d", i)
				p := f.job(id, "X")
				f.push("default", p, id, "100")
				cands = append(cands, [3]string{p, fmt.Sprint(i), "100"})
			}
			if err := f.rdb.Do(f.ctx, "ACL", "SETUSER", "t", "on", ">pw", "~*", "+@all", "-"+cmd).Err(); err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(&redis.Options{Addr: f.srv.Addr(), Username: "t", Password: "pw"})
			defer c.Close()
			before := f.dump()
			_, err := f.scriptCallAs(c, q, cands)
			if err == nil || !redis.HasErrorPrefix(err, "NOPERM") || !strings.Contains(err.Error(), strings.ToUpper(cmd)) {
				t.Fatalf("script without %s: %v, want NOPERM naming it", cmd, err)
			}
			if after := f.dump(); !reflect.DeepEqual(before, after) {
				t.Fatalf("the refused script changed the database")
			}
		})
	}
}

// TestRemovalJudgesByRedisClock: a host clock an hour ahead judges jobs
// that expire within the hour expired; the script asks Redis's clock and
// keeps them.
func TestRemovalJudgesByRedisClock(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.push("default", f.job("past", "X"), "past", f.at(-time.Minute))
	f.push("default", f.job("soon", "X"), "soon", f.at(30*time.Minute))
	ahead := f.now.Add(time.Hour)
	res, removed := f.mustSweep(Options{Now: func() time.Time { return ahead }},
		func(c *inspect.Config) { c.Now = func() time.Time { return ahead } })
	if got := removedIDs(removed); !equalStrings(got, []string{"past"}) {
		t.Errorf("removed %v, want [past]: a job whose deadline has not passed on Redis's clock went", got)
	}
	if res.Changed != 1 {
		t.Errorf("changed %d, want 1 (kept: not due by Redis's clock)", res.Changed)
	}
}

// TestBatchesAreBoundedInBytes: with large payloads a script takes few
// candidates and looks a short way around them; with small ones, the
// usual counts.
func TestBatchesAreBoundedInBytes(t *testing.T) {
	t.Parallel()
	cands := func(n, size, step int) []candidate {
		out := make([]candidate, n)
		for i := range out {
			out[i] = candidate{job: &inspect.Job{Raw: strings.Repeat("x", size), Index: int64(i * step)}}
		}
		return out
	}
	for _, tc := range []struct {
		name                string
		size, step          int
		archive, failed     bool
		wantTake, wantSlack int
	}{
		{"small payloads", 255, 1, false, false, 250, 256},
		{"10 KB", 10 << 10, 1, false, false, 26, 12},
		{"10 KB archived and failed", 10 << 10, 1, true, true, 17, 12},
		{"100 KB", 100 << 10, 1, false, false, 3, 1},
		{"100 KB spread out", 100 << 10, 3, false, false, 1, 1},
		{"1 MB", 1 << 20, 1, false, false, 1, 1},
	} {
		lr := &listRun{r: &run{}, maxVictims: startVictims, avgBytes: tc.size}
		if tc.archive {
			lr.r.opts.Archive = &Archive{}
		}
		lr.r.opts.ToFailed = tc.failed
		if got := lr.take(cands(400, tc.size, tc.step)); got != tc.wantTake {
			t.Errorf("%s: take %d, want %d", tc.name, got, tc.wantTake)
		}
		if got := lr.slack(); got != tc.wantSlack {
			t.Errorf("%s: slack %d, want %d", tc.name, got, tc.wantSlack)
		}
	}
}

// TestLargePayloadsAreRemovedExactly sweeps 100 KB payloads: exactly the
// expired ones go, whatever the byte bounds make of the batches.
func TestLargePayloadsAreRemovedExactly(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	pad := strings.Repeat("p", 100<<10)
	var want []string
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("big%02d", i)
		deadline := f.at(time.Hour)
		if i%2 == 1 {
			deadline = f.at(-time.Hour)
			want = append(want, id)
		}
		f.push("default", fmt.Sprintf(`{"class":"X","args":[%q],"id":%q}`, pad, id), id, deadline)
	}
	res, removed := f.mustSweep(Options{}, nil)
	if got := removedIDs(removed); !equalStrings(got, want) || res.Removed != int64(len(want)) {
		t.Errorf("removed %v, want %v", got, want)
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val(); n != 20 {
		t.Errorf("%d left, want 20", n)
	}
}

// TestHeadTrimAndDrainRefuseBeforeWriting calls head_trim.lua and
// drain_keys.lua as users lacking one command each. Neither checks the
// deadline keys' MGET ahead (it reads before any write), and drain_keys.lua
// not their DEL either (its first write): a refusal must still answer
// NOPERM naming the command and change nothing.
func TestHeadTrimAndDrainRefuseBeforeWriting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		script, cmd string
	}{
		{"head_trim", "mget"}, {"head_trim", "del"}, {"head_trim", "ltrim"}, {"head_trim", "hincrby"},
		{"drain_keys", "mget"}, {"drain_keys", "del"}, {"drain_keys", "ltrim"},
	} {
		t.Run(tc.script+" without "+tc.cmd, func(t *testing.T) {
			t.Parallel()
			f := newSweepFixture(t)
			q := f.layout.Queue("default")
			if err := LoadScripts(f.ctx, f.rdb); err != nil {
				t.Fatal(err)
			}
			var keys []string
			var args []any
			var script *once.Script
			switch tc.script {
			case "head_trim":
				var digests string
				var judged []string
				var last string
				keys = []string{q, f.layout.Failed(), f.layout.Journal(), f.layout.Stats()}
				for i := 0; i < 3; i++ {
					id := fmt.Sprintf("j%d", i)
					last = f.job(id, "X")
					f.push("default", last, id, f.at(-time.Hour))
					keys = append(keys, f.layout.Expiration(id))
					digests += sha1hex(last)
					judged = append(judged, f.at(-time.Hour))
				}
				script = headTrimScript
				args = []any{"0", "0", last, "deleted:default", digests, strings.Join(judged, "\n"), f.now.Add(-time.Hour).UnixMilli()}
			case "drain_keys":
				stage := "{" + q + "}:resque-expire:committed:test"
				var entries []any
				keys = []string{stage}
				for i := 0; i < 3; i++ {
					key := f.layout.Expiration(fmt.Sprintf("j%d", i))
					f.rdb.Set(f.ctx, key, "100", 0)
					entries = append(entries, stagedEntry(key, "100", "report"))
					keys = append(keys, key)
				}
				f.rdb.RPush(f.ctx, stage, entries...)
				script = drainKeysScript
				args = []any{len(entries), sha1hex(entries[0].(string)), sha1hex(entries[len(entries)-1].(string)), 3, "100\n100\n100"}
			}
			if err := f.rdb.Do(f.ctx, "ACL", "SETUSER", "t", "on", ">pw", "~*", "+@all", "-"+tc.cmd).Err(); err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(&redis.Options{Addr: f.srv.Addr(), Username: "t", Password: "pw"})
			defer c.Close()
			before := f.dump()
			err := once.NewRequests(f.layout.Requests(once.NewRunID())).Run(f.ctx, c, script, keys, args...).Err()
			if err == nil || !redis.HasErrorPrefix(err, "NOPERM") || !strings.Contains(err.Error(), strings.ToUpper(tc.cmd)) {
				t.Fatalf("%s without %s: %v, want NOPERM naming it", tc.script, tc.cmd, err)
			}
			if after := f.dump(); !reflect.DeepEqual(before, after) {
				t.Fatalf("the refused script changed the database")
			}
		})
	}
}
