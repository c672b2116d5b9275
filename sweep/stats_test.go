package sweep

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// takeStats checks the stats hash against a sweep's result (every removal
// counted once, under the result's queues) and drops it from a dump, so
// that the dump can be compared with one taken before the sweep.
func (f *sweepFixture) takeStats(after map[string]string, res *Result) {
	f.t.Helper()
	got := f.stats()
	want := map[string]int64{}
	action := ActionDeleted
	switch {
	case strings.HasPrefix(res.Destination, "failed"):
		action = ActionFailed
	case strings.HasPrefix(res.Destination, "archive"):
		action = ActionArchived
	}
	for _, q := range res.Queues {
		if q.Removed > 0 {
			want[action+":"+q.Queue] += q.Removed
		}
	}
	if res.Delayed != nil && res.Delayed.Removed > 0 {
		want[action+":"+DelayedQueue] += res.Delayed.Removed
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Errorf("stats hash %v, want %v", got, want)
	}
	delete(after, f.layout.Stats())
}

// stats reads the stats hash through RemovedTotals.
func (f *sweepFixture) stats() map[string]int64 {
	f.t.Helper()
	rc, err := RemovedTotals(f.ctx, f.rdb, f.layout)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, c := range rc {
		out[c.Action+":"+c.Queue] = c.Count
	}
	return out
}

// TestStatsCountRemovalsAcrossRuns: the removal counter is kept in Redis,
// so it adds up across runs and per action, and a queue name holding ':'
// comes back whole.
func TestStatsCountRemovalsAcrossRuns(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	if !f.layout.Reserved(f.layout.Stats()) {
		t.Fatalf("%s is not reserved", f.layout.Stats())
	}
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("a%d", i)
		f.push("mail:high", f.job(id, "X"), id, f.at(-time.Hour))
	}
	f.push("mail:high", f.job("live", "X"), "live", f.at(time.Hour))
	f.delay(f.now.Unix()-10, f.job("d1", "X"), "d1", f.at(-time.Hour))
	f.mustSweep(Options{Delayed: true}, nil)
	for i := 0; i < 2; i++ {
		id := fmt.Sprintf("b%d", i)
		f.push("mail:high", f.job(id, "X"), id, f.at(-time.Hour))
	}
	f.mustSweep(Options{Delayed: true, ToFailed: true}, nil)
	f.push("mail:high", f.job("c", "X"), "c", f.at(-time.Hour))
	f.mustSweep(Options{DryRun: true}, nil) // counts nothing
	want := map[string]int64{"deleted:mail:high": 3, "deleted:(delayed)": 1, "failed:mail:high": 2}
	if got := f.stats(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stats %v, want %v", got, want)
	}
}

// TestStatsWrongTypeRefusesTheBatch: a stats key of another type makes the
// removal script refuse before its first write.
func TestStatsWrongTypeRefusesTheBatch(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.push("default", f.job("x", "X"), "x", f.at(-time.Hour))
	f.rdb.Set(f.ctx, f.layout.Stats(), "not a hash", 0)
	before := f.dump()
	_, _, err := f.sweep(Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "not a hash") {
		t.Fatalf("sweep: %v, want a refusal naming the stats key's type", err)
	}
	after := f.dump()
	if d := diffDumps(before, after); d != "" {
		t.Errorf("a refused batch changed Redis:\n%s", d)
	}
}
