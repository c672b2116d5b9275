package sweep

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// orphanFixture seeds jobs that own their deadline keys (in a registered
// queue, in an unregistered queue list, in a delayed bucket, an ActiveJob
// one) and deadline keys whose job is nowhere.
func orphanFixture(t *testing.T) *sweepFixture {
	f := newSweepFixture(t)
	f.push("default", f.job("queued", "X"), "queued", f.at(10*time.Minute))
	f.push("default", f.job("queued-expired", "X"), "queued-expired", f.at(-time.Hour))
	f.rdb.RPush(f.ctx, f.layout.Queue("unregistered"), f.job("stray", "X"))
	f.rdb.Set(f.ctx, f.layout.Expiration("stray"), f.at(time.Minute), 0)
	aj := fmt.Sprintf(`{"class":%q,"args":[{"job_class":"Y","job_id":"aj-1"}]}`, resque.ActiveJobWrapper)
	f.push("default", aj, "aj-1", f.at(time.Hour))
	f.delay(f.now.Unix()+60, `{"class":"X","args":[],"queue":"q","id":"delayed"}`, "delayed", f.at(5*time.Minute))

	f.rdb.Set(f.ctx, f.layout.Expiration("gone-expired"), f.at(-time.Hour), 0)
	f.rdb.Set(f.ctx, f.layout.Expiration("gone-expired-ms"), strconv.FormatInt(f.now.Add(-time.Second).UnixMilli(), 10), 0)
	f.rdb.Set(f.ctx, f.layout.Expiration("gone-future"), f.at(10*time.Minute), 0)
	f.rdb.Set(f.ctx, f.layout.Expiration("gone-garbage"), "soon", 0)
	f.rdb.HSet(f.ctx, f.layout.Expiration("gone-hash"), "at", f.at(-time.Hour))
	// Not an expiration key of this layout: never looked at.
	f.rdb.Set(f.ctx, "resque:job:gone:expiration:extra", f.at(-time.Hour), 0)
	f.rdb.Set(f.ctx, "other:job:gone:expiration", f.at(-time.Hour), 0)
	return f
}

// TestOrphans: no orphaned deadline key is deleted. Expired ones get a TTL
// of the hold (max(grace, 1h)) from now, future ones deadline + hold; keys
// whose job is queued or delayed are left exactly as they were, unreadable
// ones are left and reported. A second run changes no TTL it set.
func TestOrphans(t *testing.T) {
	t.Parallel()
	for _, grace := range []time.Duration{0, 5 * time.Minute, 2 * time.Hour} {
		t.Run(fmt.Sprint("grace=", grace), func(t *testing.T) {
			t.Parallel()
			f := orphanFixture(t)
			before := f.dump()
			res, removed := f.mustSweep(Options{Orphans: true, Delayed: true, OrphanGrace: grace}, nil)
			if len(removed) != 1 || removed[0].ID != "queued-expired" {
				t.Errorf("removed %v", removedIDs(removed))
			}
			o := res.Orphans
			if o == nil {
				t.Fatal("no orphan result")
			}
			// queued, stray, aj-1, delayed, and the five orphans.
			hold := max(grace, time.Hour)
			want := OrphanResult{Keys: 9, Orphans: 5, Expired: 2, Expiring: 1, Invalid: 2, HoldSeconds: hold.Seconds()}
			if *o != want {
				t.Errorf("orphans %+v, want %+v", *o, want)
			}
			if f.exists(f.layout.Expiration("queued-expired")) {
				t.Error("the removed job's deadline key is still there")
			}
			for _, id := range []string{"gone-expired", "gone-expired-ms"} {
				k := f.layout.Expiration(id)
				if pttl := f.rdb.PTTL(f.ctx, k).Val(); pttl > hold || pttl < hold-5*time.Second {
					t.Errorf("%s: pttl %v, want about %v", id, pttl, hold)
				}
			}
			wantGrace := hold
			// The deadline is f.now+10m, which is at most 1s behind the
			// wall clock.
			pttl := f.rdb.PTTL(f.ctx, f.layout.Expiration("gone-future")).Val()
			if hi, lo := 10*time.Minute+wantGrace, 10*time.Minute+wantGrace-5*time.Second; pttl > hi || pttl < lo {
				t.Errorf("gone-future: pttl %v, want about %v", pttl, hi)
			}
			if got := f.rdb.Get(f.ctx, f.layout.Expiration("gone-future")).Val(); got != f.at(10*time.Minute) {
				t.Errorf("gone-future's value changed to %q", got)
			}
			problems := map[string]bool{}
			for _, p := range res.Problems {
				if p.Kind == "orphan-invalid-deadline" {
					problems[p.Key] = true
				}
			}
			if !problems[f.layout.Expiration("gone-garbage")] || !problems[f.layout.Expiration("gone-hash")] || len(problems) != 2 {
				t.Errorf("problems %+v", res.Problems)
			}
			// Everything else is exactly as it was.
			after := f.dump()
			for _, k := range []string{"gone-expired", "gone-expired-ms", "gone-future", "queued-expired"} {
				delete(before, f.layout.Expiration(k))
				delete(after, f.layout.Expiration(k))
			}
			delete(before, f.layout.Queue("default"))
			delete(after, f.layout.Queue("default"))
			f.takeStats(after, res)
			if d := diffDumps(before, after); d != "" {
				t.Errorf("unexpected changes:\n%s", d)
			}
			// A second run counts the same orphans and extends no TTL.
			ttls := map[string]time.Duration{}
			for _, id := range []string{"gone-expired", "gone-expired-ms", "gone-future"} {
				ttls[id] = f.rdb.PTTL(f.ctx, f.layout.Expiration(id)).Val()
			}
			res, _ = f.mustSweep(Options{Orphans: true, Delayed: true, OrphanGrace: grace}, nil)
			if res.Orphans == nil || *res.Orphans != want {
				t.Errorf("second run: orphans %+v, want %+v", res.Orphans, want)
			}
			for id, was := range ttls {
				if now := f.rdb.PTTL(f.ctx, f.layout.Expiration(id)).Val(); now > was || now <= 0 {
					t.Errorf("%s: the second run moved its TTL from %v to %v", id, was, now)
				}
			}
		})
	}
}

