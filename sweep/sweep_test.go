package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/sample"
)

// sweepFixture is a throwaway Redis with a Resque layout and a fixed clock,
// shared by the tests of this package. Helpers are methods so that their
// names cannot clash with other test files of the package.
type sweepFixture struct {
	t      *testing.T
	ctx    context.Context
	srv    *redisserver.Server
	rdb    *redis.Client
	layout resque.Layout
	// now is the clock handed to the scanner and the sweep (whole seconds,
	// close to the wall clock so that absolute TTLs make sense).
	now time.Time
	// via, when set, is the client sweeps run through (a proxy, a user
	// with fewer rights); rdb still sees the database as it is.
	via redis.UniversalClient
}

func newSweepFixture(t *testing.T, serverArgs ...string) *sweepFixture {
	t.Helper()
	srv := redistest.Start(t, serverArgs...)
	return &sweepFixture{t: t, ctx: context.Background(), srv: srv, rdb: redistest.Client(t, srv),
		layout: resque.MustLayout("resque", ""), now: time.Now().Truncate(time.Second).UTC()}
}

func (f *sweepFixture) clock() time.Time { return f.now }

// at is a deadline value d away from the fixture's now, in Unix seconds.
func (f *sweepFixture) at(d time.Duration) string { return resque.FormatDeadline(f.now.Add(d)) }

// job is a plain Resque payload with a top-level id.
func (f *sweepFixture) job(id, class string) string {
	return fmt.Sprintf(`{"class":%q,"args":[1,"x"],"id":%q}`, class, id)
}

// push appends payload to queue (registering it in <ns>:queues) and sets
// the deadline of id unless id or deadline is "".
func (f *sweepFixture) push(queue, payload, id, deadline string) {
	f.t.Helper()
	redistest.Seed(f.t, f.rdb, f.layout).Enqueue(queue, redistest.Job{Payload: payload, ID: id, Deadline: deadline})
}

// delay stores payload in bucket ts the way resque-scheduler's delayed_push
// does, and sets the deadline of id unless id or deadline is "".
func (f *sweepFixture) delay(ts int64, payload, id, deadline string) {
	f.t.Helper()
	redistest.Seed(f.t, f.rdb, f.layout).Delay(ts, redistest.Job{Payload: payload, ID: id, Deadline: deadline})
}

// scanner builds a scanner on the fixture's clock; mod may adjust the config.
func (f *sweepFixture) scanner(mod func(*inspect.Config)) *inspect.Scanner {
	f.t.Helper()
	cfg := inspect.Config{Layout: f.layout, Now: f.clock}
	if mod != nil {
		mod(&cfg)
	}
	rdb := redis.UniversalClient(f.rdb)
	if f.via != nil {
		rdb = f.via
	}
	s, err := inspect.NewScanner(rdb, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// sweep runs one sweep on the fixture's clock and returns what OnRemoved saw.
func (f *sweepFixture) sweep(opts Options, mod func(*inspect.Config)) (*Result, []Removal, error) {
	f.t.Helper()
	var removed []Removal
	if opts.Now == nil {
		opts.Now = f.clock
	}
	prev := opts.OnRemoved
	opts.OnRemoved = func(r Removal) {
		removed = append(removed, r)
		if prev != nil {
			prev(r)
		}
	}
	res, err := New(f.scanner(mod)).Run(f.ctx, opts)
	return res, removed, err
}

// mustSweep is sweep failing the test on an error.
func (f *sweepFixture) mustSweep(opts Options, mod func(*inspect.Config)) (*Result, []Removal) {
	f.t.Helper()
	res, removed, err := f.sweep(opts, mod)
	if err != nil {
		f.t.Fatalf("sweep: %v", err)
	}
	return res, removed
}

func (f *sweepFixture) list(key string) []string {
	f.t.Helper()
	v, err := f.rdb.LRange(f.ctx, key, 0, -1).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *sweepFixture) exists(key string) bool {
	f.t.Helper()
	n, err := f.rdb.Exists(f.ctx, key).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return n == 1
}

// dump returns every key with its type and whole content, for comparing
// the database before and after.
func (f *sweepFixture) dump() map[string]string {
	f.t.Helper()
	return redistest.Dump(f.t, f.rdb, nil)
}

// diffDumps describes the keys that differ between two dumps ("" when equal).
func diffDumps(before, after map[string]string) string {
	return redistest.DiffDumps(before, after)
}

// removalKeys names removals as "list|payload", sorted.
func removalKeys(rs []Removal) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.List+"|"+r.Payload)
	}
	sort.Strings(out)
	return out
}

func removedIDs(rs []Removal) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.ID)
	}
	sort.Strings(out)
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// without returns list minus the given payloads (each removed once), in order.
func without(list []string, gone ...string) []string {
	drop := map[string]int{}
	for _, g := range gone {
		drop[g]++
	}
	var out []string
	for _, v := range list {
		if drop[v] > 0 {
			drop[v]--
			continue
		}
		out = append(out, v)
	}
	return out
}

