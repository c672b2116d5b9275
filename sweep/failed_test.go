package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/preflight"
	"github.com/resque-expire/resque-expire/internal/redistest"
)

// resqueFailure is a failure entry exactly as lib/resque/failure/redis.rb
// (and redis_multi_queue.rb) save it: the same keys in the same order,
// failed_at as Time.now.strftime("%Y/%m/%d %H:%M:%S %Z").
func resqueFailure(payload, queue, exception string, failedAt time.Time) string {
	return fmt.Sprintf(`{"failed_at":%q,"payload":%s,"exception":%q,"error":"boom","backtrace":["app/jobs/x.rb:3:in 'perform'"],"worker":"host:123:%s","queue":%q}`,
		failedAt.UTC().Format("2006/01/02 15:04:05 UTC"), payload, exception, queue, queue)
}

// fail pushes a failure entry the way Resque's failure backends do: onto
// <ns>:failed, or (multi) onto <ns>:<queue>_failed after SADD failed_queues.
func (f *sweepFixture) fail(entry, queue string, multi bool) {
	f.t.Helper()
	key := f.layout.Failed()
	if multi {
		name := queue + "_failed"
		f.rdb.SAdd(f.ctx, f.layout.FailedQueues(), name)
		key = f.layout.FailedList(name)
	}
	if err := f.rdb.RPush(f.ctx, key, entry).Err(); err != nil {
		f.t.Fatal(err)
	}
}

