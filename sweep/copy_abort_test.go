package sweep

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// liveOnly is list without the jobs seeded expired.
func (f *copyFixture) liveOnly(list []string) []string {
	expired := map[string]bool{}
	for _, j := range f.jobs {
		if j.expired {
			expired[j.payload] = true
		}
	}
	var out []string
	for _, p := range list {
		if !expired[p] {
			out = append(out, p)
		}
	}
	return out
}

// initialPayloads are the seeded jobs, in order.
func (f *copyFixture) initialPayloads() []string {
	out := make([]string, len(f.order))
	for i, id := range f.order {
		out[i] = f.jobs[id].payload
	}
	return out
}

func problemKinds(res *Result) string {
	var out []string
	for _, p := range res.Problems {
		out = append(out, p.Kind+": "+p.Detail)
	}
	return strings.Join(out, "; ")
}

// thirdClientChange is a change another client makes to the list during a
// copy: apply does it on Redis, model on the list's content as it was just
// before (the control); i is the index of a live job there.
type thirdClientChange struct {
	name string
	// aborts: the cutover must not swap (it may when false).
	aborts bool
	apply  func(f *copyFixture, l []string, i int) error
	model  func(l []string, i int) []string
}

var intruder = `{"class":"Intruder","args":[],"id":"intruder"}`

var thirdClientChanges = []thirdClientChange{
	{"LREM", true,
		func(f *copyFixture, l []string, i int) error { return f.rdb.LRem(f.ctx, f.key(), 1, l[i]).Err() },
		func(l []string, i int) []string { return slices.Delete(l, i, i+1) }},
	{"LINSERT", true,
		func(f *copyFixture, l []string, i int) error {
			return f.rdb.LInsertBefore(f.ctx, f.key(), l[i], intruder).Err()
		},
		func(l []string, i int) []string { return slices.Insert(l, i, intruder) }},
	{"LSET", true,
		func(f *copyFixture, l []string, i int) error {
			return f.rdb.LSet(f.ctx, f.key(), int64(i), intruder).Err()
		},
		func(l []string, i int) []string { l[i] = intruder; return l }},
	{"LTRIM head", false,
		func(f *copyFixture, l []string, i int) error { return f.rdb.LTrim(f.ctx, f.key(), 10, -1).Err() },
		func(l []string, i int) []string { return l[10:] }},
	{"LTRIM tail", true,
		func(f *copyFixture, l []string, i int) error { return f.rdb.LTrim(f.ctx, f.key(), 0, -11).Err() },
		func(l []string, i int) []string { return l[:len(l)-10] }},
	{"RPOP", true,
		func(f *copyFixture, l []string, i int) error { return f.rdb.RPopCount(f.ctx, f.key(), 3).Err() },
		func(l []string, i int) []string { return l[:len(l)-3] }},
	{"LPUSH", false,
		func(f *copyFixture, l []string, i int) error { return f.rdb.LPush(f.ctx, f.key(), intruder).Err() },
		func(l []string, i int) []string { return append([]string{intruder}, l...) }},
	{"DEL", true,
		func(f *copyFixture, l []string, i int) error { return f.rdb.Del(f.ctx, f.key()).Err() },
		func(l []string, i int) []string { return nil }},
	{"DEL and re-create", true,
		func(f *copyFixture, l []string, i int) error {
			if err := f.rdb.Del(f.ctx, f.key()).Err(); err != nil {
				return err
			}
			return f.rdb.RPush(f.ctx, f.key(), intruder).Err()
		},
		func(l []string, i int) []string { return []string{intruder} }},
	{"RENAME away", true,
		func(f *copyFixture, l []string, i int) error { return f.rdb.Rename(f.ctx, f.key(), "elsewhere").Err() },
		func(l []string, i int) []string { return nil }},
}

// liveAt is the index in l of the first live seeded job at or after i.
func (f *copyFixture) liveAt(l []string, i int) int {
	for ; i < len(l); i++ {
		if j, ok := f.jobs[copyID(l[i])]; ok && !j.expired {
			return i
		}
	}
	panic("no live job")
}

