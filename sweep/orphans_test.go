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

// TestOrphans: expired orphaned deadline keys are deleted, future ones get
// a TTL of deadline + grace, keys whose job is queued or delayed are left
// exactly as they were, unreadable ones are left and reported.
func TestOrphans(t *testing.T) {
	t.Parallel()
	for _, grace := range []time.Duration{0, 5 * time.Minute} {
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
			want := OrphanResult{Keys: 9, Orphans: 5, Deleted: 2, Expiring: 1, Invalid: 2}
			if *o != want {
				t.Errorf("orphans %+v, want %+v", *o, want)
			}
			for _, id := range []string{"gone-expired", "gone-expired-ms", "queued-expired"} {
				if f.exists(f.layout.Expiration(id)) {
					t.Errorf("%s: not deleted", id)
				}
			}
			wantGrace := grace
			if wantGrace == 0 {
				wantGrace = time.Hour
			}
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
			if d := diffDumps(before, after); d != "" {
				t.Errorf("unexpected changes:\n%s", d)
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
	want := OrphanResult{Keys: 10, Orphans: 5, Deleted: 2, Expiring: 1, Invalid: 2}
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