// TestSweepFailedBothBackends: entries written by --to-failed itself and
// entries in Resque's exact format, in the default backend's list and the
// multi-queue backend's lists; sweep --failed removes exactly the expired
// ones (and the expired queued jobs, unless only failed), keeps the order
// of the rest, archives them marked as failures, and restore puts them
// back on the list they came from.
func TestSweepFailedBothBackends(t *testing.T) {
	t.Parallel()
	for _, multi := range []bool{false, true} {
		t.Run(fmt.Sprintf("multi=%v", multi), func(t *testing.T) {
			t.Parallel()
			f := newSweepFixture(t)
			// Expired jobs moved onto <ns>:failed by --to-failed, as the
			// tool writes them (ResqueExpire::JobExpired, keys deleted).
			f.push("mailers", f.job("moved1", "Mail"), "moved1", f.at(-time.Hour))
			f.push("mailers", f.job("moved2", "Mail"), "moved2", f.at(-time.Minute))
			f.mustSweep(Options{ToFailed: true}, nil)
			toFailed := f.list(f.layout.Failed())
			if len(toFailed) != 2 {
				t.Fatalf("--to-failed wrote %d entries", len(toFailed))
			}
			old := f.now.Add(-48 * time.Hour)
			entries := map[string]string{}
			for _, e := range []struct{ id, deadline, exception string }{
				{"exp1", f.at(-time.Hour), "RuntimeError"},
				{"live1", f.at(time.Hour), "RuntimeError"},
				{"nokey", "", "Net::ReadTimeout"},
				{"exp2", f.at(-time.Second), "RuntimeError"},
				{"live2", f.at(24 * time.Hour), "ResqueExpire::Other"},
			} {
				entries[e.id] = resqueFailure(f.job(e.id, "Billing"), "billing", e.exception, old)
				f.fail(entries[e.id], "billing", multi)
				if e.deadline != "" {
					f.rdb.Set(f.ctx, f.layout.Expiration(e.id), e.deadline, 0)
				}
			}
			garbage := `{"failed_at":"2020/01/01 00:00:00 UTC","payload":"not an object","exception":"X","queue":"billing"}`
			f.fail(garbage, "billing", multi)
			f.fail("", "billing", multi) // Resque's remove(i) placeholder, mid-removal
			// A queued job that is expired goes too (not with --only failed).
			f.push("default", f.job("queued", "X"), "queued", f.at(-time.Hour))

			billing := f.layout.Failed()
			if multi {
				billing = f.layout.FailedList("billing_failed")
			}
			before := f.dump()
			res, removed := f.mustSweep(Options{Failed: true, DryRun: true}, nil)
			if res.Failed == nil || res.Failed.Removed != 4 || res.Removed != 5 {
				t.Fatalf("dry run: %+v failed %+v", res.Counts, res.Failed)
			}
			if len(removed) != 5 {
				t.Fatalf("dry run reported %d removals", len(removed))
			}
			if after := f.dump(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a dry run changed the database")
			}

			a := f.archiveFile()
			res, removed = f.mustSweep(Options{Failed: true, Archive: a}, nil)
			if res.Failed.Removed != 4 || res.Removed != 5 || res.Failed.Changed != 0 {
				t.Fatalf("sweep: %+v failed %+v", res.Counts, res.Failed)
			}
			var gotFailed []string
			for _, rm := range removed {
				if rm.Failed != "" {
					gotFailed = append(gotFailed, rm.ID)
				}
			}
			slices.Sort(gotFailed)
			if want := []string{"exp1", "exp2", "moved1", "moved2"}; !slices.Equal(gotFailed, want) {
				t.Errorf("removed failure entries %v, want %v", gotFailed, want)
			}
			want := []string{entries["live1"], entries["nokey"], entries["live2"], garbage, ""}
			if got := f.list(billing); !slices.Equal(got, want) {
				t.Errorf("survivors of %s:\n%q\nwant\n%q", billing, got, want)
			}
			if multi && len(f.list(f.layout.Failed())) != 0 {
				t.Errorf("the --to-failed entries were not all removed: %q", f.list(f.layout.Failed()))
			}
			if f.exists(f.layout.Queue("default")) {
				t.Errorf("the expired queued job was not removed")
			}
			if !f.exists(f.layout.Expiration("exp1")) {
				t.Errorf("removing a failure entry deleted its job's deadline key (a queued copy may still need it)")
			}

			// The archive: one record per removed entry, marked as a failure.
			lines := f.archiveLines(a.Path())
			var failedRecs int
			for _, l := range lines {
				var rec ArchiveRecord
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatal(err)
				}
				if rec.Failed == "" {
					continue
				}
				failedRecs++
				var e map[string]any
				if err := json.Unmarshal([]byte(rec.Payload), &e); err != nil || e["payload"] == nil {
					t.Errorf("record payload is not the failure entry: %s", rec.Payload)
				}
			}
			if failedRecs != 4 {
				t.Fatalf("%d failure records in the archive, want 4:\n%s", failedRecs, strings.Join(lines, "\n"))
			}

			// A second sweep finds nothing more.
			res, _ = f.mustSweep(Options{Failed: true, OnlyFailed: true}, nil)
			if res.Removed != 0 || res.Failed.Scanned != 5 {
				t.Errorf("second sweep: %+v", res.Failed)
			}

			// Restore puts each entry back, byte for byte, on its own list;
			// a second restore pushes nothing.
			rr, _ := f.restore(a.Path(), RestoreOptions{})
			if rr.Restored != 5 {
				t.Fatalf("restored %d, want 5 (4 failures, 1 job)", rr.Restored)
			}
			got := f.list(billing)
			for _, id := range []string{"exp1", "exp2"} {
				if !slices.Contains(got, entries[id]) {
					t.Errorf("%s not restored onto %s", id, billing)
				}
			}
			if all := f.list(f.layout.Failed()); !slices.Contains(all, toFailed[0]) || !slices.Contains(all, toFailed[1]) {
				t.Errorf("--to-failed entries not restored onto %s", f.layout.Failed())
			}
			if multi {
				if ok, _ := f.rdb.SIsMember(f.ctx, f.layout.FailedQueues(), "billing_failed").Result(); !ok {
					t.Errorf("billing_failed not in failed_queues")
				}
			}
			rr, _ = f.restore(a.Path(), RestoreOptions{})
			if rr.Restored != 0 || rr.AlreadyRestored != 5 {
				t.Errorf("second restore: %+v", rr)
			}
		})
	}
}

