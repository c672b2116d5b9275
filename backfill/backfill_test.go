package backfill

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/preflight"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/sweep"
)

// bfFixture is the shared Redis fixture with the backfill's scanner and
// run.
type bfFixture struct{ *redistest.Fixture }

func newBFFixture(t *testing.T) *bfFixture {
	t.Helper()
	return &bfFixture{redistest.NewFixture(t)}
}

// push appends payloads to queue and registers it, as Resque does.
func (f *bfFixture) push(queue string, payloads ...string) {
	f.T.Helper()
	f.Seed().Enqueue(queue, redistest.Payloads(payloads...)...)
}

// delay stores payload in bucket ts as resque-scheduler's delayed_push does.
func (f *bfFixture) delay(ts int64, payload string) {
	f.T.Helper()
	f.Seed().Delay(ts, redistest.Job{Payload: payload})
}

func (f *bfFixture) scanner(mod func(*inspect.Config)) *inspect.Scanner {
	f.T.Helper()
	cfg := inspect.Config{Layout: f.Layout, Now: f.Clock}
	if mod != nil {
		mod(&cfg)
	}
	s, err := inspect.NewScanner(f.RDB, cfg)
	if err != nil {
		f.T.Fatal(err)
	}
	return s
}

func (f *bfFixture) backfill(opts Options, mod func(*inspect.Config)) *Result {
	f.T.Helper()
	res, err := Run(f.Ctx, f.scanner(mod), opts)
	if err != nil {
		f.T.Fatalf("backfill: %v", err)
	}
	return res
}

func bfPlain(id, class string) string {
	return fmt.Sprintf(`{"class":%q,"args":[1],"id":%q}`, class, id)
}

func bfActiveJob(id, jobClass, queue, enqueuedAt string) string {
	return fmt.Sprintf(`{"class":%q,"args":[{"job_class":%q,"job_id":%q,"queue_name":%q,"arguments":[],"enqueued_at":%q}]}`,
		resque.ActiveJobWrapper, jobClass, id, queue, enqueuedAt)
}

// TestBackfillFrom covers every --from case: the ActiveJob enqueued_at, a
// top-level enqueued_at (seconds and milliseconds), a top-level created_at,
// and a job with no time of its own, under FromEnqueued and FromNow.
func TestBackfillFrom(t *testing.T) {
	t.Parallel()
	const ttl = 6 * time.Hour
	for _, from := range []From{FromEnqueued, FromNow, ""} {
		t.Run("from="+string(from), func(t *testing.T) {
			t.Parallel()
			f := newBFFixture(t)
			enq := f.Now.Add(-2 * time.Hour)
			jobs := []struct {
				id, payload string
				// own is the job's own enqueue time (zero: none).
				own time.Time
			}{
				{"aj", bfActiveJob("aj", "MyJob", "default", enq.Format("2006-01-02T15:04:05.000000000Z")), enq},
				{"top-s", fmt.Sprintf(`{"class":"X","args":[],"id":"top-s","enqueued_at":%d}`, enq.Add(-time.Hour).Unix()), enq.Add(-time.Hour)},
				{"top-ms", fmt.Sprintf(`{"class":"X","args":[],"id":"top-ms","enqueued_at":%d}`, enq.Add(-3*time.Hour).UnixMilli()), enq.Add(-3 * time.Hour)},
				{"created", fmt.Sprintf(`{"class":"X","args":[],"id":"created","created_at":%q}`, enq.Add(time.Hour).Format(time.RFC3339)), enq.Add(time.Hour)},
				{"bare", bfPlain("bare", "X"), time.Time{}},
			}
			for _, j := range jobs {
				f.push("default", j.payload)
			}
			var seen []DeadlineSample
			res := f.backfill(Options{TTL: ttl, From: from, OnSet: func(s DeadlineSample) { seen = append(seen, s) }}, nil)
			effective := from
			if effective == "" {
				effective = FromEnqueued
			}
			if res.From != effective || res.Scanned != 5 || res.Missing != 5 || res.Set != 5 || res.AlreadySet != 0 || res.Unmatched != 0 {
				t.Fatalf("result %+v", res.Counts)
			}
			wantFromNow := int64(0)
			if effective == FromEnqueued {
				wantFromNow = 1
			}
			if res.FromNow != wantFromNow {
				t.Errorf("from_now = %d, want %d", res.FromNow, wantFromNow)
			}
			if len(seen) != 5 {
				t.Fatalf("OnSet saw %d deadlines", len(seen))
			}
			for i, j := range jobs {
				base, wantFrom := f.Now, FromNow
				if effective == FromEnqueued && !j.own.IsZero() {
					base, wantFrom = j.own, FromEnqueued
				}
				want := base.Add(ttl)
				if got := f.Deadline(j.id); got != resque.FormatDeadline(want) {
					t.Errorf("%s: deadline %s, want %s (%s + %s)", j.id, got, resque.FormatDeadline(want), wantFrom, ttl)
				}
				f.WantKeyExpiresAt(j.id, want.Add(resque.DefaultRetention))
				if s := seen[i]; s.ID != j.id || s.From != wantFrom || !s.Base.Equal(base) || !s.Deadline.Equal(want) {
					t.Errorf("%s: sample %+v", j.id, s)
				}
			}
		})
	}
}

