package sweep

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/once"
)

// TestHeadTrimScript runs head_trim.lua on its own: it trims a run of
// expired jobs at the head when the head is where the run must start, says
// which were popped meanwhile, and otherwise removes nothing and answers
// empty (the caller falls back), whatever moved.
func TestHeadTrimScript(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		run     []string // ids of the run, in list order
		after   func(f *sweepFixture, q string, payloads map[string]string)
		popped  int64 // the answer's first number; -1: fall back
		left    int64 // jobs left in the queue (of 5 seeded plus pushes)
		digests int   // of the run's first jobs only (0: all of them)
	}{
		{"clean", []string{"a", "b", "c"}, nil, 0, 2, 0},
		{"a worker popped one", []string{"a", "b", "c"}, func(f *sweepFixture, q string, _ map[string]string) {
			f.rdb.LPop(f.ctx, q)
		}, 1, 2, 0},
		{"a push to the head", []string{"a", "b", "c"}, func(f *sweepFixture, q string, _ map[string]string) {
			f.rdb.LPush(f.ctx, q, f.job("new", "X"))
		}, -1, 6, 0},
		{"a job dequeued from the run's middle", []string{"a", "b", "c"}, func(f *sweepFixture, q string, p map[string]string) {
			f.rdb.LRem(f.ctx, q, 1, p["b"])
		}, -1, 4, 0},
		{"a deadline pushed back", []string{"a", "b", "c"}, func(f *sweepFixture, _ string, _ map[string]string) {
			f.rdb.Set(f.ctx, f.layout.Expiration("b"), f.at(time.Hour), 0)
		}, -1, 5, 0},
		{"the last deadline pushed back, the first job popped", []string{"a", "b", "c"}, func(f *sweepFixture, q string, _ map[string]string) {
			f.rdb.LPop(f.ctx, q)
			f.rdb.Set(f.ctx, f.layout.Expiration("c"), f.at(time.Hour), 0)
		}, -1, 4, 0},
		{"a deadline key deleted", []string{"a", "b", "c"}, func(f *sweepFixture, _ string, _ map[string]string) {
			f.rdb.Del(f.ctx, f.layout.Expiration("b"))
		}, -1, 5, 0},
		{"a worker popped within the digests", []string{"a", "b", "c"}, func(f *sweepFixture, q string, _ map[string]string) {
			f.rdb.LPop(f.ctx, q)
		}, 1, 2, 2},
		{"a worker popped past the digests", []string{"a", "b", "c"}, func(f *sweepFixture, q string, _ map[string]string) {
			f.rdb.LPop(f.ctx, q)
		}, -1, 4, 1},
		{"two deadlines joined in one key, the first job popped", []string{"a", "b", "c"}, func(f *sweepFixture, q string, _ map[string]string) {
			// Longer than the judged values' end it should match.
			f.rdb.LPop(f.ctx, q)
			f.rdb.Set(f.ctx, f.layout.Expiration("b"), f.at(-time.Hour)+"\n"+f.at(-time.Hour), 0)
		}, -1, 4, 0},
		{"two deadlines joined in the last key, two jobs popped", []string{"a", "b", "c"}, func(f *sweepFixture, q string, _ map[string]string) {
			// Exactly the judged values' last two, after a "\n": only
			// the refusal of a value holding the separator keeps c.
			f.rdb.LPop(f.ctx, q)
			f.rdb.LPop(f.ctx, q)
			f.rdb.Set(f.ctx, f.layout.Expiration("c"), f.at(-time.Hour)+"\n"+f.at(-time.Hour), 0)
		}, -1, 3, 0},
		{"the run's last job taken", []string{"a", "b", "c"}, func(f *sweepFixture, q string, p map[string]string) {
			f.rdb.LRem(f.ctx, q, 1, p["c"])
		}, -1, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newSweepFixture(t)
			q := f.layout.Queue("default")
			payloads := map[string]string{}
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				payloads[id] = f.job(id, "X")
				deadline := f.at(-time.Hour)
				if id >= "d" {
					deadline = f.at(time.Hour)
				}
				f.push("default", payloads[id], id, deadline)
			}
			if err := LoadScripts(f.ctx, f.rdb); err != nil {
				t.Fatal(err)
			}
			keys := []string{q, f.layout.Failed(), f.layout.Journal(), f.layout.Stats()}
			var digests string
			var judged []string
			for i, id := range tc.run {
				keys = append(keys, f.layout.Expiration(id))
				if tc.digests == 0 || i < tc.digests {
					digests += sha1hex(payloads[id])
				}
				judged = append(judged, f.at(-time.Hour))
			}
			args := []any{"0", "0", payloads[tc.run[len(tc.run)-1]], "deleted:default", digests, strings.Join(judged, "\n"), f.now.Add(-time.Hour).UnixMilli()}
			if tc.after != nil {
				tc.after(f, q, payloads)
			}
			before := f.dump()
			reply, err := once.NewRequests(f.layout.Requests(once.NewRunID())).Run(f.ctx, f.rdb, headTrimScript, keys, args...).Int64Slice()
			if err != nil {
				t.Fatal(err)
			}
			if tc.popped < 0 {
				if len(reply) != 0 {
					t.Fatalf("answer %v, want a fall back", reply)
				}
				if !reflect.DeepEqual(withoutPrefix(before, "resque:resque-expire:requests:"), withoutPrefix(f.dump(), "resque:resque-expire:requests:")) {
					t.Fatal("a fall back changed the database")
				}
			} else if len(reply) != 2 || reply[0] != tc.popped || reply[1] < 0 {
				t.Fatalf("answer %v, want [%d, its time]", reply, tc.popped)
			}
			if n := f.rdb.LLen(f.ctx, q).Val(); n != tc.left {
				t.Errorf("%d jobs left, want %d", n, tc.left)
			}
		})
	}
}