// TestSweepFailedOnlyAndOlderThan: --only failed leaves the queues alone;
// --failed-older-than removes old entries whatever their deadline, never
// without the flag, and never an entry whose failed_at cannot be read.
func TestSweepFailedOnlyAndOlderThan(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.push("default", f.job("queued", "X"), "queued", f.at(-time.Hour))
	oldLive := resqueFailure(f.job("oldlive", "X"), "default", "RuntimeError", f.now.Add(-40*24*time.Hour))
	newLive := resqueFailure(f.job("newlive", "X"), "default", "RuntimeError", f.now.Add(-time.Hour))
	unreadable := strings.Replace(resqueFailure(f.job("weird", "X"), "default", "RuntimeError", f.now), `"failed_at":"`, `"failed_at":"sometime `, 1)
	for _, e := range []string{oldLive, newLive, unreadable} {
		f.fail(e, "default", false)
	}
	for _, id := range []string{"oldlive", "newlive", "weird"} {
		f.rdb.Set(f.ctx, f.layout.Expiration(id), f.at(time.Hour), 0)
	}
	res, _ := f.mustSweep(Options{Failed: true, OnlyFailed: true}, nil)
	if res.Removed != 0 || !f.exists(f.layout.Queue("default")) {
		t.Fatalf("without --failed-older-than: removed %d; queue kept: %v", res.Removed, f.exists(f.layout.Queue("default")))
	}
	res, removed := f.mustSweep(Options{Failed: true, OnlyFailed: true, FailedOlderThan: 30 * 24 * time.Hour}, nil)
	if res.Removed != 1 || len(removed) != 1 || removed[0].ID != "oldlive" || !removed[0].ByAge {
		t.Fatalf("--failed-older-than 30d: %+v %+v", res.Failed, removed)
	}
	if got := f.list(f.layout.Failed()); !slices.Equal(got, []string{newLive, unreadable}) {
		t.Errorf("survivors %q", got)
	}
	if !f.exists(f.layout.Queue("default")) {
		t.Errorf("--only failed removed a queued job")
	}
	for _, bad := range []Options{{Failed: true, ToFailed: true}, {OnlyFailed: true}, {FailedOlderThan: time.Hour}} {
		if _, _, err := f.sweep(bad, nil); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

// failedScript runs remove_failed.lua directly. Each candidate is
// {entry, index, deadline key ("" for none), judged value, due ms}.
func (f *sweepFixture) failedScript(list string, cands [][5]string) ([]int64, error) {
	keys := []string{list, f.layout.Journal()}
	ki := map[string]int{}
	for _, c := range cands {
		if c[2] != "" && ki[c[2]] == 0 {
			keys = append(keys, c[2])
			ki[c[2]] = len(keys) - 2
		}
	}
	args := []any{"\x00resque-expire:marker:test", "0", 256, len(keys) - 2}
	for _, c := range cands {
		args = append(args, c[0], c[1], ki[c[2]], c[3], c[4], "")
	}
	return once.NewRequests(f.layout.Requests(once.NewRunID())).Run(f.ctx, f.rdb, removeFailedScript, keys, args...).Int64Slice()
}

// TestRemoveFailedScript: the script re-checks every candidate at removal:
// an entry retried (LSET with retried_at) or blanked by remove(i) meanwhile
// is gone (0) and left as it is, an entry whose deadline key changed is
// kept (2), one not yet due by Redis's clock is kept (3), and entries are
// found by value although others were removed before them.
func TestRemoveFailedScript(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	list := f.layout.Failed()
	var e []string
	for i := 0; i < 8; i++ {
		id := fmt.Sprintf("f%d", i)
		e = append(e, resqueFailure(f.job(id, "X"), "q", "RuntimeError", f.now.Add(-time.Hour)))
		f.fail(e[i], "q", false)
		f.rdb.Set(f.ctx, f.layout.Expiration(id), "100", 0)
	}
	// Meanwhile: resque-web removes index 0 (LSET ""; its LREM not yet
	// run), retries index 2 (LSET with retried_at), someone gives f4 a new
	// deadline; workers push a new failure.
	f.rdb.LSet(f.ctx, list, 0, "")
	retried := strings.Replace(e[2], `"queue"`, `"retried_at":"2026/01/01 00:00:00 UTC","queue"`, 1)
	f.rdb.LSet(f.ctx, list, 2, retried)
	f.rdb.Set(f.ctx, f.layout.Expiration("f4"), "200", 0)
	f.fail(resqueFailure(f.job("late", "X"), "q", "RuntimeError", f.now), "q", false)
	future := fmt.Sprint(time.Now().Add(time.Hour).UnixMilli())
	ek := func(i int) string { return f.layout.Expiration(fmt.Sprintf("f%d", i)) }
	codes, err := f.failedScript(list, [][5]string{
		{e[0], "0", ek(0), "100", "0"},
		{e[1], "1", ek(1), "100", "0"},
		{e[2], "2", ek(2), "100", "0"},
		{e[4], "4", ek(4), "100", "0"},
		{e[5], "5", ek(5), "100", future},
		{e[6], "6", "", "", "0"}, // judged by its exception
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, 1, 0, 2, 3, 1}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	got := f.list(list)
	want := []string{"", retried, e[3], e[4], e[5], e[7], resqueFailure(f.job("late", "X"), "q", "RuntimeError", f.now)}
	if !slices.Equal(got, want) {
		t.Fatalf("list after the script:\n%q\nwant\n%q", got, want)
	}
	// resque-web's LREM 1 "" still finds its placeholder.
	if n, _ := f.rdb.LRem(f.ctx, list, 1, "").Result(); n != 1 {
		t.Errorf("resque-web's LREM removed %d", n)
	}
}

// TestInspectFailedMultiQueue: the scanner finds both backends' lists and
// judges entries by the job's deadline, or by the tool's own exception.
func TestInspectFailedMultiQueue(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.fail(resqueFailure(f.job("a", "X"), "mail", "RuntimeError", f.now), "mail", true)
	f.fail(resqueFailure(f.job("b", "Y"), "sms", inspect.JobExpiredException, f.now), "sms", true)
	f.fail(resqueFailure(f.job("c", "Y"), "sms", "RuntimeError", f.now), "sms", false)
	f.rdb.SAdd(f.ctx, f.layout.FailedQueues(), "queue:mail") // not a failed list name: never read
	f.rdb.Set(f.ctx, f.layout.Expiration("a"), f.at(-time.Minute), 0)
	f.rdb.Set(f.ctx, f.layout.Expiration("c"), f.at(time.Minute), 0)
	sum, problems, err := f.scanner(nil).InspectFailed(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Lists) != 3 || sum.Entries != 3 || sum.Expired != 2 || sum.Live != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.ByQueue["sms"].Expired != 1 || sum.ByClass["X"].Expired != 1 {
		t.Errorf("by queue/class: %+v %+v", sum.ByQueue, sum.ByClass)
	}
	if len(problems) != 1 || problems[0].Kind != "bad-failed-queue" {
		t.Errorf("problems %+v", problems)
	}
}

// TestSweepFailedRefusesWithoutEveryPermission: a sweep --failed as a user
// lacking one command it needs fails at the preflight naming it, before
// any write; remove_failed.lua called anyway as that user refuses before
// its first write. The database is the same afterwards.
func TestSweepFailedRefusesWithoutEveryPermission(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"smembers", "lset", "lrem", "rpush", "hset", "mget"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			f := newSweepFixture(t)
			var cands [][5]string
			for i := 0; i < 4; i++ {
				id := fmt.Sprintf("x%d", i)
				e := resqueFailure(f.job(id, "X"), "q", "RuntimeError", f.now)
				f.fail(e, "q", i%2 == 1)
				f.rdb.Set(f.ctx, f.layout.Expiration(id), "100", 0)
				if i%2 == 0 {
					cands = append(cands, [5]string{e, fmt.Sprint(i / 2), f.layout.Expiration(id), "100", "0"})
				}
			}
			if err := f.rdb.Do(f.ctx, "ACL", "SETUSER", "t", "on", ">pw", "~*", "+@all", "-"+cmd).Err(); err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(&redis.Options{Addr: f.srv.Addr(), Username: "t", Password: "pw"})
			defer c.Close()
			f.via = c
			before := f.dump()
			_, _, err := f.sweep(Options{Failed: true, OnlyFailed: true, Archive: f.archiveFile()}, nil)
			var pe *preflight.PermissionError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), strings.ToUpper(cmd)) {
				t.Fatalf("sweep --failed without %s: %v, want a permission error naming it", cmd, err)
			}
			if after := f.dump(); !reflect.DeepEqual(before, after) {
				t.Fatalf("the refused sweep changed the database")
			}
			if cmd == "smembers" {
				return // not used by the script
			}
			keys := []string{f.layout.Failed(), f.layout.Journal()}
			for _, cd := range cands {
				keys = append(keys, cd[2])
			}
			args := []any{"\x00resque-expire:marker:test", "1", 256, len(cands)}
			for k, cd := range cands {
				args = append(args, cd[0], cd[1], k+1, cd[3], cd[4], `{"record":1}`)
			}
			_, err = once.NewRequests(f.layout.Requests(once.NewRunID())).Run(f.ctx, c, removeFailedScript, keys, args...).Int64Slice()
			if err == nil || !redis.HasErrorPrefix(err, "NOPERM") {
				t.Fatalf("remove_failed.lua without %s: %v, want NOPERM", cmd, err)
			}
			if after := f.dump(); !reflect.DeepEqual(before, after) {
				t.Fatalf("the refused script changed the database")
			}
		})
	}
}