const bfPolicy = `- {queue: "mailers", ttl: "1h"}
- {class: "Reports::*", ttl: "3d"}
- {queue: "low", class: "Cleanup*", ttl: "2h"}
`

// TestBackfillPolicy: rules apply in order, per queue and per class (the
// ActiveJob job_class and the wrapper class), to queued and delayed jobs;
// jobs no rule matches are counted and left without a deadline, unless
// --ttl gives a default.
func TestBackfillPolicy(t *testing.T) {
	t.Parallel()
	pol, err := parsePolicy("policy.yaml", []byte(bfPolicy))
	if err != nil {
		t.Fatal(err)
	}
	setup := func(f *bfFixture) {
		f.push("mailers", bfPlain("m1", "Reports::Mail"), bfPlain("m2", "Mailer"))
		f.push("default", bfPlain("r1", "Reports::Daily"), bfPlain("d1", "Other"),
			bfActiveJob("aj1", "Reports::Weekly", "default", ""))
		f.push("low", bfPlain("l1", "CleanupOld"), bfPlain("l2", "Other"), bfPlain("l3", "Reports::X"))
		// A delayed job is matched by the queue in its payload.
		f.delay(f.Now.Add(time.Hour).Unix(), `{"class":"Mailer","args":[],"queue":"mailers","id":"dm"}`)
		f.delay(f.Now.Add(time.Hour).Unix(), `{"class":"Other","args":[],"queue":"default","id":"dd"}`)
	}
	wantTTL := map[string]time.Duration{
		"m1": time.Hour, "m2": time.Hour, // the queue rule comes first
		"r1": 72 * time.Hour, "aj1": 72 * time.Hour, "l3": 72 * time.Hour,
		"l1": 2 * time.Hour,
		"dm": time.Hour,
		"d1": 0, "l2": 0, "dd": 0,
	}

	t.Run("policy only", func(t *testing.T) {
		t.Parallel()
		f := newBFFixture(t)
		setup(f)
		res := f.backfill(Options{Policy: pol, Delayed: true}, nil)
		for id, ttl := range wantTTL {
			want := ""
			if ttl > 0 {
				want = f.Unix(ttl)
			}
			if got := f.Deadline(id); got != want {
				t.Errorf("%s: deadline %q, want %q", id, got, want)
			}
		}
		if res.Scanned != 10 || res.Missing != 10 || res.Set != 7 || res.Unmatched != 3 || res.AlreadySet != 0 {
			t.Errorf("totals %+v", res.Counts)
		}
		type counts struct{ matched, set int64 }
		gotRules := map[string]counts{}
		for _, r := range res.Rules {
			gotRules[r.Rule] = counts{r.Matched, r.Set}
		}
		wantRules := map[string]counts{"queue=mailers": {3, 3}, "class=Reports::*": {3, 3}, "queue=low class=Cleanup*": {1, 1}}
		if fmt.Sprint(gotRules) != fmt.Sprint(wantRules) || res.Rules[0].Line != 1 || res.Rules[2].Line != 3 || res.Rules[1].TTL != "3d" {
			t.Errorf("rules %+v", res.Rules)
		}
		gotQueues := map[string][2]int64{}
		for _, q := range res.Queues {
			gotQueues[q.Queue] = [2]int64{q.Set, q.Unmatched}
		}
		gotQueues[res.Delayed.Queue] = [2]int64{res.Delayed.Set, res.Delayed.Unmatched}
		wantQueues := map[string][2]int64{"mailers": {2, 0}, "default": {2, 1}, "low": {2, 1}, "(delayed)": {1, 1}}
		if fmt.Sprint(gotQueues) != fmt.Sprint(wantQueues) {
			t.Errorf("queues %v, want %v", gotQueues, wantQueues)
		}
	})

	t.Run("policy and --ttl default", func(t *testing.T) {
		t.Parallel()
		f := newBFFixture(t)
		setup(f)
		res := f.backfill(Options{Policy: pol, TTL: 24 * time.Hour, Delayed: true}, nil)
		for id, ttl := range wantTTL {
			if ttl == 0 {
				ttl = 24 * time.Hour
			}
			if got := f.Deadline(id); got != f.Unix(ttl) {
				t.Errorf("%s: deadline %q, want %q", id, got, f.Unix(ttl))
			}
		}
		last := res.Rules[len(res.Rules)-1]
		if res.Set != 10 || res.Unmatched != 0 || len(res.Rules) != 4 || last.Rule != "--ttl" || last.Set != 3 || last.TTL != "1d" {
			t.Errorf("totals %+v rules %+v", res.Counts, res.Rules)
		}
	})

	t.Run("wrapper class", func(t *testing.T) {
		t.Parallel()
		f := newBFFixture(t)
		setup(f)
		wp, err := parsePolicy("w.yaml", []byte("- {class: \"ActiveJob::*\", ttl: 5h}\n"))
		if err != nil {
			t.Fatal(err)
		}
		res := f.backfill(Options{Policy: wp}, nil)
		if res.Set != 1 || res.Unmatched != 7 || f.Deadline("aj1") != f.Unix(5*time.Hour) {
			t.Errorf("totals %+v, aj1 %q", res.Counts, f.Deadline("aj1"))
		}
	})
}