// TestSweepRemovesExactlyTheExpiredJobs seeds a queue and the delayed
// schedule with one job of every kind and checks that a sweep removes the
// expired ones with their deadline keys and changes nothing else at all.
func TestSweepRemovesExactlyTheExpiredJobs(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	q := f.layout.Queue("default")

	type seeded struct {
		id, payload, deadline string
		expired               bool
	}
	jobs := []seeded{
		{id: "exp-secs", deadline: f.at(-time.Hour), expired: true},
		{id: "exp-now", deadline: f.at(0), expired: true}, // "at or before now"
		{id: "exp-millis", deadline: strconv.FormatInt(f.now.Add(-time.Minute).UnixMilli(), 10), expired: true},
		{id: "exp-decimal", deadline: strconv.FormatInt(f.now.Unix()-30, 10) + ".25", expired: true},
		{id: "exp-rfc3339", deadline: f.now.Add(-2 * time.Hour).Format(time.RFC3339), expired: true},
		{id: "live", deadline: f.at(time.Second)},
		{id: "live-millis", deadline: strconv.FormatInt(f.now.Add(time.Hour).UnixMilli(), 10)},
		{id: "missing"},
		{id: "bad-deadline", deadline: "tomorrow"},
		{id: "zero-deadline", deadline: "0"},
		{id: "negative-deadline", deadline: "-5"},
		{id: "nan-deadline", deadline: "NaN"},
		{id: "exponent-deadline", deadline: "1e9"},
		{id: "empty-deadline", deadline: " "},
		{id: "far-future-deadline", deadline: "253402300800"}, // year 10000
	}
	var all []string
	var want []string
	for i := range jobs {
		j := &jobs[i]
		j.payload = f.job(j.id, "SendEmailJob")
		f.push("default", j.payload, j.id, j.deadline)
		all = append(all, j.payload)
		if j.expired {
			want = append(want, q+"|"+j.payload)
		}
	}
	// Jobs that cannot be judged at all.
	odd := []string{
		`{"class":"SendEmailJob","args":[`,           // bad JSON
		`["SendEmailJob",{"id":"not-an-object"}]`,    // not an object
		`"just a string"`,                            // not an object either
		`{"class":"SendEmailJob","args":[1]}`,        // no id: unidentified
		f.job("wrong-type", "SendEmailJob"),          // its expiration key is a hash
		`{"class":"SendEmailJob","args":[],"id":""}`, // empty id: unidentified
	}
	for _, p := range odd {
		f.push("default", p, "", "")
		all = append(all, p)
	}
	if err := f.rdb.HSet(f.ctx, f.layout.Expiration("wrong-type"), "at", f.at(-time.Hour)).Err(); err != nil {
		t.Fatal(err)
	}
	// An unidentified job whose would-be key exists must not be touched either.
	if err := f.rdb.Set(f.ctx, f.layout.Expiration(""), f.at(-time.Hour), 0).Err(); err != nil {
		t.Fatal(err)
	}

	// Delayed: bucket 1 keeps a live job, bucket 2 is emptied.
	b1, b2 := f.now.Unix()+60, f.now.Unix()+120
	d1 := f.job("d-exp-1", "Reports::Daily")
	d2 := f.job("d-live", "Reports::Daily")
	d3 := f.job("d-exp-3", "Reports::Daily")
	d4 := f.job("d-exp-4", "Reports::Daily")
	f.delay(b1, d1, "d-exp-1", f.at(-time.Minute))
	f.delay(b1, d2, "d-live", f.at(time.Hour))
	f.delay(b2, d3, "d-exp-3", f.at(-time.Minute))
	f.delay(b2, d4, "d-exp-4", f.at(-time.Second))
	want = append(want, f.layout.Delayed(b1)+"|"+d1, f.layout.Delayed(b2)+"|"+d3, f.layout.Delayed(b2)+"|"+d4)
	sort.Strings(want)

	before := f.dump()
	res, removed := f.mustSweep(Options{Delayed: true}, nil)

	if got := removalKeys(removed); !equalStrings(got, want) {
		t.Fatalf("removed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Removed != int64(len(want)) || res.Expired != int64(len(want)) || res.Stopped != "" {
		t.Errorf("result removed=%d expired=%d stopped=%q, want %d, %d, complete", res.Removed, res.Expired, res.Stopped, len(want), len(want))
	}
	if res.Scanned != int64(len(all)+4) {
		t.Errorf("scanned %d, want %d", res.Scanned, len(all)+4)
	}
	if len(res.Queues) != 1 || res.Queues[0].Removed != 5 || res.Delayed == nil || res.Delayed.Removed != 3 {
		t.Errorf("per-list results: %+v delayed %+v", res.Queues, res.Delayed)
	}

	// Expected database: before, minus the removed jobs and their keys.
	expect := map[string]string{}
	for k, v := range before {
		expect[k] = v
	}
	var gone []string
	for _, j := range jobs {
		if j.expired {
			delete(expect, f.layout.Expiration(j.id))
			gone = append(gone, j.payload)
		}
	}
	for _, id := range []string{"d-exp-1", "d-exp-3", "d-exp-4"} {
		delete(expect, f.layout.Expiration(id))
	}
	for _, p := range []string{d1, d3, d4} {
		delete(expect, f.layout.Timestamps(p))
	}
	delete(expect, f.layout.Delayed(b2))
	after := f.dump()
	// Lists and the zset are checked precisely below; compare the rest.
	for _, k := range []string{q, f.layout.Delayed(b1), f.layout.DelayedSchedule()} {
		delete(expect, k)
		delete(after, k)
	}
	f.takeStats(after, res)
	if d := diffDumps(expect, after); d != "" {
		t.Errorf("unexpected changes besides the removals:\n%s", d)
	}
	if got, want := f.list(q), without(all, gone...); !equalStrings(got, want) {
		t.Errorf("queue after sweep:\n%q\nwant\n%q", got, want)
	}
	if got := f.list(f.layout.Delayed(b1)); !equalStrings(got, []string{d2}) {
		t.Errorf("bucket %d: %q, want only the live job", b1, got)
	}
	sched := f.rdb.ZRange(f.ctx, f.layout.DelayedSchedule(), 0, -1).Val()
	if !equalStrings(sched, []string{strconv.FormatInt(b1, 10)}) {
		t.Errorf("schedule after sweep: %v, want only %d", sched, b1)
	}
}

// TestSweepDelayedStructuresStayConsistent checks resque-scheduler's three
// structures after a sweep: removed jobs leave their bucket and their
// timestamps set, emptied buckets leave the schedule, others stay in it.
func TestSweepDelayedStructuresStayConsistent(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	base := f.now.Unix() + 300
	type dj struct {
		ts      int64
		id, p   string
		expired bool
	}
	var jobs []dj
	// bucket 0: all expired (emptied); bucket 1: mixed; bucket 2: all live;
	// bucket 3: a single expired job (emptied).
	for b := int64(0); b < 3; b++ {
		for i := 0; i < 5; i++ {
			id := fmt.Sprintf("b%d-j%d", b, i)
			exp := b == 0 || (b == 1 && i%2 == 0)
			jobs = append(jobs, dj{ts: base + b, id: id, p: fmt.Sprintf(`{"class":"X","args":[%d],"queue":"q%d","id":%q}`, i, b, id), expired: exp})
		}
	}
	jobs = append(jobs, dj{ts: base + 3, id: "lonely", p: `{"class":"X","args":[],"queue":"q3","id":"lonely"}`, expired: true})
	for _, j := range jobs {
		d := f.at(time.Hour)
		if j.expired {
			d = f.at(-time.Hour)
		}
		f.delay(j.ts, j.p, j.id, d)
	}
	// A payload scheduled at a live bucket and (by hand) also listed under
	// a bucket it is not in: its timestamps set keeps that foreign member.
	if err := f.rdb.SAdd(f.ctx, f.layout.Timestamps(jobs[0].p), "delayed:42").Err(); err != nil {
		t.Fatal(err)
	}

	res, removed := f.mustSweep(Options{Delayed: true}, nil)
	if res.Delayed == nil || res.Delayed.Removed != 9 || len(removed) != 9 {
		t.Fatalf("delayed result %+v, %d removals; want 9", res.Delayed, len(removed))
	}
	for _, r := range removed {
		if r.DelayedAt == 0 || r.List != f.layout.Delayed(r.DelayedAt) {
			t.Errorf("removal %s: delayed_at %d list %s", r.ID, r.DelayedAt, r.List)
		}
	}
	for _, j := range jobs {
		key := f.layout.Delayed(j.ts)
		inBucket := f.rdb.LPos(f.ctx, key, j.p, redis.LPosArgs{}).Err() == nil
		member := f.rdb.SIsMember(f.ctx, f.layout.Timestamps(j.p), resque.DelayedMember(j.ts)).Val()
		if j.expired && (inBucket || member) {
			t.Errorf("%s: removed but still in bucket=%v / timestamps=%v", j.id, inBucket, member)
		}
		if !j.expired && (!inBucket || !member) {
			t.Errorf("%s: live but bucket=%v timestamps=%v", j.id, inBucket, member)
		}
		if j.expired && f.exists(f.layout.Expiration(j.id)) {
			t.Errorf("%s: expiration key left behind", j.id)
		}
	}
	if !f.rdb.SIsMember(f.ctx, f.layout.Timestamps(jobs[0].p), "delayed:42").Val() {
		t.Error("a timestamps set lost a member of a bucket the sweep did not touch")
	}
	for b := int64(0); b < 4; b++ {
		ts := base + b
		emptied := b == 0 || b == 3
		_, zerr := f.rdb.ZScore(f.ctx, f.layout.DelayedSchedule(), strconv.FormatInt(ts, 10)).Result()
		inSchedule := zerr == nil
		if emptied && (f.exists(f.layout.Delayed(ts)) || inSchedule) {
			t.Errorf("bucket %d emptied but list exists=%v / in schedule=%v", ts, f.exists(f.layout.Delayed(ts)), inSchedule)
		}
		if !emptied && (!f.exists(f.layout.Delayed(ts)) || !inSchedule) {
			t.Errorf("bucket %d not empty but list exists=%v / in schedule=%v", ts, f.exists(f.layout.Delayed(ts)), inSchedule)
		}
	}
}

// TestSweepMaxAge: with MaxAge, jobs without a deadline are removed when
// their own enqueue time (ActiveJob args.0.enqueued_at, top-level
// enqueued_at or created_at) is older than MaxAge — and nothing else is.
func TestSweepMaxAge(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	old, recent := f.now.Add(-3*time.Hour), f.now.Add(-10*time.Minute)
	aj := func(id string, enq time.Time) string {
		return fmt.Sprintf(`{"class":%q,"args":[{"job_class":"SendEmailJob","job_id":%q,"queue_name":"default","arguments":[],"enqueued_at":%q}]}`,
			resque.ActiveJobWrapper, id, enq.Format(time.RFC3339Nano))
	}
	type tc struct {
		id, payload, deadline string
		byAge, expired        bool
	}
	cases := []tc{
		{id: "aj-old", payload: aj("aj-old", old), byAge: true},
		{id: "aj-recent", payload: aj("aj-recent", recent)},
		{id: "top-enq-old", payload: fmt.Sprintf(`{"class":"X","args":[],"id":"top-enq-old","enqueued_at":%d}`, old.Unix()), byAge: true},
		{id: "top-enq-old-float", payload: fmt.Sprintf(`{"class":"X","args":[],"id":"top-enq-old-float","enqueued_at":%d.5}`, old.Unix()), byAge: true},
		{id: "top-created-old-ms", payload: fmt.Sprintf(`{"class":"X","args":[],"id":"top-created-old-ms","created_at":%d}`, old.UnixMilli()), byAge: true},
		{id: "top-created-old-rfc", payload: fmt.Sprintf(`{"class":"X","args":[],"id":"top-created-old-rfc","created_at":%q}`, old.Format(time.RFC3339)), byAge: true},
		{id: "top-created-recent", payload: fmt.Sprintf(`{"class":"X","args":[],"id":"top-created-recent","created_at":%d}`, recent.Unix())},
		{id: "no-time", payload: `{"class":"X","args":[],"id":"no-time"}`},
		{id: "bad-time", payload: `{"class":"X","args":[],"id":"bad-time","enqueued_at":"yesterday"}`},
		{id: "old-live", payload: aj("old-live", old), deadline: f.at(time.Hour)},
		{id: "old-invalid-deadline", payload: aj("old-invalid-deadline", old), deadline: "soon"},
		{id: "old-expired", payload: aj("old-expired", old), deadline: f.at(-time.Minute), expired: true},
		{id: "", payload: fmt.Sprintf(`{"class":"X","args":[],"enqueued_at":%d}`, old.Unix())}, // unidentified
		{id: "", payload: fmt.Sprintf(`["X",{"enqueued_at":%d}]`, old.Unix())},                 // invalid
	}
	for _, c := range cases {
		f.push("default", c.payload, c.id, c.deadline)
	}

	// Without MaxAge only the expired job goes.
	_, removed := f.mustSweep(Options{DryRun: true}, nil)
	if got := removedIDs(removed); !equalStrings(got, []string{"old-expired"}) {
		t.Errorf("without max-age, would remove %v; want only old-expired", got)
	}

	before := f.dump()
	res, removed := f.mustSweep(Options{MaxAge: time.Hour}, nil)
	var want []string
	for _, c := range cases {
		if c.byAge || c.expired {
			want = append(want, c.id)
		}
	}
	if got := removedIDs(removed); !equalStrings(got, sortedCopy(want)) {
		t.Fatalf("removed %v, want %v", got, sortedCopy(want))
	}
	if res.Removed != int64(len(want)) || res.Expired != int64(len(want)) {
		t.Errorf("result removed %d expired %d, want %d", res.Removed, res.Expired, len(want))
	}
	for _, r := range removed {
		if r.ID == "old-expired" {
			if r.ByAge || !r.EnqueuedAt.IsZero() {
				t.Errorf("expired job reported by age: %+v", r)
			}
			continue
		}
		if !r.ByAge || r.EnqueuedAt.Before(old) || !r.EnqueuedAt.Before(old.Add(time.Second)) {
			t.Errorf("%s: by_age=%v enqueued_at=%v, want true and %v", r.ID, r.ByAge, r.EnqueuedAt, old)
		}
		if r.OverdueBy <= 0 {
			t.Errorf("%s: overdue by %v", r.ID, r.OverdueBy)
		}
	}
	// The queue lost exactly those jobs; no key but old-expired's changed.
	var gone []string
	for _, c := range cases {
		if c.byAge || c.expired {
			gone = append(gone, c.payload)
		}
	}
	var all []string
	for _, c := range cases {
		all = append(all, c.payload)
	}
	if got, want := f.list(f.layout.Queue("default")), without(all, gone...); !equalStrings(got, want) {
		t.Errorf("queue after sweep:\n%q\nwant\n%q", got, want)
	}
	after := f.dump()
	delete(before, f.layout.Expiration("old-expired"))
	delete(before, f.layout.Queue("default"))
	delete(after, f.layout.Queue("default"))
	f.takeStats(after, res)
	if d := diffDumps(before, after); d != "" {
		t.Errorf("unexpected changes:\n%s", d)
	}
}

// TestSweepGrace: jobs expired less than Grace ago are kept and counted as
// skipped.
func TestSweepGrace(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.push("default", f.job("just-now", "X"), "just-now", f.at(-10*time.Second))
	f.push("default", f.job("a-minute", "X"), "a-minute", f.at(-59*time.Second))
	f.push("default", f.job("long-ago", "X"), "long-ago", f.at(-2*time.Hour))
	f.push("default", f.job("live", "X"), "live", f.at(time.Hour))
	for _, dry := range []bool{true, false} {
		res, removed := f.mustSweep(Options{DryRun: dry, Grace: time.Minute}, nil)
		if got := removedIDs(removed); !equalStrings(got, []string{"long-ago"}) {
			t.Errorf("dry=%v: removed %v, want [long-ago]", dry, got)
		}
		if res.Expired != 3 || res.Skipped != 2 || res.Removed != 1 {
			t.Errorf("dry=%v: expired %d skipped %d removed %d, want 3 2 1", dry, res.Expired, res.Skipped, res.Removed)
		}
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val(); n != 3 {
		t.Errorf("queue has %d jobs, want 3", n)
	}
}

// TestSweepLimit: Limit removes exactly that many jobs and says it stopped.
func TestSweepLimit(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	for i := 0; i < 30; i++ {
		id := fmt.Sprintf("j%02d", i)
		d := f.at(-time.Hour)
		if i%3 == 0 {
			d = f.at(time.Hour)
		}
		f.push([]string{"a", "b"}[i%2], f.job(id, "X"), id, d)
	}
	small := func(c *inspect.Config) { c.Batch = 4 }
	for _, limit := range []int64{1, 7, 13} {
		res, removed := f.mustSweep(Options{DryRun: true, Limit: limit}, small)
		if res.Removed != limit || int64(len(removed)) != limit || res.Stopped != "limit" {
			t.Errorf("dry run limit %d: removed %d (%d reported), stopped %q", limit, res.Removed, len(removed), res.Stopped)
		}
	}
	res, removed := f.mustSweep(Options{Limit: 7}, small)
	if res.Removed != 7 || len(removed) != 7 || res.Stopped != "limit" || res.Stopped == "" {
		t.Fatalf("limit 7: removed %d (%d reported), stopped %q", res.Removed, len(removed), res.Stopped)
	}
	total := f.rdb.LLen(f.ctx, f.layout.Queue("a")).Val() + f.rdb.LLen(f.ctx, f.layout.Queue("b")).Val()
	if total != 30-7 {
		t.Errorf("%d jobs left, want %d", total, 30-7)
	}
	// 20 expired in all, 7 gone: a limit of exactly what is left takes all.
	res, removed = f.mustSweep(Options{Limit: 13}, small)
	if res.Removed != 13 || len(removed) != 13 {
		t.Errorf("limit 13 of 13: removed %d, stopped %q", res.Removed, res.Stopped)
	}
	if res, _ := f.mustSweep(Options{DryRun: true}, nil); res.Removed != 0 {
		t.Errorf("%d expired jobs left", res.Removed)
	}
}

// slowPages is a Progress that sleeps on each page and can run a hook: it
// is called by the sweep after a page was read and before its jobs are
// removed.
type slowPages struct {
	delay time.Duration
	hook  func(page int)
	pages int
}

func (p *slowPages) SetTotal(int64) {}
func (p *slowPages) Add(int) {
	p.pages++
	if p.hook != nil {
		p.hook(p.pages)
	}
	time.Sleep(p.delay)
}

// TestSweepMaxDuration: the run stops cleanly between batches, reports
// exactly what it did, and a zero-length budget removes nothing.
func TestSweepMaxDuration(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("j%03d", i)
		f.push("default", f.job(id, "X"), id, f.at(-time.Hour))
	}
	res, removed := f.mustSweep(Options{MaxDuration: time.Nanosecond}, nil)
	if res.Stopped != "max-duration" || res.Removed != 0 || len(removed) != 0 {
		t.Errorf("1ns budget: stopped %q, removed %d", res.Stopped, res.Removed)
	}
	res, removed = f.mustSweep(Options{MaxDuration: 150 * time.Millisecond, Progress: &slowPages{delay: 50 * time.Millisecond}},
		func(c *inspect.Config) { c.Batch = 10 })
	if res.Stopped != "max-duration" {
		t.Fatalf("stopped %q, want max-duration", res.Stopped)
	}
	left := f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val()
	if res.Removed == 0 || res.Removed == 100 || int64(len(removed)) != res.Removed || left != 100-res.Removed {
		t.Errorf("removed %d (reported %d), %d left", res.Removed, len(removed), left)
	}
	if res.Elapsed > 1 {
		t.Errorf("a 150ms budget took %.2fs", res.Elapsed)
	}
}

// TestSweepFilters: --class skips (and counts) other jobs, including
// ActiveJob's wrapped job_class; --queue leaves other queues alone.
func TestSweepFilters(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	ajPayload := func(id, class string) string {
		return fmt.Sprintf(`{"class":%q,"args":[{"job_class":%q,"job_id":%q,"arguments":[]}]}`, resque.ActiveJobWrapper, class, id)
	}
	f.push("mailers", f.job("m1", "SendEmailJob"), "m1", f.at(-time.Hour))
	f.push("mailers", f.job("m2", "ProcessPaymentJob"), "m2", f.at(-time.Hour))
	f.push("mailers", ajPayload("m3", "SendEmailJob"), "m3", f.at(-time.Hour))
	f.push("mailers", `{"class":"SendEmailJob","args":[`, "", "")
	f.push("mailers", f.job("m4", "SendEmailJob"), "m4", f.at(time.Hour))
	f.push("default", f.job("d1", "SendEmailJob"), "d1", f.at(-time.Hour))
	f.push("default", f.job("d2", "Reports::Daily"), "d2", f.at(-time.Hour))

	res, removed := f.mustSweep(Options{DryRun: true}, func(c *inspect.Config) { c.Classes = []string{"SendEmailJob"} })
	if got := removedIDs(removed); !equalStrings(got, []string{"d1", "m1", "m3"}) {
		t.Errorf("class filter: would remove %v", got)
	}
	// m2, the bad payload and d2 do not match.
	if res.Skipped != 3 || res.Scanned != 7 {
		t.Errorf("class filter: skipped %d scanned %d, want 3 and 7", res.Skipped, res.Scanned)
	}
	res, removed = f.mustSweep(Options{DryRun: true}, func(c *inspect.Config) { c.Classes = []string{"Reports::*", "Process*"} })
	if got := removedIDs(removed); !equalStrings(got, []string{"d2", "m2"}) {
		t.Errorf("class globs: would remove %v", got)
	}
	_ = res
	_, removed = f.mustSweep(Options{DryRun: true}, func(c *inspect.Config) { c.Classes = []string{"ActiveJob::*"} })
	if got := removedIDs(removed); !equalStrings(got, []string{"m3"}) {
		t.Errorf("wrapper class: would remove %v", got)
	}

	res, removed = f.mustSweep(Options{}, func(c *inspect.Config) { c.Queues = []string{"mail*"} })
	if got := removedIDs(removed); !equalStrings(got, []string{"m1", "m2", "m3"}) {
		t.Errorf("queue filter: removed %v", got)
	}
	if len(res.Queues) != 1 || res.Queues[0].Queue != "mailers" {
		t.Errorf("queue filter swept %+v", res.Queues)
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val(); n != 2 {
		t.Errorf("default has %d jobs, want both left", n)
	}
}

// TestSweepDryRunMatchesRealRun seeds the same generated data twice and
// checks that a dry run reports, job for job, what the real run removes,
// that the dry run writes nothing, and that both match the generator.
func TestSweepDryRunMatchesRealRun(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	// A fixed clock in the past: both runs must judge by it, not by the
	// wall clock (for which every generated deadline has passed).
	f.now = time.Date(2023, 3, 14, 15, 9, 26, 0, time.UTC)
	spec := sample.Spec{Seed: 7, Now: f.now, Queues: []string{"mailers", "default", "critical"}, Jobs: 900,
		Expired: 0.4, Missing: 0.15, Unidentified: 0.05, Invalid: 0.05, ActiveJob: 0.4,
		MinPayload: 100, MaxPayload: 300, Delayed: 40, Failed: 1}
	var want []string
	sample.Generate(spec, func(j sample.Job) {
		if j.State != "expired" {
			return
		}
		key := f.layout.Queue(j.Queue)
		if j.DelayedAt != 0 {
			key = f.layout.Delayed(j.DelayedAt)
		}
		want = append(want, key+"|"+j.Payload)
	})
	sort.Strings(want)
	if _, err := sample.Fill(f.ctx, f.rdb, f.layout, spec); err != nil {
		t.Fatal(err)
	}
	batch := func(c *inspect.Config) { c.Batch = 64 }

	before := f.dump()
	dry, wouldRemove := f.mustSweep(Options{DryRun: true, Delayed: true}, batch)
	if d := diffDumps(before, f.dump()); d != "" {
		t.Fatalf("the dry run changed Redis:\n%s", d)
	}
	real, removed := f.mustSweep(Options{Delayed: true}, batch)
	if a, b := removalKeys(wouldRemove), removalKeys(removed); !equalStrings(a, b) {
		t.Fatalf("dry run would remove %d jobs, the real run removed %d; they differ", len(a), len(b))
	}
	if got := removalKeys(removed); !equalStrings(got, want) {
		t.Errorf("removed %d jobs, the generator made %d expired ones; they differ", len(got), len(want))
	}
	for _, r := range wouldRemove {
		if !r.DryRun {
			t.Fatalf("dry-run removal not marked dry: %+v", r)
		}
	}
	if dry.Removed != real.Removed || dry.Scanned != real.Scanned || dry.Expired != real.Expired || dry.Skipped != real.Skipped {
		t.Errorf("dry %+v\nreal %+v", dry, real)
	}
	if real.AlreadyGone != 0 || real.Changed != 0 {
		t.Errorf("nobody else touched Redis, yet already gone %d, changed %d", real.AlreadyGone, real.Changed)
	}
	again, removed := f.mustSweep(Options{DryRun: true, Delayed: true}, batch)
	if again.Removed != 0 || len(removed) != 0 {
		t.Errorf("after the real run a dry run still finds %d", again.Removed)
	}
}

// TestSweepDuplicatePayloads: byte-identical expired payloads in one list
// are all removed, whether they are in one page or in several.
func TestSweepDuplicatePayloads(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{100, 2} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
			t.Parallel()
			f := newSweepFixture(t)
			dup := f.job("dup", "X")
			live := f.job("live", "X")
			f.push("default", dup, "dup", f.at(-time.Hour))
			f.push("default", live, "live", f.at(time.Hour))
			f.push("default", dup, "dup", f.at(-time.Hour))
			f.push("default", live, "live", f.at(time.Hour))
			f.push("default", dup, "dup", f.at(-time.Hour))
			setBatch := func(c *inspect.Config) { c.Batch = batch }

			_, wouldRemove := f.mustSweep(Options{DryRun: true}, setBatch)
			res, removed := f.mustSweep(Options{}, setBatch)
			if len(wouldRemove) != 3 {
				t.Errorf("dry run would remove %d copies, want 3", len(wouldRemove))
			}
			if res.Removed != 3 || len(removed) != 3 {
				t.Errorf("removed %d copies (%d reported), want 3; result %+v", res.Removed, len(removed), res.Queues)
			}
			if got := f.list(f.layout.Queue("default")); !equalStrings(got, []string{live, live}) {
				t.Errorf("queue left: %q", got)
			}
		})
	}
}