// TestSweepFailedCountsExactlyWhenRepliesAreLost: remove_failed.lua ran,
// its reply was lost, go-redis sent it again: the once envelope answers
// what the first call did, so nothing counts as already gone and the
// archive holds each entry once.
func TestSweepFailedCountsExactlyWhenRepliesAreLost(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	entries := f.failedRaceFixture(600) // 300 expired, 300 live
	proxy := redistest.StartProxy(t, f.srv.Addr())
	f.via = redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: 3,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond})
	t.Cleanup(func() { _ = f.via.Close() })
	proxy.LoseRepliesTo(removeFailedScript.Hash(), 3)
	a := f.archiveFile()
	res, _ := f.mustSweep(Options{Failed: true, OnlyFailed: true, Archive: a, MaxScriptTime: time.Second},
		func(c *inspect.Config) { c.Batch = 100 })
	if n := proxy.Pending(); n != 0 {
		t.Fatalf("%d replies were not lost: the test proves nothing", n)
	}
	if res.Removed != 300 || res.Failed.AlreadyGone != 0 || res.Failed.Changed != 0 {
		t.Errorf("removed %d, already gone %d, changed %d; want 300, 0, 0", res.Removed, res.Failed.AlreadyGone, res.Failed.Changed)
	}
	if n := len(f.archiveLines(a.Path())); n != 300 {
		t.Errorf("archive has %d records, want 300", n)
	}
	var live []string
	for i, e := range entries {
		if i%2 == 1 {
			live = append(live, e)
		}
	}
	if got := f.list(f.layout.Failed()); !slices.Equal(got, live) {
		t.Errorf("%d entries left, want the 300 live ones in order", len(got))
	}
}