// TestBackfillLeavesOtherStatesAlone: live, expired, unidentified and
// invalid jobs (including a deadline key of the wrong type) are untouched.
func TestBackfillLeavesOtherStatesAlone(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	f.push("default",
		bfPlain("live", "X"), bfPlain("expired", "X"), `{"class":"X","args":[]}`, `not json`,
		bfPlain("badval", "X"), bfPlain("hashkey", "X"), bfPlain("missing", "X"))
	f.SetDeadline("live", f.Unix(time.Hour), 0)
	f.SetDeadline("expired", f.Unix(-time.Hour), 0)
	f.SetDeadline("badval", "soon", 0)
	f.RDB.HSet(f.Ctx, f.Layout.Expiration("hashkey"), "a", "b")
	before := f.Dump()
	res := f.backfill(Options{TTL: time.Hour}, nil)
	if res.Scanned != 7 || res.Missing != 1 || res.Set != 1 {
		t.Fatalf("totals %+v", res.Counts)
	}
	after := f.Dump()
	delete(after, f.Layout.Expiration("missing"))
	redistest.SameDump(t, "backfill, besides the missing job's deadline,", before, after)
	if f.Deadline("missing") != f.Unix(time.Hour) {
		t.Errorf("missing job: deadline %q", f.Deadline("missing"))
	}
}

