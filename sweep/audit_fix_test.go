package sweep

import (
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/audit"
)

// TestFixOrphansPromotedMidRun: audit --fix-orphans --apply while
// resque-scheduler promotes an expired delayed job into an already-read
// queue keeps the job's deadline key (given a TTL), so that the next sweep
// removes the job.
func TestFixOrphansPromotedMidRun(t *testing.T) {
	t.Parallel()
	f, hook, _ := promotionFixture(t)
	key := f.layout.Expiration("promoted")
	opts := audit.Options{Jobs: true, Deadlines: true, Progress: hook}
	res, err := audit.Fix(f.ctx, f.scanner(nil), audit.FixOptions{Audit: opts, Orphans: true, Apply: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.DeadlineOrphans.Candidates != 1 {
		t.Fatalf("the promotion did not happen between the lists: %+v", *res.DeadlineOrphans)
	}
	if !f.exists(key) {
		t.Fatal("the deadline key of a job promoted during the audit was deleted: the stale job is queued without a deadline")
	}
	if pttl := f.rdb.PTTL(f.ctx, key).Val(); pttl <= 0 || pttl > time.Hour {
		t.Errorf("the held orphan's TTL is %v, want at most 1h", pttl)
	}
	_, removed := f.mustSweep(Options{Delayed: true}, nil)
	if got := removedIDs(removed); !equalStrings(got, []string{"promoted"}) {
		t.Errorf("the next sweep removed %v, want [promoted]", got)
	}
}