// TestSweepFailedBoundedInBytes: failure entries of 300 KB go a few per
// script: no script is sent much more than argBytes of entries.
func TestSweepFailedBoundedInBytes(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	big := strings.Repeat("x", 300<<10)
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("big%d", i)
		payload := fmt.Sprintf(`{"class":"X","args":[%q],"id":%q}`, big, id)
		f.fail(resqueFailure(payload, "q", "RuntimeError", f.now), "q", false)
		f.rdb.Set(f.ctx, f.layout.Expiration(id), f.at(-time.Hour), 0)
	}
	f.rdb.ConfigSet(f.ctx, "slowlog-log-slower-than", "0")
	f.rdb.ConfigSet(f.ctx, "slowlog-max-len", "10000")
	f.rdb.SlowLogReset(f.ctx)
	res, _ := f.mustSweep(Options{Failed: true, OnlyFailed: true}, nil)
	if res.Removed != 10 || f.exists(f.layout.Failed()) {
		t.Fatalf("removed %d", res.Removed)
	}
	entries, err := f.rdb.SlowLogGet(f.ctx, 10000).Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, e := range entries {
		if len(e.Args) > 1 && strings.EqualFold(e.Args[0], "evalsha") && e.Args[1] == removeFailedScript.Hash() {
			calls++
		}
	}
	t.Logf("%d removal scripts", calls)
	// 10 entries of 300 KB, at most 1 MB of arguments a script: 4 or more.
	if calls < 4 {
		t.Errorf("%d removal scripts for 3 MB of entries, want at least 4", calls)
	}
}