// TestSweepDuplicateDelayedPayload: resque-scheduler may hold one payload in
// several buckets (timestamps:<payload> then has several members); an
// expired one is removed from every bucket.
func TestSweepDuplicateDelayedPayload(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	p := `{"class":"X","args":[1],"queue":"q","id":"twice"}`
	b1, b2 := f.now.Unix()+10, f.now.Unix()+20
	f.delay(b1, p, "twice", f.at(-time.Hour))
	f.delay(b2, p, "twice", f.at(-time.Hour))
	_, wouldRemove := f.mustSweep(Options{DryRun: true, Delayed: true}, nil)
	res, removed := f.mustSweep(Options{Delayed: true}, nil)
	if len(wouldRemove) != 2 || len(removed) != 2 {
		t.Errorf("dry run would remove %d, real run removed %d; want 2 and 2 (result %+v)", len(wouldRemove), len(removed), res.Delayed)
	}
	for _, ts := range []int64{b1, b2} {
		if f.exists(f.layout.Delayed(ts)) {
			t.Errorf("bucket %d still holds %q", ts, f.list(f.layout.Delayed(ts)))
		}
	}
	if f.exists(f.layout.Timestamps(p)) || f.rdb.ZCard(f.ctx, f.layout.DelayedSchedule()).Val() != 0 {
		t.Errorf("timestamps set or schedule left behind")
	}
}