// withoutPrefix drops the keys with prefix from a dump.
func withoutPrefix(d map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range d {
		if !strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// TestHeadTrimLayout: a queue whose oldest jobs are expired goes by
// head_trim.lua (LPOS), exactly, archive and failure entries included.
func TestHeadTrimLayout(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	var want []string
	for i := 0; i < 2500; i++ {
		id := fmt.Sprintf("h%04d", i)
		deadline := f.at(time.Hour)
		if i < 1200 {
			deadline = f.at(-time.Hour)
			want = append(want, id)
		}
		f.push("default", f.job(id, "X"), id, deadline)
	}
	arch := f.archiveFile()
	res, removed := f.mustSweep(Options{ToFailed: true, Archive: arch}, nil)
	if res.Removed != 1200 || !equalStrings(removedIDs(removed), want) {
		t.Errorf("removed %d, want the 1200 oldest", res.Removed)
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Failed()).Val(); n != 1200 {
		t.Errorf("%d failure entries, want 1200", n)
	}
	if n := len(f.archiveLines(arch.Path())); n != 1200 {
		t.Errorf("%d archive records, want 1200", n)
	}
	if left := f.list(f.layout.Queue("default")); len(left) != 1300 || left[0] != f.job("h1200", "X") {
		t.Errorf("%d left, first %q", len(left), left[0])
	}
	if commandCalls(t, f.rdb, "lpos") == 0 {
		t.Error("the run at the head did not go by head_trim.lua")
	}
	counted := 0
	for _, v := range f.rdb.HGetAll(f.ctx, f.layout.Stats()).Val() {
		n, _ := strconv.Atoi(v)
		counted += n
	}
	if counted != 1200 {
		t.Errorf("the removal counter says %d, want 1200", counted)
	}
	for _, id := range want[:3] {
		if f.exists(f.layout.Expiration(id)) {
			t.Errorf("deadline key of removed %s left", id)
		}
	}
}

// TestHeadTrimRunsSizedByTime: with a script time budget no head trim can
// meet, the runs shrink to the smallest batch, and a page's run at the
// head still goes by head_trim.lua (several, one after the other, no
// remove_expired.lua), exactly, archive and failure entries included.
func TestHeadTrimRunsSizedByTime(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	var want []string
	for i := 0; i < 2300; i++ {
		id := fmt.Sprintf("s%04d", i)
		deadline := f.at(time.Hour)
		if i < 2000 {
			deadline = f.at(-time.Hour)
			want = append(want, id)
		}
		f.push("default", f.job(id, "X"), id, deadline)
	}
	arch := f.archiveFile()
	res, removed := f.mustSweep(Options{ToFailed: true, Archive: arch, MaxScriptTime: time.Nanosecond}, nil)
	if res.Removed != 2000 || !equalStrings(removedIDs(removed), want) {
		t.Errorf("removed %d, want the 2000 oldest", res.Removed)
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Failed()).Val(); n != 2000 {
		t.Errorf("%d failure entries, want 2000", n)
	}
	if n := len(f.archiveLines(arch.Path())); n != 2000 {
		t.Errorf("%d archive records, want 2000", n)
	}
	if left := f.list(f.layout.Queue("default")); len(left) != 300 || left[0] != f.job("s2000", "X") {
		t.Errorf("%d left, first %q", len(left), left[0])
	}
	// The first page's victims in one run, the second page's in runs of
	// 32 (and the archive journal's trims besides).
	if n := commandCalls(t, f.rdb, "ltrim"); n < 20 {
		t.Errorf("%d head trims, want several", n)
	}
	if n := commandCalls(t, f.rdb, "lrem"); n != 0 {
		t.Errorf("%d LREMs: part of the run went by remove_expired.lua", n)
	}
}