// TestBackfillNeverOverwrites: deadlines written by someone else between
// the page's read and the backfill's write win (SET NX), are counted as
// already set, and keep their value and their (absent) TTL.
func TestBackfillNeverOverwrites(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	var ids []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("j%02d", i)
		ids = append(ids, id)
		f.push("default", bfPlain(id, "X"))
	}
	theirs := f.Unix(12345 * time.Second)
	writer := redis.NewClient(&redis.Options{Addr: f.RDB.Options().Addr})
	defer writer.Close()
	opts := Options{TTL: time.Hour}
	opts.beforeWrite = func(ctx context.Context, c *inspect.Chunk) {
		// Every job of the page was judged missing; now an enqueuer sets
		// the deadline of every third one.
		for i, j := range c.Jobs {
			if i%3 == 0 {
				writer.Set(ctx, j.ExpirationKey, theirs, 0)
			}
		}
	}
	res := f.backfill(opts, func(c *inspect.Config) { c.Batch = 8 })
	// Pages of 8: the writer takes jobs 0, 3, 6 of each page, 8 in all.
	if res.Missing != 20 || res.Set != 12 || res.AlreadySet != 8 || res.Rules[0].AlreadySet != 8 || res.Queues[0].AlreadySet != 8 {
		t.Fatalf("totals %+v", res.Counts)
	}
	for i, id := range ids {
		if i%8%3 == 0 {
			if f.Deadline(id) != theirs || f.KeyTTL(id) != -1 {
				t.Errorf("%s: deadline %q ttl %s, want theirs %q without TTL", id, f.Deadline(id), f.KeyTTL(id), theirs)
			}
		} else if f.Deadline(id) != f.Unix(time.Hour) {
			t.Errorf("%s: deadline %q, want ours", id, f.Deadline(id))
		}
	}
}