// deadlineChanger is a Progress whose Add — called after a page was read
// and judged, before its jobs are removed — changes deadlines, the way an
// application extending a job's deadline would.
type deadlineChanger struct {
	f    *sweepFixture
	sets map[string]string // expiration key -> new value
	done bool
}

func (d *deadlineChanger) SetTotal(int64) {}
func (d *deadlineChanger) Add(int) {
	if d.done {
		return
	}
	d.done = true
	for k, v := range d.sets {
		if err := d.f.rdb.Set(d.f.ctx, k, v, 0).Err(); err != nil {
			d.f.t.Error(err)
		}
	}
}

// TestSweepKeepsJobWhoseDeadlineChanged: a deadline extended (or a missing
// one set) between the read and the removal keeps the job; the sweep
// counts it as changed and removes the rest.
func TestSweepKeepsJobWhoseDeadlineChanged(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	old := f.now.Add(-3 * time.Hour).Unix()
	f.push("default", f.job("extended", "X"), "extended", f.at(-time.Hour))
	f.push("default", f.job("other-value", "X"), "other-value", f.at(-time.Hour))
	f.push("default", f.job("expired", "X"), "expired", f.at(-time.Hour))
	aged := fmt.Sprintf(`{"class":"X","args":[],"id":"aged","enqueued_at":%d}`, old)
	f.push("default", aged, "aged", "")
	aged2 := fmt.Sprintf(`{"class":"X","args":[],"id":"aged2","enqueued_at":%d}`, old)
	f.push("default", aged2, "aged2", "")

	ch := &deadlineChanger{f: f, sets: map[string]string{
		f.layout.Expiration("extended"):    f.at(time.Hour),
		f.layout.Expiration("other-value"): f.at(-2 * time.Hour), // still past, but not the value judged
		f.layout.Expiration("aged"):        f.at(time.Hour),      // a deadline appeared
	}}
	res, removed := f.mustSweep(Options{MaxAge: time.Hour, Progress: ch}, nil)
	if got := removedIDs(removed); !equalStrings(got, []string{"aged2", "expired"}) {
		t.Errorf("removed %v, want [aged2 expired]", got)
	}
	if res.Changed != 3 || res.Removed != 2 {
		t.Errorf("changed %d removed %d, want 3 and 2", res.Changed, res.Removed)
	}
	for _, id := range []string{"extended", "other-value", "aged"} {
		if f.rdb.Get(f.ctx, f.layout.Expiration(id)).Val() != ch.sets[f.layout.Expiration(id)] {
			t.Errorf("%s: the new deadline was touched", id)
		}
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val(); n != 3 {
		t.Errorf("%d jobs left, want 3", n)
	}
}

// scriptCall runs remove_expired.lua directly on one queue.
func (f *sweepFixture) scriptCall(list string, cands [][3]string) []int64 {
	f.t.Helper()
	codes, err := f.scriptCallAs(f.rdb, list, cands)
	if err != nil {
		f.t.Fatalf("script: %v", err)
	}
	return codes
}

// scriptCallAs runs remove_expired.lua directly on one queue through c.
func (f *sweepFixture) scriptCallAs(c redis.Scripter, list string, cands [][3]string) ([]int64, error) {
	keys := []string{list, f.layout.Failed(), f.layout.Journal(), f.layout.DelayedSchedule(), f.layout.Stats()}
	args := []any{"\x00resque-expire:marker:test", "0", "0", "", 256, "deleted:test"}
	for _, c := range cands {
		p, idx, deadline := c[0], c[1], c[2]
		var pl map[string]any
		_ = json.Unmarshal([]byte(p), &pl)
		id, _ := pl["id"].(string)
		keys = append(keys, f.layout.Expiration(id))
		args = append(args, p, idx, deadline, 0, "", "")
	}
	reply, err := once.NewRequests(f.layout.Requests(once.NewRunID())).Run(f.ctx, c, removeExpiredScript, keys, args...).Int64Slice()
	if err != nil {
		return nil, err
	}
	// The codes, then the script's own time.
	if len(reply) != len(cands)+1 || reply[len(cands)] < 0 {
		return nil, fmt.Errorf("script answered %v for %d candidates, want a code each and its time", reply, len(cands))
	}
	return reply[:len(cands)], nil
}

// TestRemoveExpiredScript exercises the removal script on its own: it
// removes only candidates whose key still holds the judged value, finds
// them although workers popped at the head and producers pushed at the
// tail, answers 0 for a job already gone, and never leaves a marker.
func TestRemoveExpiredScript(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	q := f.layout.Queue("default")
	var all []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("j%02d", i)
		p := f.job(id, "X")
		all = append(all, p)
		f.push("default", p, id, "100")
	}
	// Read positions: j03, j05, j07, j09, j11 at 3, 5, 7, 9, 11. Then the
	// world moves: workers pop 2 (j00, j01), a producer pushes, j05's
	// deadline is extended, j07 is taken by a worker (LREM).
	f.rdb.LPop(f.ctx, q)
	f.rdb.LPop(f.ctx, q)
	f.rdb.RPush(f.ctx, q, f.job("new", "X"))
	f.rdb.Set(f.ctx, f.layout.Expiration("j05"), "200", 0)
	f.rdb.LRem(f.ctx, q, 1, all[7])
	codes := f.scriptCall(q, [][3]string{
		{all[3], "3", "100"},
		{all[5], "5", "100"},
		{all[7], "7", "100"},
		{all[9], "9", "100"},
		{all[11], "11", "100"},
	})
	if want := []int64{1, 2, 0, 1, 1}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("codes %v, want %v", codes, want)
	}
	want := append([]string(nil), all[2:]...)
	want = without(want, all[3], all[7], all[9], all[11])
	want = append(want, f.job("new", "X"))
	if got := f.list(q); !equalStrings(got, want) {
		t.Errorf("list after script:\n%q\nwant\n%q", got, want)
	}
	for _, id := range []string{"j03", "j09", "j11"} {
		if f.exists(f.layout.Expiration(id)) {
			t.Errorf("%s: key not deleted", id)
		}
	}
	if f.rdb.Get(f.ctx, f.layout.Expiration("j05")).Val() != "200" {
		t.Error("j05's new deadline was lost")
	}
	// A candidate judged without a key (max-age) is kept once a key exists.
	if codes := f.scriptCall(q, [][3]string{{all[4], "0", ""}}); codes[0] != 2 {
		t.Errorf("max-age candidate with a key: code %d, want 2", codes[0])
	}
	f.rdb.Del(f.ctx, f.layout.Expiration("j04"))
	if codes := f.scriptCall(q, [][3]string{{all[4], "0", ""}}); codes[0] != 1 {
		t.Errorf("max-age candidate without a key: code %d, want 1", codes[0])
	}
	// A key of the wrong type never matches.
	f.rdb.Del(f.ctx, f.layout.Expiration("j06"))
	f.rdb.HSet(f.ctx, f.layout.Expiration("j06"), "v", "100")
	for _, judged := range []string{"100", ""} {
		if codes := f.scriptCall(q, [][3]string{{all[6], "0", judged}}); codes[0] != 2 {
			t.Errorf("wrong-type key judged %q: code %d, want 2", judged, codes[0])
		}
	}
	for _, v := range f.list(q) {
		if strings.HasPrefix(v, "\x00resque-expire:marker:") {
			t.Fatalf("marker left in the list: %q", v)
		}
	}
	// Nothing to do, nothing done.
	if codes := f.scriptCall(q, nil); len(codes) != 0 {
		t.Errorf("no candidates: codes %v", codes)
	}
}