// TestOrphansDryRun: a dry run reports the same counts and changes nothing.
func TestOrphansDryRun(t *testing.T) {
	t.Parallel()
	f := orphanFixture(t)
	before := f.dump()
	res, _ := f.mustSweep(Options{DryRun: true, Orphans: true, Delayed: true}, nil)
	if d := diffDumps(before, f.dump()); d != "" {
		t.Fatalf("dry run changed Redis:\n%s", d)
	}
	// The dry run does not remove queued-expired, so its key is owned.
	want := OrphanResult{Keys: 10, Orphans: 5, Expired: 2, Expiring: 1, Invalid: 2, HoldSeconds: 3600}
	if res.Orphans == nil || *res.Orphans != want {
		t.Errorf("dry-run orphans %+v, want %+v", res.Orphans, want)
	}
}

// TestOrphansClassFilter: jobs left out by --class still own their keys.
func TestOrphansClassFilter(t *testing.T) {
	t.Parallel()
	f := orphanFixture(t)
	res, removed := f.mustSweep(Options{Orphans: true, Delayed: true}, func(c *inspect.Config) { c.Classes = []string{"Nothing"} })
	if len(removed) != 0 || res.Orphans == nil || res.Orphans.Orphans != 5 {
		t.Errorf("removed %v, orphans %+v", removedIDs(removed), res.Orphans)
	}
	for _, id := range []string{"queued", "queued-expired", "stray", "aj-1", "delayed"} {
		if !f.exists(f.layout.Expiration(id)) || f.rdb.PTTL(f.ctx, f.layout.Expiration(id)).Val() != -1 {
			t.Errorf("%s: the key of a queued job was touched", id)
		}
	}
}

// TestOrphansRefused: orphans can only be judged with every list in view;
// a queue filter or leaving out the delayed jobs is refused before anything
// happens. A run stopped by its limit does not judge orphans either.
func TestOrphansRefused(t *testing.T) {
	t.Parallel()
	f := orphanFixture(t)
	before := f.dump()
	_, _, err := f.sweep(Options{Orphans: true, Delayed: true}, func(c *inspect.Config) { c.Queues = []string{"default"} })
	if err == nil || !strings.Contains(err.Error(), "orphans") {
		t.Errorf("orphans with a queue filter: %v", err)
	}
	_, _, err = f.sweep(Options{Orphans: true}, nil)
	if err == nil {
		t.Error("orphans without the delayed jobs: no error")
	}
	if d := diffDumps(before, f.dump()); d != "" {
		t.Fatalf("a refused run changed Redis:\n%s", d)
	}
	res, _ := f.mustSweep(Options{Orphans: true, Delayed: true, Limit: 1}, nil)
	if res.Stopped != "limit" || res.Orphans != nil || !f.exists(f.layout.Expiration("gone-expired")) {
		t.Errorf("limit reached: stopped %q, orphans %+v", res.Stopped, res.Orphans)
	}
}