// TestBackfillConcurrentWriter runs a backfill while another client writes
// deadlines for half of the same jobs: every value the writer wrote
// survives (a job it reached first is live and left alone, one it reached
// between the backfill's read and write is counted as already set, one it
// reached after is overwritten by the writer), and set + already set
// account for every job read as missing.
func TestBackfillConcurrentWriter(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	const n = 3000
	ids := make([]string, n)
	payloads := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%04d", i)
		payloads[i] = bfPlain(ids[i], "X")
	}
	f.push("default", payloads...)
	theirs := f.Unix(54321 * time.Second)
	writer := redis.NewClient(&redis.Options{Addr: f.RDB.Options().Addr})
	defer writer.Close()

	// The writer sets the deadlines of half the jobs, in random order, as
	// fast as it can; each page of the backfill waits a little between its
	// read and its write, so some of the writer's SETs land in between.
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)[:n/2]
	written := make([]bool, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		for _, i := range order {
			if err := writer.Set(f.Ctx, f.Layout.Expiration(ids[i]), theirs, 0).Err(); err != nil {
				t.Error(err)
				return
			}
			written[i] = true
		}
	}()
	opts := Options{TTL: time.Hour}
	opts.beforeWrite = func(context.Context, *inspect.Chunk) {
		select {
		case <-start:
		default:
			close(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res := f.backfill(opts, func(c *inspect.Config) { c.Batch = 100 })
	wg.Wait()
	if res.Scanned != n || res.Set+res.AlreadySet != res.Missing || res.Missing+res.Unmatched > n {
		t.Fatalf("totals %+v", res.Counts)
	}
	ours := f.Unix(time.Hour)
	var mine int64
	for i, id := range ids {
		got := f.Deadline(id)
		switch {
		case written[i] && got != theirs:
			t.Fatalf("%s: the writer's deadline was replaced by %q", id, got)
		case !written[i] && got != ours:
			t.Fatalf("%s: deadline %q, want ours", id, got)
		case got == ours:
			mine++
		}
	}
	// Each key we own now is one we set; the writer may have replaced
	// more of ours (it does not use NX), never the other way around.
	if mine > res.Set {
		t.Errorf("%d keys hold our deadline but only %d were set", mine, res.Set)
	}
	t.Logf("set %d, already set %d, missing %d", res.Set, res.AlreadySet, res.Missing)
}

// TestBackfillKeyTTL: every key written expires at deadline + retention;
// a job whose deadline + retention is already past still gets its past
// deadline, kept for the retention from now, so the next sweep removes it.
func TestBackfillKeyTTL(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	const retention = 2 * time.Hour
	fresh := f.Now.Add(-time.Hour)
	old := f.Now.Add(-10 * time.Hour)
	f.push("default",
		fmt.Sprintf(`{"class":"X","args":[],"id":"fresh","enqueued_at":%d}`, fresh.Unix()),
		fmt.Sprintf(`{"class":"X","args":[],"id":"old","enqueued_at":%d}`, old.Unix()),
		fmt.Sprintf(`{"class":"X","args":[],"id":"edge","enqueued_at":%d}`, f.Now.Add(-7*time.Hour).Unix()))
	res := f.backfill(Options{TTL: 6 * time.Hour, Retention: retention}, nil)
	if res.Set != 3 || res.RetentionSeconds != retention.Seconds() {
		t.Fatalf("totals %+v", res.Counts)
	}
	// fresh: deadline in 5h, key expires 2h after.
	if f.Deadline("fresh") != f.Unix(5*time.Hour) {
		t.Errorf("fresh: deadline %s", f.Deadline("fresh"))
	}
	f.WantKeyExpiresAt("fresh", f.Now.Add(7*time.Hour))
	// edge: deadline 1h ago; deadline + retention (1h ahead) is sooner
	// than the floor of retention from now.
	if f.Deadline("edge") != f.Unix(-time.Hour) {
		t.Errorf("edge: deadline %s", f.Deadline("edge"))
	}
	f.WantKeyExpiresAt("edge", f.Now.Add(retention))
	// old: deadline 4h ago, kept for the retention from now.
	if f.Deadline("old") != f.Unix(-4*time.Hour) {
		t.Errorf("old: deadline %s", f.Deadline("old"))
	}
	f.WantKeyExpiresAt("old", f.Now.Add(retention))

	// The next sweep sees the jobs whose deadline passed as expired and
	// removes exactly them.
	sres, err := sweep.New(f.scanner(nil)).Run(f.Ctx, sweep.Options{Now: f.Clock})
	if err != nil {
		t.Fatal(err)
	}
	if sres.Removed != 2 || f.Deadline("old") != "" || f.Deadline("edge") != "" {
		t.Errorf("sweep removed %d, old deadline %q", sres.Removed, f.Deadline("old"))
	}
	if left := f.RDB.LRange(f.Ctx, f.Layout.Queue("default"), 0, -1).Val(); len(left) != 1 || left[0] != fmt.Sprintf(`{"class":"X","args":[],"id":"fresh","enqueued_at":%d}`, fresh.Unix()) {
		t.Errorf("jobs left %q, want only fresh", left)
	}
}

// TestBackfillFixKeyTTL: --fix-key-ttl gives existing deadline keys with no
// TTL one (deadline + retention, at least retention from now), keeps a TTL
// someone set, skips a key rewritten since the read, and in a dry run only
// counts.
func TestBackfillFixKeyTTL(t *testing.T) {
	t.Parallel()
	const retention = 3 * time.Hour
	setup := func(f *bfFixture) {
		f.push("default", bfPlain("live", "X"), bfPlain("keeps", "X"), bfPlain("expired", "X"),
			bfPlain("ancient", "X"), bfPlain("changed", "X"), bfPlain("missing", "X"))
		f.SetDeadline("live", f.Unix(time.Hour), 0)
		f.SetDeadline("keeps", f.Unix(time.Hour), 100*time.Second)
		f.SetDeadline("expired", f.Unix(-time.Hour), 0)
		f.SetDeadline("ancient", f.Unix(-30*time.Hour), 0)
		f.SetDeadline("changed", f.Unix(2*time.Hour), 0)
	}

	t.Run("without the flag", func(t *testing.T) {
		t.Parallel()
		f := newBFFixture(t)
		setup(f)
		res := f.backfill(Options{TTL: time.Hour, Retention: retention}, nil)
		if res.Set != 1 || res.TTLFixed != 0 {
			t.Fatalf("totals %+v", res.Counts)
		}
		for _, id := range []string{"live", "expired", "ancient", "changed"} {
			if f.KeyTTL(id) != -1 {
				t.Errorf("%s got a TTL %s without --fix-key-ttl", id, f.KeyTTL(id))
			}
		}
	})

	t.Run("dry run", func(t *testing.T) {
		t.Parallel()
		f := newBFFixture(t)
		setup(f)
		before := f.Dump()
		res := f.backfill(Options{TTL: time.Hour, Retention: retention, FixKeyTTL: true, DryRun: true}, nil)
		if res.Set != 1 || res.TTLFixed != 4 || !res.DryRun || !res.FixKeyTTL {
			t.Fatalf("totals %+v", res.Counts)
		}
		redistest.SameDump(t, "a dry run with --fix-key-ttl", before, f.Dump())
	})

	t.Run("fix", func(t *testing.T) {
		t.Parallel()
		f := newBFFixture(t)
		setup(f)
		rewritten := f.Unix(9 * time.Hour)
		opts := Options{TTL: time.Hour, Retention: retention, FixKeyTTL: true}
		opts.beforeWrite = func(ctx context.Context, _ *inspect.Chunk) {
			f.RDB.Set(ctx, f.Layout.Expiration("changed"), rewritten, 0)
		}
		res := f.backfill(opts, nil)
		if res.Set != 1 || res.TTLFixed != 3 || res.Queues[0].TTLFixed != 3 {
			t.Fatalf("totals %+v", res.Counts)
		}
		f.WantKeyExpiresAt("live", f.Now.Add(time.Hour+retention))
		// Past deadlines: kept for the retention from now.
		f.WantKeyExpiresAt("expired", f.Now.Add(retention))
		f.WantKeyExpiresAt("ancient", f.Now.Add(retention))
		f.WantKeyExpiresAt("missing", f.Now.Add(time.Hour+retention))
		if ttl := f.KeyTTL("keeps"); ttl <= 0 || ttl > 100*time.Second {
			t.Errorf("keeps: TTL %s, want the 100s someone set", ttl)
		}
		if f.Deadline("changed") != rewritten || f.KeyTTL("changed") != -1 {
			t.Errorf("changed: %q ttl %s; a key rewritten after the read must be left alone", f.Deadline("changed"), f.KeyTTL("changed"))
		}
		for _, id := range []string{"live", "keeps", "expired", "ancient"} {
			if f.Deadline(id) == "" {
				t.Errorf("%s: deadline gone", id)
			}
		}
		// A second run finds nothing left to do.
		again := f.backfill(Options{TTL: time.Hour, Retention: retention, FixKeyTTL: true}, nil)
		if again.Set != 0 || again.TTLFixed != 1 { // only "changed" is left without TTL
			t.Errorf("second run %+v", again.Counts)
		}
	})
}

// TestBackfillDryRun: a dry run writes nothing, reports per queue and per
// rule what it would set, with the first three deadlines of each rule, and
// its counts match the real run that follows.
func TestBackfillDryRun(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	pol, err := parsePolicy("p.yaml", []byte("- {queue: mailers, ttl: 1h}\n- {ttl: 1d}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		f.push("mailers", bfPlain(fmt.Sprintf("m%d", i), "M"))
		f.push("default", bfPlain(fmt.Sprintf("d%d", i), "D"))
	}
	f.push("default", bfPlain("live", "D"))
	f.SetDeadline("live", f.Unix(time.Minute), 0)
	before := f.Dump()
	dry := f.backfill(Options{Policy: pol, DryRun: true}, nil)
	redistest.SameDump(t, "a dry run", before, f.Dump())
	if !dry.DryRun || dry.Scanned != 11 || dry.Missing != 10 || dry.Set != 10 {
		t.Fatalf("dry totals %+v", dry.Counts)
	}
	if len(dry.Rules) != 2 || dry.Rules[0].Set != 5 || dry.Rules[1].Set != 5 {
		t.Fatalf("rules %+v", dry.Rules)
	}
	for r, ttl := range []time.Duration{time.Hour, 24 * time.Hour} {
		s := dry.Rules[r].Sample
		if len(s) != 3 {
			t.Fatalf("rule %d: %d samples, want 3", r, len(s))
		}
		for i, smp := range s {
			wantID := fmt.Sprintf("%c%d", "md"[r], i)
			if smp.ID != wantID || !smp.Deadline.Equal(f.Now.Add(ttl)) || !smp.KeyExpiresAt.Equal(f.Now.Add(ttl+resque.DefaultRetention)) ||
				smp.From != FromNow || !smp.DryRun || smp.Rule != dry.Rules[r].Rule {
				t.Errorf("rule %d sample %d: %+v", r, i, smp)
			}
		}
	}
	wet := f.backfill(Options{Policy: pol}, nil)
	if wet.Counts != dry.Counts {
		t.Errorf("real run %+v, dry run %+v", wet.Counts, dry.Counts)
	}
	if len(wet.Rules[0].Sample) != 3 || wet.Rules[0].Sample[0].DryRun {
		t.Errorf("real run samples %+v", wet.Rules[0].Sample)
	}
}

// TestBackfillLimit: --limit counts keys set (not keys found already set),
// across pages; the run says it stopped only when work was left.
func TestBackfillLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		limit       int64
		dry         bool
		stolen      bool // someone sets j00's deadline before the write
		wantSet     int64
		wantStopped string
	}{
		{name: "stops", limit: 5, wantSet: 5, wantStopped: "limit"},
		{name: "dry run", limit: 5, dry: true, wantSet: 5, wantStopped: "limit"},
		{name: "already set not counted", limit: 5, stolen: true, wantSet: 5, wantStopped: "limit"},
		{name: "exactly enough", limit: 12, wantSet: 12},
		{name: "more than enough", limit: 100, wantSet: 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newBFFixture(t)
			for i := 0; i < 12; i++ {
				f.push("default", bfPlain(fmt.Sprintf("j%02d", i), "X"))
			}
			opts := Options{TTL: time.Hour, Limit: tc.limit, DryRun: tc.dry}
			if tc.stolen {
				opts.beforeWrite = func(ctx context.Context, _ *inspect.Chunk) {
					f.RDB.SetNX(ctx, f.Layout.Expiration("j00"), "1", 0)
				}
			}
			res := f.backfill(opts, func(c *inspect.Config) { c.Batch = 4 })
			if res.Set != tc.wantSet || res.Stopped != tc.wantStopped {
				t.Fatalf("set %d stopped %q; want %d %q", res.Set, res.Stopped, tc.wantSet, tc.wantStopped)
			}
			var have int64
			for i := 0; i < 12; i++ {
				if d := f.Deadline(fmt.Sprintf("j%02d", i)); d != "" && d != "1" {
					have++
				}
			}
			want := tc.wantSet
			if tc.dry {
				want = 0
			}
			if have != want {
				t.Errorf("%d deadlines written, want %d", have, want)
			}
			if tc.stolen && (res.AlreadySet != 1 || f.Deadline("j05") == "") {
				t.Errorf("already set %d; j05 %q", res.AlreadySet, f.Deadline("j05"))
			}
		})
	}
}