// TestSweepToFailed checks the failure entries --to-failed writes against
// the shape lib/resque/failure/redis.rb writes.
func TestSweepToFailed(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	html := `{"class":"SendEmailJob","args":["<b>Tom & Jerry</b>",{"k":"a>b"}],"id":"html"}`
	f.push("mailers", html, "html", f.at(-90*time.Minute))
	spaced := `{ "class" : "X", "args" : [ 1, 2 ], "id" : "spaced" }`
	f.push("default", spaced, "spaced", f.at(-time.Minute))
	delayed := `{"class":"Reports::Daily","args":[],"queue":"reports","id":"delayed"}`
	f.delay(f.now.Unix()+60, delayed, "delayed", f.at(-time.Hour))
	aged := fmt.Sprintf(`{"class":"X","args":[],"id":"aged","enqueued_at":%d}`, f.now.Add(-3*time.Hour).Unix())
	f.push("default", aged, "aged", "")
	f.push("default", f.job("live", "X"), "live", f.at(time.Hour))
	// An existing failure stays first.
	f.rdb.RPush(f.ctx, f.layout.Failed(), `{"failed_at":"2020/01/01 00:00:00 UTC"}`)

	res, removed := f.mustSweep(Options{ToFailed: true, Delayed: true, MaxAge: time.Hour}, nil)
	if res.Removed != 4 || len(removed) != 4 || res.Destination != "failed list" {
		t.Fatalf("removed %d, destination %q", res.Removed, res.Destination)
	}
	raw := f.list(f.layout.Failed())
	if len(raw) != 5 || raw[0] != `{"failed_at":"2020/01/01 00:00:00 UTC"}` {
		t.Fatalf("failed list: %q", raw)
	}
	host, _ := os.Hostname()
	wantWorker := fmt.Sprintf("%s:%d:resque-expire", host, os.Getpid())
	byID := map[string]map[string]json.RawMessage{}
	for _, line := range raw[1:] {
		var e map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("failure entry is not JSON: %v\n%s", err, line)
		}
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if want := "backtrace error exception failed_at payload queue worker"; strings.Join(keys, " ") != want {
			t.Errorf("entry keys %v, want %s", keys, want)
		}
		var s struct {
			FailedAt  string         `json:"failed_at"`
			Payload   map[string]any `json:"payload"`
			Exception string         `json:"exception"`
			Error     string         `json:"error"`
			Backtrace []string       `json:"backtrace"`
			Worker    string         `json:"worker"`
			Queue     string         `json:"queue"`
		}
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("entry fields have the wrong types: %v\n%s", err, line)
		}
		if s.FailedAt != f.now.Format("2006/01/02 15:04:05 UTC") {
			t.Errorf("failed_at %q", s.FailedAt)
		}
		if _, err := time.Parse("2006/01/02 15:04:05 MST", s.FailedAt); err != nil {
			t.Errorf("failed_at %q is not Ruby's %%Y/%%m/%%d %%H:%%M:%%S %%Z: %v", s.FailedAt, err)
		}
		if s.Exception != "ResqueExpire::JobExpired" || s.Backtrace == nil || len(s.Backtrace) != 0 || string(e["backtrace"]) != "[]" {
			t.Errorf("exception %q backtrace %s", s.Exception, e["backtrace"])
		}
		if s.Worker != wantWorker {
			t.Errorf("worker %q, want %q", s.Worker, wantWorker)
		}
		if e["payload"][0] != '{' {
			t.Errorf("payload is not an object: %s", e["payload"])
		}
		id, _ := s.Payload["id"].(string)
		byID[id] = e
		switch id {
		case "html":
			if !strings.Contains(line, `"<b>Tom & Jerry</b>"`) || !strings.Contains(line, `"a>b"`) || strings.Contains(line, `\u00`) {
				t.Errorf("entry escapes HTML characters: %s", line)
			}
			if string(e["payload"]) != html {
				t.Errorf("payload %s, want the job exactly %s", e["payload"], html)
			}
			if s.Queue != "mailers" {
				t.Errorf("queue %q", s.Queue)
			}
			exp := f.now.Add(-90 * time.Minute).Format(time.RFC3339)
			if !strings.Contains(s.Error, exp) || !strings.Contains(s.Error, "overdue") || !strings.Contains(s.Error, "1h30m") {
				t.Errorf("error %q should name the deadline %s and how overdue (1h30m)", s.Error, exp)
			}
		case "spaced":
			var want, got any
			_ = json.Unmarshal([]byte(spaced), &want)
			_ = json.Unmarshal(e["payload"], &got)
			if fmt.Sprint(want) != fmt.Sprint(got) {
				t.Errorf("payload %s does not decode to the job", e["payload"])
			}
		case "delayed":
			if s.Queue != "reports" {
				t.Errorf("delayed job: queue %q, want the payload's queue", s.Queue)
			}
		case "aged":
			if !strings.Contains(s.Error, "no deadline") || !strings.Contains(s.Error, f.now.Add(-3*time.Hour).Format(time.RFC3339)) {
				t.Errorf("by-age error %q", s.Error)
			}
		}
	}
	for _, id := range []string{"html", "spaced", "delayed", "aged"} {
		if byID[id] == nil {
			t.Errorf("no failure entry for %s", id)
		}
	}
}