// TestCopyAbortMatrix: a third client changes the list during the copy, in
// the part already copied, in the part not yet copied, or just before the
// cutover. The swap aborts (or, for changes at the head, handles it), never
// reverts the change, and the list ends as a control with only that change,
// less the expired jobs.
func TestCopyAbortMatrix(t *testing.T) {
	t.Parallel()
	moments := []struct {
		name  string
		phase string
		page  int
		at    int
	}{
		{"copied part", "copy", 6, 150},
		{"part not yet copied", "copy", 6, 2500},
		{"before cutover", "before-cutover", 0, 1500},
	}
	for _, ch := range thirdClientChanges {
		for _, m := range moments {
			t.Run(ch.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				f := newCopyFixture(t)
				f.seed(3000, copyLayouts["random"])
				var control []string
				var pages atomic.Int32
				opts := f.copyOpts()
				opts.copyHook = func(phase, list string) error {
					if phase != m.phase {
						return nil
					}
					if phase == "copy" && int(pages.Add(1)) != m.page {
						return nil
					}
					snap := f.list(f.key())
					i := f.liveAt(snap, m.at)
					control = ch.model(slices.Clone(snap), i)
					if err := ch.apply(f, snap, i); err != nil {
						t.Errorf("third client: %v", err)
					}
					return nil
				}
				res, removed, err := f.sweepCopy(opts)
				if err != nil {
					t.Fatal(err)
				}
				aborted := strings.Contains(problemKinds(res), "copy-aborted")
				if ch.aborts && m.phase == "before-cutover" && !aborted {
					t.Errorf("the cutover swapped; want an abort (problems: %s)", problemKinds(res))
				}
				want := f.liveOnly(control)
				if got := f.list(f.key()); !slices.Equal(got, want) {
					t.Errorf("list holds %d jobs, the control %d (aborted %t: %s)", len(got), len(want), aborted, problemKinds(res))
				}
				if ch.name == "RENAME away" {
					if got := f.list("elsewhere"); !slices.Equal(got, f.liveOnly(got)) && len(got) == 0 {
						t.Errorf("the renamed list is empty")
					}
				}
				for _, r := range removed {
					if !f.jobs[r.ID].expired {
						t.Errorf("removed live job %s", r.ID)
					}
					if f.exists(f.layout.Expiration(r.ID)) {
						t.Errorf("removed job %s kept its key", r.ID)
					}
				}
				for _, p := range f.list(f.key()) {
					if id := copyID(p); id != "intruder" && !f.exists(f.layout.Expiration(id)) {
						t.Errorf("queued job %s without its key", id)
					}
				}
				f.noLeftovers()
			})
		}
	}
}