// TestBackfillFilters: --queue and --class select jobs (the others are
// counted as skipped or not read), --no-delayed leaves delayed jobs alone.
func TestBackfillFilters(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	f.push("mailers", bfPlain("m1", "Mail"), bfPlain("m2", "Reports::A"))
	f.push("default", bfPlain("d1", "Reports::B"), bfActiveJob("aj", "Reports::C", "default", ""))
	f.delay(f.Now.Add(time.Hour).Unix(), `{"class":"Reports::D","args":[],"queue":"default","id":"dl"}`)

	res := f.backfill(Options{TTL: time.Hour, Delayed: false}, func(c *inspect.Config) {
		c.Queues, c.Classes = []string{"default", "mail*"}, []string{"Reports::*"}
	})
	if res.Scanned != 4 || res.Skipped != 1 || res.Set != 3 || res.Delayed != nil {
		t.Fatalf("totals %+v delayed %v", res.Counts, res.Delayed)
	}
	for id, want := range map[string]bool{"m1": false, "m2": true, "d1": true, "aj": true, "dl": false} {
		if got := f.Deadline(id) != ""; got != want {
			t.Errorf("%s: has deadline %v, want %v", id, got, want)
		}
	}
	// --queue selects delayed jobs by the queue in their payload.
	res = f.backfill(Options{TTL: time.Hour, Delayed: true}, func(c *inspect.Config) { c.Queues = []string{"none"} })
	if res.Delayed == nil || res.Delayed.Set != 0 || res.Delayed.Skipped != 1 || f.Deadline("dl") != "" || len(res.Queues) != 0 {
		t.Errorf("queue none: delayed %+v", res.Delayed)
	}
	res = f.backfill(Options{TTL: time.Hour, Delayed: true}, func(c *inspect.Config) { c.Queues = []string{"default"} })
	if res.Delayed == nil || res.Delayed.Set != 1 || f.Deadline("dl") == "" {
		t.Errorf("queue default: delayed %+v", res.Delayed)
	}
}