// TestSweepWrongTypeLists: a queue key or a bucket of the wrong type is
// reported and skipped; the rest is swept.
func TestSweepWrongTypeLists(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.push("good", f.job("g", "X"), "g", f.at(-time.Hour))
	f.rdb.SAdd(f.ctx, f.layout.Queues(), "hashed")
	f.rdb.HSet(f.ctx, f.layout.Queue("hashed"), "a", "b")
	ts := f.now.Unix() + 5
	f.rdb.ZAdd(f.ctx, f.layout.DelayedSchedule(), redis.Z{Score: float64(ts), Member: strconv.FormatInt(ts, 10)})
	f.rdb.Set(f.ctx, f.layout.Delayed(ts), "not a list", 0)
	res, removed := f.mustSweep(Options{Delayed: true}, nil)
	if len(removed) != 1 || removed[0].ID != "g" || res.Stopped != "" {
		t.Errorf("removed %v, stopped %q", removedIDs(removed), res.Stopped)
	}
	kinds := map[string]string{}
	for _, p := range res.Problems {
		kinds[p.Key] = p.Kind
	}
	if kinds[f.layout.Queue("hashed")] != inspect.ProblemWrongType || kinds[f.layout.Delayed(ts)] != inspect.ProblemWrongType {
		t.Errorf("problems %+v", res.Problems)
	}
}

// TestSweepInterrupted: a cancelled context stops the run between batches
// with Stopped "interrupted" and the context's error.
func TestSweepInterrupted(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("j%d", i)
		f.push("default", f.job(id, "X"), id, f.at(-time.Hour))
	}
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	p := &slowPages{hook: func(page int) {
		if page == 2 {
			cancel()
		}
	}}
	s := f.scanner(func(c *inspect.Config) { c.Batch = 10 })
	res, err := New(s).Run(ctx, Options{Now: f.clock, Progress: p})
	if !errors.Is(err, context.Canceled) || res.Stopped != "interrupted" {
		t.Fatalf("err %v stopped %q", err, res.Stopped)
	}
	// Page 2 was read when the interrupt came, and is finished.
	if res.Removed != 20 || f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val() != 30 {
		t.Errorf("removed %d, left %d", res.Removed, f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val())
	}
	if f.exists(f.layout.Lock()) {
		t.Error("lock not released after an interrupt")
	}
}