// TestCopyFenceOnUnrelatedLSET: an LSET on the failed list (what
// Resque::Failure.remove does) during the copy trips the fence; the list
// falls back to in-place removal and ends exact.
func TestCopyFenceOnUnrelatedLSET(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	if err := f.rdb.RPush(f.ctx, f.layout.Failed(), `{"failed_at":"x","payload":{}}`).Err(); err != nil {
		t.Fatal(err)
	}
	opts := f.copyOpts()
	opts.copyHook = func(phase, list string) error {
		if phase == "before-cutover" {
			return f.rdb.LSet(f.ctx, f.layout.Failed(), 0, `{"failed_at":"y","payload":{}}`).Err()
		}
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if p := problemKinds(res); !strings.Contains(p, "copy-aborted: fence-lset") {
		t.Errorf("problems %q, want copy-aborted: fence-lset", p)
	}
	if got, want := f.list(f.key()), f.liveOnly(f.initialPayloads()); !slices.Equal(got, want) {
		t.Errorf("list holds %d jobs, want %d", len(got), len(want))
	}
	if f.engine(res) != engineInPlace {
		t.Errorf("engine %q, want in-place after the fall-back", f.engine(res))
	}
	f.checkKeys(idSetOf(removed))
	f.noLeftovers()
}

// TestCopyFenceIgnoresOwnScripts: the tool's own in-place scripts on
// another queue, running during the copy, never trip the fence; on a quiet
// server there is no false alarm.
func TestCopyFenceIgnoresOwnScripts(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	// A shorter queue, removed in place (LSET, LREM) at the same time.
	other := &copyFixture{sweepFixture: f.sweepFixture, queue: "short", jobs: map[string]copyJob{}, next: 100000}
	other.seed(900, copyLayouts["random"])
	var atFirstPage atomic.Int64
	var rose atomic.Bool
	opts := f.copyOpts()
	opts.Progress = &slowPages{delay: 3 * time.Millisecond}
	opts.copyHook = func(phase, list string) error {
		switch phase {
		case "copy":
			atFirstPage.CompareAndSwap(0, int64(commandCalls(t, f.rdb, "lset"))+1)
		case "before-cutover":
			rose.Store(int64(commandCalls(t, f.rdb, "lset"))+1 > atFirstPage.Load())
		}
		return nil
	}
	res, _, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rose.Load() {
		t.Error("no in-place script ran during the copy: the test proves nothing")
	}
	if p := problemKinds(res); strings.Contains(p, "copy-aborted") {
		t.Errorf("false alarm: %s", p)
	}
	if f.engine(res) != engineCopy {
		t.Errorf("engine %q, want copy", f.engine(res))
	}
	for _, g := range []*copyFixture{f, other} {
		if got, want := g.list(g.key()), g.liveOnly(g.initialPayloads()); !slices.Equal(got, want) {
			t.Errorf("%s holds %d jobs, want %d", g.queue, len(got), len(want))
		}
	}
	f.noLeftovers()
}

// TestCopyDeadlineSemantics: with the copy engine a job is judged when its
// page is read. A deadline pushed back after that does not save it, but its
// key keeps the new value; a job re-enqueued with the same id keeps its new
// deadline; a deadline pushed back before the page is read saves the job.
func TestCopyDeadlineSemantics(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	expiredAt := func(i int) string {
		for ; ; i++ {
			if f.jobs[f.order[i]].expired {
				return f.order[i]
			}
		}
	}
	copied, reEnqueued, unread := expiredAt(400), expiredAt(600), expiredAt(2600)
	later := f.at(2 * time.Hour)
	reJob := strings.Replace(f.jobs[reEnqueued].payload, `"args":[`, `"args":["again",`, 1)
	var pages atomic.Int32
	opts := f.copyOpts()
	opts.copyHook = func(phase, list string) error {
		if phase == "copy" && pages.Add(1) == 8 {
			for _, id := range []string{copied, unread, reEnqueued} {
				if err := f.rdb.Set(f.ctx, f.layout.Expiration(id), later, 0).Err(); err != nil {
					return err
				}
			}
			return f.rdb.RPush(f.ctx, f.key(), reJob).Err()
		}
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if f.engine(res) != engineCopy {
		t.Fatalf("engine %q: %s", f.engine(res), problemKinds(res))
	}
	gone := idSetOf(removed)
	list := f.list(f.key())
	if !gone[copied] || slices.Contains(list, f.jobs[copied].payload) {
		t.Errorf("the job whose deadline was pushed back after its page was read stayed")
	}
	if gone[unread] || !slices.Contains(list, f.jobs[unread].payload) {
		t.Errorf("the job whose deadline was pushed back before its page was read went")
	}
	if !slices.Contains(list, reJob) {
		t.Errorf("the re-enqueued job went")
	}
	for _, id := range []string{copied, unread, reEnqueued} {
		if v := f.rdb.Get(f.ctx, f.layout.Expiration(id)).Val(); v != later {
			t.Errorf("key of %s holds %q, want the new deadline %q", id, v, later)
		}
	}
	f.noLeftovers()
}

// TestCopyMemoryGuard: with maxmemory leaving less than twice the copy's
// estimate free, the list is removed in place and the run says why; with
// room, it is copied and the memory it used is reported.
func TestCopyMemoryGuard(t *testing.T) {
	t.Parallel()
	for _, tight := range []bool{true, false} {
		t.Run(fmt.Sprintf("tight=%t", tight), func(t *testing.T) {
			t.Parallel()
			f := newCopyFixture(t, "--maxmemory-policy", "noeviction")
			f.seed(6000, copyLayouts["random"])
			m, err := readMemory(context.Background(), f.rdb)
			if err != nil {
				t.Fatal(err)
			}
			room := int64(64 << 20)
			if tight {
				// The copy's estimate is about 800 KB; in place needs
				// some room too (scripts, the requests hash, buffers).
				room = 1200 << 10
			}
			if err := f.rdb.ConfigSet(f.ctx, "maxmemory", fmt.Sprint(m.used+room)).Err(); err != nil {
				t.Fatal(err)
			}
			res, removed, err := f.sweepCopy(f.copyOpts())
			if err != nil {
				m2, _ := readMemory(context.Background(), f.rdb)
				t.Fatalf("%v (used before %d, now %d, max %d)", err, m.used, m2.used, m2.max)
			}
			want := engineCopy
			if tight {
				want = engineInPlace
				if p := problemKinds(res); !strings.Contains(p, "copy-skipped: removed in place: a copy may need") {
					t.Errorf("problems %q, want the memory guard's", p)
				}
			} else if res.Queues[0].CopyMemoryBytes <= 0 {
				t.Errorf("copy memory %d, want > 0", res.Queues[0].CopyMemoryBytes)
			}
			if got := f.engine(res); got != want {
				t.Errorf("engine %q, want %s", got, want)
			}
			if got, w := f.list(f.key()), f.liveOnly(f.initialPayloads()); !slices.Equal(got, w) {
				t.Errorf("list holds %d jobs, want %d", len(got), len(w))
			}
			f.checkKeys(idSetOf(removed))
			f.noLeftovers()
		})
	}
}

// TestCopyLimitAndDryRun: --limit caps the copy's removals (the first
// expired jobs go, the rest stay); a dry run never copies and reports
// exactly what would go.
func TestCopyLimitAndDryRun(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	opts := f.copyOpts()
	opts.DryRun = true
	dry, wouldGo, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if f.engine(dry) != "" || len(f.list(f.key())) != 3000 {
		t.Errorf("dry run: engine %q, list %d", f.engine(dry), len(f.list(f.key())))
	}
	f.noLeftovers()
	opts = f.copyOpts()
	opts.Limit = 700
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "limit" || res.Removed != 700 || len(removed) != 700 || f.engine(res) != engineCopy {
		t.Errorf("stopped %q, removed %d (%d reported), engine %q; want limit, 700, copy", res.Stopped, res.Removed, len(removed), f.engine(res))
	}
	for i, r := range removed {
		if r.ID != wouldGo[i].ID {
			t.Errorf("removal %d is %s; the dry run's %d was %s", i, r.ID, i, wouldGo[i].ID)
			break
		}
	}
	gone := idSetOf(removed)
	var want []string
	for _, p := range f.initialPayloads() {
		if !gone[copyID(p)] {
			want = append(want, p)
		}
	}
	if got := f.list(f.key()); !slices.Equal(got, want) {
		t.Errorf("list holds %d jobs, want %d", len(got), len(want))
	}
	f.checkKeys(gone)
	f.noLeftovers()
}

// TestCopyAbortOnMaxDuration: --max-duration reached during the copy
// aborts it, leaves the list as the head phase left it, and says so.
func TestCopyAbortOnMaxDuration(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	opts := f.copyOpts()
	// Room for the head phase however slow the machine; the copy's third
	// page then outlasts it.
	opts.MaxDuration = 2 * time.Second
	var pages atomic.Int32
	opts.copyHook = func(phase, list string) error {
		if phase == "copy" && pages.Add(1) == 3 {
			time.Sleep(2100 * time.Millisecond)
		}
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "max-duration" || !strings.Contains(problemKinds(res), "copy-aborted: max-duration") {
		t.Errorf("stopped %q, problems %s", res.Stopped, problemKinds(res))
	}
	gone := idSetOf(removed)
	var want []string
	for _, p := range f.initialPayloads() {
		if !gone[copyID(p)] {
			want = append(want, p)
		}
	}
	if got := f.list(f.key()); !slices.Equal(got, want) {
		t.Errorf("list holds %d jobs, want %d", len(got), len(want))
	}
	f.checkKeys(gone)
	f.noLeftovers()
}

// TestCopyNotDueByRedisClock: a host clock ahead of Redis's judges live jobs
// expired; the cutover, checking Redis's clock, refuses to swap, and in
// place every job not due by Redis's clock stays.
func TestCopyNotDueByRedisClock(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	f.now = f.now.Add(90 * time.Minute) // the deadlines of the live jobs are 1h ahead
	res, removed, err := f.sweepCopy(f.copyOpts())
	if err != nil {
		t.Fatal(err)
	}
	if p := problemKinds(res); !strings.Contains(p, "copy-aborted: not-due") {
		t.Errorf("problems %q, want copy-aborted: not-due", p)
	}
	if got, want := f.list(f.key()), f.liveOnly(f.initialPayloads()); !slices.Equal(got, want) {
		t.Errorf("list holds %d jobs, want the %d live ones", len(got), len(want))
	}
	f.checkKeys(idSetOf(removed))
	f.noLeftovers()
}

// TestCopyRefusedWithoutRename: a user who may not RENAME gets the deep
// queue removed in place, and the run says why.
func TestCopyRefusedWithoutRename(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	if err := f.rdb.Do(f.ctx, "ACL", "SETUSER", "norename", "on", ">pw", "~*", "&*", "+@all", "-rename").Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: f.srv.Addr(), Username: "norename", Password: "pw"})
	t.Cleanup(func() { _ = c.Close() })
	f.via = c
	res, removed, err := f.sweepCopy(f.copyOpts())
	if err != nil {
		t.Fatal(err)
	}
	if p := problemKinds(res); !strings.Contains(p, "copy-skipped") || !strings.Contains(p, "RENAME") {
		t.Errorf("problems %q, want a copy-skipped naming RENAME", p)
	}
	if f.engine(res) != engineInPlace {
		t.Errorf("engine %q, want in-place", f.engine(res))
	}
	if got, want := f.list(f.key()), f.liveOnly(f.initialPayloads()); !slices.Equal(got, want) {
		t.Errorf("list holds %d jobs, want %d", len(got), len(want))
	}
	f.checkKeys(idSetOf(removed))
	f.noLeftovers()
}

// TestCopyLongTailRetries: more jobs pushed before the cutover than it
// appends in one step: the client copies them first (unjudged: they stay,
// expired or not) and the swap goes through, exactly.
func TestCopyLongTailRetries(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	var pushed []string
	opts := f.copyOpts()
	opts.copyHook = func(phase, list string) error {
		if phase == "before-cutover" && pushed == nil {
			for i := 0; i < 1000; i++ {
				if err := f.produce(); err != nil {
					return err
				}
			}
			pushed = f.list(f.key())[len(f.list(f.key()))-1000:]
		}
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if f.engine(res) != engineCopy {
		t.Fatalf("engine %q: %s", f.engine(res), problemKinds(res))
	}
	want := append(f.liveOnly(f.initialPayloads()), pushed...)
	if got := f.list(f.key()); !slices.Equal(got, want) {
		t.Errorf("list holds %d jobs, want %d", len(got), len(want))
	}
	f.checkKeys(idSetOf(removed))
	f.noLeftovers()
}