// TestBackfillOptionErrors: no TTL at all, or a bad From, fail before any
// read.
func TestBackfillOptionErrors(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	f.push("default", bfPlain("a", "X"))
	if _, err := Run(f.Ctx, f.scanner(nil), Options{}); !errors.Is(err, ErrNoTTL) {
		t.Errorf("no ttl: %v", err)
	}
	if _, err := Run(f.Ctx, f.scanner(nil), Options{TTL: time.Hour, From: "later"}); err == nil {
		t.Error("bad from: no error")
	}
	if f.Deadline("a") != "" {
		t.Error("a failed backfill wrote a deadline")
	}
	for _, s := range []string{"enqueued", "NOW", " now "} {
		if _, err := ParseFrom(s); err != nil {
			t.Errorf("ParseFrom(%q): %v", s, err)
		}
	}
}

type bfCancelAt struct {
	page   int
	at     int
	cancel func()
}

func (p *bfCancelAt) SetTotal(int64) {}
func (p *bfCancelAt) Add(int) {
	if p.page++; p.page == p.at {
		p.cancel()
	}
}

// TestBackfillInterrupted: a cancelled context stops the run between pages;
// the page being read is finished.
func TestBackfillInterrupted(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	for i := 0; i < 50; i++ {
		f.push("default", bfPlain(fmt.Sprintf("j%02d", i), "X"))
	}
	ctx, cancel := context.WithCancel(f.Ctx)
	defer cancel()
	res, err := Run(ctx, f.scanner(func(c *inspect.Config) { c.Batch = 10 }),
		Options{TTL: time.Hour, Progress: &bfCancelAt{at: 2, cancel: cancel}})
	if !errors.Is(err, context.Canceled) || res.Stopped != "interrupted" || res.Set != 20 {
		t.Fatalf("err %v stopped %q set %d", err, res.Stopped, res.Set)
	}
}

// TestRunRefusesWithoutPermission: a backfill whose user may not SET fails
// naming it before it writes anything.
func TestRunRefusesWithoutPermission(t *testing.T) {
	t.Parallel()
	f := newBFFixture(t)
	for i := 0; i < 5; i++ {
		f.push("default", bfPlain(fmt.Sprintf("nd%d", i), "X"))
	}
	if err := f.RDB.Do(f.Ctx, "ACL", "SETUSER", "t", "on", ">pw", "~*", "+@all", "-set").Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: f.RDB.Options().Addr, Username: "t", Password: "pw"})
	defer c.Close()
	s, err := inspect.NewScanner(c, inspect.Config{Layout: f.Layout, Now: f.Clock})
	if err != nil {
		t.Fatal(err)
	}
	before := f.Dump()
	_, err = Run(f.Ctx, s, Options{TTL: time.Hour})
	var pe *preflight.PermissionError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "SET on") {
		t.Fatalf("backfill without SET: %v, want a permission error naming it", err)
	}
	redistest.SameDump(t, "a backfill without SET", before, f.Dump())
}