// promote moves the first job of delayed bucket ts to the tail of queue the
// way resque-scheduler does when it is due: LPOP from the bucket, SREM of the
// bucket from the payload's timestamps set, ZREM of the bucket from the
// schedule once it is empty, then Resque.push (SADD <ns>:queues, RPUSH).
func (f *sweepFixture) promote(ts int64, queue string) {
	f.t.Helper()
	payload, err := f.rdb.LPop(f.ctx, f.layout.Delayed(ts)).Result()
	if err != nil {
		f.t.Fatalf("promote: %v", err)
	}
	f.rdb.SRem(f.ctx, f.layout.Timestamps(payload), resque.DelayedMember(ts))
	if f.rdb.LLen(f.ctx, f.layout.Delayed(ts)).Val() == 0 {
		f.rdb.Del(f.ctx, f.layout.Delayed(ts))
		f.rdb.ZRem(f.ctx, f.layout.DelayedSchedule(), strconv.FormatInt(ts, 10))
	}
	f.rdb.SAdd(f.ctx, f.layout.Queues(), queue)
	f.rdb.RPush(f.ctx, f.layout.Queue(queue), payload)
}

// promotionFixture: a queue with one live job and an overdue delayed job for
// that queue whose deadline has passed, and a Progress hook that promotes
// the delayed job after the queue's only page was read: into a queue the run
// has already scanned, out of a bucket it has not read yet. The run sees
// the job nowhere.
func promotionFixture(t *testing.T) (*sweepFixture, *slowPages, string) {
	f := newSweepFixture(t)
	f.push("a_small", f.job("live", "X"), "live", f.at(time.Hour))
	ts := f.now.Unix() - 30
	promoted := `{"class":"X","args":[],"queue":"a_small","id":"promoted"}`
	f.delay(ts, promoted, "promoted", f.at(-time.Minute))
	hook := &slowPages{hook: func(page int) {
		if page == 1 {
			f.promote(ts, "a_small")
		}
	}}
	return f, hook, promoted
}

// TestOrphanPromotedMidRun: a delayed job resque-scheduler promotes into an
// already-scanned queue during a sweep --orphans keeps its deadline key (it
// is given a TTL, never deleted), and the next sweep removes the job.
func TestOrphanPromotedMidRun(t *testing.T) {
	t.Parallel()
	f, hook, promoted := promotionFixture(t)
	key := f.layout.Expiration("promoted")
	res, removed := f.mustSweep(Options{Orphans: true, Delayed: true, Progress: hook}, nil)
	if len(removed) != 0 || res.Orphans == nil || res.Orphans.Orphans != 1 {
		t.Fatalf("the promotion did not happen between the lists: removed %v, orphans %+v", removedIDs(removed), res.Orphans)
	}
	if got := f.list(f.layout.Queue("a_small")); len(got) != 2 || got[1] != promoted {
		t.Fatalf("a_small after the promotion: %q", got)
	}
	if !f.exists(key) {
		t.Fatal("the deadline key of a job promoted during the run was deleted: the stale job is queued without a deadline")
	}
	if pttl := f.rdb.PTTL(f.ctx, key).Val(); pttl <= 0 || pttl > time.Hour {
		t.Errorf("the held orphan's TTL is %v, want at most 1h", pttl)
	}
	if f.rdb.Get(f.ctx, key).Val() != f.at(-time.Minute) {
		t.Errorf("the held orphan's value changed")
	}
	// The next sweep sees the job with its deadline and removes both.
	res, removed = f.mustSweep(Options{Orphans: true, Delayed: true}, nil)
	if got := removedIDs(removed); !equalStrings(got, []string{"promoted"}) {
		t.Errorf("the next sweep removed %v, want [promoted]", got)
	}
	if got := f.list(f.layout.Queue("a_small")); !equalStrings(got, []string{f.job("live", "X")}) {
		t.Errorf("a_small after the next sweep: %q", got)
	}
	if f.exists(key) {
		t.Error("the removed job's deadline key is still there")
	}
	if res.Orphans == nil || res.Orphans.Orphans != 0 {
		t.Errorf("next sweep's orphans: %+v", res.Orphans)
	}
}
