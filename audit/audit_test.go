package audit

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/stop"
)

// auditNow is the clock of the audit tests' scanners.
var auditNow = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// auditScanner is a scanner on auditNow reading batch jobs at a time.
func auditScanner(t *testing.T, rdb redis.UniversalClient, batch int) *inspect.Scanner {
	t.Helper()
	s, err := inspect.NewScanner(rdb, inspect.Config{Layout: resque.MustLayout("resque", ""), Batch: batch, Now: func() time.Time { return auditNow }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func auditMD5(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func auditDo(t *testing.T, rdb redis.UniversalClient, args ...any) {
	t.Helper()
	if err := rdb.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// auditSet writes string key k, with a TTL unless ttl is 0.
func auditSet(t *testing.T, rdb redis.UniversalClient, k, v string, ttl time.Duration) {
	t.Helper()
	if err := rdb.Set(context.Background(), k, v, ttl).Err(); err != nil {
		t.Fatal(err)
	}
}

const auditWeek = 7 * 24 * time.Hour

// auditSeed writes one Redis with every kind of rot the audit reports,
// each counted in TestAuditCountsEveryRotCase.
func auditSeed(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	// The design note's idempotency keys.
	auditSet(t, rdb, "email_sent:1:welcome", "true", auditWeek)
	auditSet(t, rdb, "email_sent:2:welcome", "true", 0)           // no TTL
	auditSet(t, rdb, "email_sent:3:welcome", "yes", 24*time.Hour) // unexpected value
	auditDo(t, rdb, "HSET", "email_sent:4:welcome", "f", "v")     // wrong type, no TTL
	auditSet(t, rdb, "payment:a", "completed", auditWeek)
	auditSet(t, rdb, "payment:b", "in_progress", 0)                        // stuck: no TTL
	auditSet(t, rdb, "payment:c", "in_progress", auditWeek-2*time.Hour)    // stuck: 2h old
	auditSet(t, rdb, "payment:d", "in_progress", auditWeek-10*time.Minute) // 10m old: not stuck yet
	auditSet(t, rdb, "payment:e", "refunded", auditWeek)                   // unexpected value
	auditDo(t, rdb, "RPUSH", "payment:f", "x")                             // wrong type, no TTL

	// Jobs. default: a1 three times (twice byte-identical), b1, two
	// identical id-less jobs, a unique job with a Hash argument.
	past, future := strconv.FormatInt(auditNow.Add(-3*time.Hour).Unix(), 10), strconv.FormatInt(auditNow.Add(3*time.Hour).Unix(), 10)
	redistest.Seed(t, rdb, resque.MustLayout("resque", "")).
		Enqueue("default",
			redistest.Job{Payload: `{"class":"SendEmailJob","args":[1],"id":"a1"}`, ID: "a1", Deadline: future},
			redistest.Job{Payload: `{"class":"SendEmailJob","args":[2],"id":"b1"}`, ID: "b1", Deadline: past},
			redistest.Job{Payload: `{"class":"SendEmailJob","args":[1],"id":"a1"}`}, // same id, same payload
			redistest.Job{Payload: `{"class":"OtherJob","args":[9],"id":"a1"}`},     // same id
			redistest.Job{Payload: `{"class":"Plain","args":[7]}`},
			redistest.Job{Payload: `{"class":"Plain","args":[7]}`}, // same payload
			redistest.Job{Payload: `{"class":"Unique","args":[{"b":1,"a":"x/y"}]}`},
		).
		Enqueue("mailers",
			redistest.Job{Payload: `{"class":"Mail","args":[],"id":"m1"}`, ID: "m1", Deadline: future},
			redistest.Job{Payload: `{"class":"Mail","args":[1],"id":"m2"}`}, // no deadline key: missing
			redistest.Job{Payload: `not json`},                              // invalid
		).
		Delay(auditNow.Add(time.Hour).Unix(),
			redistest.Job{Payload: `{"class":"Later","args":[],"queue":"default","id":"d1"}`},
			redistest.Job{Payload: `{"class":"SendEmailJob","args":[2],"id":"b1","queue":"default"}`}, // same id as a queued job
		).
		Deadline("gone1", past).     // orphan, expired
		Deadline("gone2", future).   // orphan, live
		Deadline("gone3", "garbage") // orphan, unreadable
	auditSet(t, rdb, "resque:job:d1:expiration", future, 24*time.Hour)
	auditDo(t, rdb, "HSET", "resque:job:gone4:expiration", "f", "v") // orphan of the wrong type

	// resque-loner markers.
	plain := auditMD5(`{"class":"Plain","args":[7]}`)
	auditSet(t, rdb, "resque:loners:queue:default:job:"+plain, "1", 0)                                                         // job queued
	auditSet(t, rdb, "resque:loners:queue:default:job:"+auditMD5(`{"class":"Unique","args":[[["a","x/y"],["b",1]]]}`), "1", 0) // job queued (sorted pairs)
	auditSet(t, rdb, "resque:loners:queue:default:job:"+auditMD5(`{"class":"Gone","args":[]}`), "1", 0)                        // orphan, no TTL
	auditSet(t, rdb, "resque:loners:queue:default:job:"+auditMD5(`{"class":"Gone","args":[1]}`), "1", time.Hour)               // orphan, clears itself
	auditSet(t, rdb, "resque:loners:queue:nosuch:job:"+plain, "1", 0)                                                          // orphan, no such queue
	auditSet(t, rdb, "resque:loners:queue:mailers:job:"+plain, "1", 0)                                                         // orphan: job is in another queue
	auditSet(t, rdb, "resque:loners:queue:broken", "1", 0)                                                                     // unreadable name
}

func auditAll() Options {
	return Options{Families: DefaultFamilies(), Jobs: true, Deadlines: true, Loners: true, ScanCount: 2}
}

func TestAuditCountsEveryRotCase(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	auditSeed(t, rdb)
	var findings []Finding
	opts := auditAll()
	opts.OnFindings = func(_ context.Context, fs []Finding) error { findings = append(findings, fs...); return nil }
	rep, err := Run(context.Background(), auditScanner(t, rdb, 3), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Partial || len(rep.Families) != 2 {
		t.Fatalf("partial=%v families=%d", rep.Partial, len(rep.Families))
	}
	type counts struct{ keys, noTTL, wrongType, unexpected, stuck, unknownAge, unreadable, ttlCount int64 }
	got := func(f *FamilyReport) counts {
		return counts{f.Keys, f.NoTTL, f.WrongType, f.Unexpected, f.Stuck, f.StuckUnknownAge, f.Unreadable, f.TTL.Count}
	}
	for _, c := range []struct {
		f    *FamilyReport
		want counts
	}{
		{rep.Families[0], counts{keys: 4, noTTL: 2, wrongType: 1, unexpected: 1, ttlCount: 2}},
		{rep.Families[1], counts{keys: 6, noTTL: 2, wrongType: 1, unexpected: 1, stuck: 2, ttlCount: 4}},
		{rep.Deadlines, counts{keys: 8, noTTL: 7, wrongType: 1, unreadable: 1, ttlCount: 1}},
		{rep.Loners, counts{keys: 7, noTTL: 6, unreadable: 1, ttlCount: 1}},
	} {
		if g := got(c.f); g != c.want {
			t.Errorf("%s: got %+v, want %+v", c.f.Name, g, c.want)
		}
	}
	email := rep.Families[0]
	if email.TTL.MinSeconds > (24*time.Hour).Seconds() || email.TTL.MinSeconds < (24*time.Hour-time.Minute).Seconds() ||
		email.TTL.MaxSeconds > auditWeek.Seconds() || email.TTL.MaxSeconds < (auditWeek-time.Minute).Seconds() || email.TTL.Sampled {
		t.Errorf("email_sent TTL stats: %+v", email.TTL)
	}
	if fmt.Sprint(email.TopValues) != "[{true 2} {yes 1}]" || email.DistinctValues != 2 {
		t.Errorf("email_sent top values: %v (%d distinct)", email.TopValues, email.DistinctValues)
	}
	if n := len(rep.Families[1].Examples[ExampleStuck]); n != 2 {
		t.Errorf("payment: %d stuck examples, want 2", n)
	}

	d := rep.Deadlines.Orphans
	if want := (OrphanReport{Judged: true, Checked: 8, Orphans: 4, Expired: 1, Live: 1, Unreadable: 2, Fixable: 1}); d.Judged != want.Judged ||
		d.Checked != want.Checked || d.Orphans != want.Orphans || d.Expired != want.Expired || d.Live != want.Live ||
		d.Unreadable != want.Unreadable || d.Fixable != want.Fixable || len(d.Examples) != 4 {
		t.Errorf("deadline orphans: %+v", *d)
	}
	l := rep.Loners.Orphans
	if !l.Judged || l.Checked != 6 || l.Orphans != 4 || l.NoTTL != 3 || l.UnknownQueue != 1 || l.Fixable != 3 {
		t.Errorf("loner orphans: %+v", *l)
	}

	j := rep.Jobs
	if j.Jobs != 12 || j.Delayed != 2 || j.Queues != 2 || j.Buckets != 1 || j.LongestQueue != "default" || j.LongestQueueLength != 7 {
		t.Errorf("jobs: %+v", *j)
	}
	if want := (inspect.Counts{Jobs: 12, Expired: 2, Live: 5, Missing: 1, Unidentified: 3, Invalid: 1}); j.States != want {
		t.Errorf("states: got %+v, want %+v", j.States, want)
	}
	if j.MostOverdue == nil || j.MostOverdue.ID != "b1" || j.MostOverdue.Overdue != 3*time.Hour {
		t.Errorf("most overdue: %+v", j.MostOverdue)
	}
	if j.DuplicateIDs != 3 || j.DuplicatedIDs != 2 || j.IdenticalPayloads != 2 || j.DuplicatedPayloads != 2 || j.DuplicateJobs != 4 {
		t.Errorf("duplicates: ids %d (%d distinct), payloads %d (%d distinct), jobs %d",
			j.DuplicateIDs, j.DuplicatedIDs, j.IdenticalPayloads, j.DuplicatedPayloads, j.DuplicateJobs)
	}
	wantGroups := "[{default false SendEmailJob 1 1} {default false OtherJob 1 0} {default false Plain 0 1} {default true SendEmailJob 1 0}]"
	if g := fmt.Sprint(j.Groups); g != wantGroups {
		t.Errorf("groups:\n got %s\nwant %s", g, wantGroups)
	}
	if len(j.IDExamples) != 3 || j.IDExamples[0].ID != "a1" || j.IDExamples[2].DelayedAt == 0 || len(j.PayloadExamples) != 2 {
		t.Errorf("examples: %+v / %+v", j.IDExamples, j.PayloadExamples)
	}

	if rep.NoTTL() != 4 || rep.Stuck() != 2 || rep.Orphans() != 4 {
		t.Errorf("totals: no TTL %d, stuck %d, orphans %d", rep.NoTTL(), rep.Stuck(), rep.Orphans())
	}

	// Every finding is reported to OnFindings exactly once.
	byKey := map[string]Finding{}
	for _, f := range findings {
		if _, dup := byKey[f.Key]; dup {
			t.Errorf("finding for %s reported twice", f.Key)
		}
		byKey[f.Key] = f
	}
	for key, want := range map[string]string{
		"email_sent:2:welcome":        "noTTL",
		"email_sent:3:welcome":        "unexpected",
		"email_sent:4:welcome":        "noTTL wrongType",
		"payment:b":                   "noTTL stuck",
		"payment:c":                   "stuck",
		"payment:e":                   "unexpected",
		"payment:f":                   "noTTL wrongType",
		"resque:job:gone1:expiration": "noTTL orphan expired",
		"resque:job:gone2:expiration": "noTTL orphan",
		"resque:job:gone4:expiration": "noTTL wrongType orphan",
		"resque:loners:queue:default:job:" + auditMD5(`{"class":"Gone","args":[]}`):  "noTTL orphan",
		"resque:loners:queue:default:job:" + auditMD5(`{"class":"Gone","args":[1]}`): "orphan",
	} {
		f, ok := byKey[key]
		if !ok {
			t.Errorf("no finding for %s", key)
			continue
		}
		var flags []string
		for _, fl := range []struct {
			on   bool
			name string
		}{{f.NoTTL, "noTTL"}, {f.WrongType, "wrongType"}, {f.Unexpected, "unexpected"}, {f.Stuck, "stuck"}, {f.Orphan, "orphan"}, {f.Expired, "expired"}} {
			if fl.on {
				flags = append(flags, fl.name)
			}
		}
		if g := strings.Join(flags, " "); g != want {
			t.Errorf("%s: flags %q, want %q", key, g, want)
		}
	}
	if _, ok := byKey["payment:d"]; ok {
		t.Error("payment:d, in progress for 10 minutes, was reported")
	}
}

// A marker and its job that appear while the audit runs (after the
// markers were read) are not judged: only markers that existed before the
// jobs were read can be told orphaned.
func TestAuditLonerMarkerWrittenDuringAuditIsNotJudged(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	ctx := context.Background()
	auditDo(t, rdb, "SADD", "resque:queues", "default")
	auditDo(t, rdb, "RPUSH", "resque:queue:default", `{"class":"A","args":[1]}`)
	auditDo(t, rdb, "SET", "resque:loners:queue:default:job:"+auditMD5(`{"class":"Gone","args":[]}`), "1")
	late := "resque:loners:queue:default:job:" + auditMD5(`{"class":"Late","args":[]}`)
	opts := Options{Jobs: true, Loners: true}
	// SetTotal is called once the queues are found, after the markers were
	// read: the marker of a job pushed after its queue was read.
	opts.Progress = auditProgressFunc(func() {
		if err := rdb.Set(ctx, late, "1", 0).Err(); err != nil {
			t.Error(err)
		}
	})
	rep, err := Run(ctx, auditScanner(t, rdb, 3), opts)
	if err != nil {
		t.Fatal(err)
	}
	if o := rep.Loners.Orphans; o.Checked != 1 || o.Orphans != 1 || o.Examples[0].Key == late {
		t.Errorf("orphans: %+v", *o)
	}
}

type auditProgressFunc func()

func (p auditProgressFunc) SetTotal(int64) { p() }
func (p auditProgressFunc) Add(int)        {}

// Orphans are only judged when every job was read.
func TestAuditOrphansNeedEveryJob(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	auditSeed(t, rdb)
	ctx := context.Background()
	opts := auditAll()
	opts.Jobs = false
	rep, err := Run(ctx, auditScanner(t, rdb, 3), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deadlines.Orphans.Judged || rep.Loners.Orphans.Judged || rep.Orphans() != 0 || rep.Deadlines.Keys != 8 {
		t.Errorf("judged without jobs: %+v %+v", rep.Deadlines.Orphans, rep.Loners.Orphans)
	}
	s, err := inspect.NewScanner(rdb, inspect.Config{Layout: resque.MustLayout("resque", ""), Queues: []string{"mailers"}, Now: func() time.Time { return auditNow }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Run(ctx, s, auditAll())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deadlines.Orphans.Judged || rep.Loners.Orphans.Judged {
		t.Error("orphans judged with a queue filter")
	}
}

func TestAuditBounds(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	auditSeed(t, rdb)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		auditDo(t, rdb, "SET", fmt.Sprintf("many:%d", i), "v")
	}
	rep, err := Run(ctx, auditScanner(t, rdb, 3), Options{Families: []Family{{Pattern: "many:*"}}, ScanCount: 3, MaxKeys: 7})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Families[0]; f.Keys != 7 || !f.Partial || f.Stopped != stop.MaxKeys || !rep.Partial || rep.Stopped != stop.MaxKeys {
		t.Errorf("max-keys: keys %d partial %v %q / %v %q", f.Keys, f.Partial, f.Stopped, rep.Partial, rep.Stopped)
	}
	// One page holds them all, more than the limit: partial too.
	rep, err = Run(ctx, auditScanner(t, rdb, 3), Options{Families: []Family{{Pattern: "many:*"}}, ScanCount: 100, MaxKeys: 7})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Families[0]; f.Keys != 7 || !f.Partial || f.Stopped != stop.MaxKeys {
		t.Errorf("max-keys in one page: keys %d partial %v %q", f.Keys, f.Partial, f.Stopped)
	}
	// Exactly as many keys as the limit: complete.
	rep, err = Run(ctx, auditScanner(t, rdb, 3), Options{Families: []Family{{Pattern: "many:*"}}, ScanCount: 100, MaxKeys: 20})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Families[0]; f.Keys != 20 || f.Partial || rep.Partial {
		t.Errorf("max-keys at the total: keys %d partial %v", f.Keys, f.Partial)
	}

	opts := auditAll()
	opts.MaxDuration = time.Nanosecond
	rep, err = Run(ctx, auditScanner(t, rdb, 3), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Partial || rep.Stopped != stop.MaxDuration || !rep.Families[0].Skipped || !rep.Jobs.Partial ||
		rep.Deadlines.Orphans.Judged || rep.Loners.Orphans.Judged || rep.Orphans() != 0 {
		t.Errorf("max-duration: %+v", rep)
	}
}

// Values are counted up to the distinct-value cap, the rest as (other);
// the TTL percentiles come from a bounded sample.
func TestAuditStaysBounded(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for i := 0; i < valueCap+100; i++ {
		pipe.Set(ctx, fmt.Sprintf("v:%d", i), fmt.Sprintf("value-%d", i), 0)
	}
	pipe.Set(ctx, "v:long", strings.Repeat("é", 200), 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, auditScanner(t, rdb, 3), Options{Families: []Family{{Pattern: "v:*"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Families[0]
	last := f.TopValues[len(f.TopValues)-1]
	if f.DistinctValues != valueCap || last.Value != otherValue || last.Count != 101 || len(f.TopValues) != topValuesShown+1 {
		t.Errorf("distinct %d, top %d, last %+v", f.DistinctValues, len(f.TopValues), last)
	}

	acc := newTTLAcc("x")
	for i := 1; i <= 3*ttlSampleSize; i++ {
		acc.add(time.Duration(i) * time.Second)
	}
	st := acc.stats()
	if !st.Sampled || st.SampleSize != ttlSampleSize || st.Count != 3*ttlSampleSize || st.MinSeconds != 1 || st.MaxSeconds != 3*ttlSampleSize {
		t.Errorf("ttl stats: %+v", st)
	}
	if m := st.MedianSeconds; m < 0.4*3*ttlSampleSize || m > 0.6*3*ttlSampleSize {
		t.Errorf("sampled median %v far from %d", m, 3*ttlSampleSize/2)
	}
	var total int64
	for _, b := range st.Histogram {
		total += b.Keys
	}
	if total != st.Count {
		t.Errorf("histogram counts %d of %d", total, st.Count)
	}
}

func TestFamilyStuck(t *testing.T) {
	f := Family{Pattern: "p:*", TTL: time.Hour, StuckValue: "in_progress", StuckAfter: 10 * time.Minute}
	noTTLAge := Family{Pattern: "p:*", StuckValue: "in_progress", StuckAfter: 10 * time.Minute}
	for _, c := range []struct {
		f              Family
		st             keyState
		stuck, unknown bool
	}{
		{f, keyState{value: "in_progress", hasValue: true, ttl: -1}, true, false},
		{f, keyState{value: "in_progress", hasValue: true, ttl: 49 * time.Minute}, true, false}, // 11m old
		{f, keyState{value: "in_progress", hasValue: true, ttl: 51 * time.Minute}, false, false},
		{f, keyState{value: "completed", hasValue: true, ttl: -1}, false, false},
		{noTTLAge, keyState{value: "in_progress", hasValue: true, ttl: time.Minute}, false, true},
		{noTTLAge, keyState{value: "in_progress", hasValue: true, ttl: -1}, true, false},
	} {
		if s, u := c.f.stuck(c.st); s != c.stuck || u != c.unknown {
			t.Errorf("%+v %+v: stuck %v unknown %v", c.f, c.st, s, u)
		}
	}
}

func TestLonerDigests(t *testing.T) {
	for _, c := range []struct {
		payload string
		want    []string // the Ruby-encoded strings whose MD5 are expected
	}{
		{`{"class":"A","args":[1,"x"]}`, []string{`{"class":"A","args":[1,"x"]}`}},
		// Key order class, args; other fields dropped; compact.
		{`{ "args" : [ 1.5, null, true ], "queue": "q", "class": "A" }`, []string{`{"class":"A","args":[1.5,null,true]}`}},
		// Ruby escapes only '"', '\' and control characters.
		{`{"class":"A","args":["a\/b","\u00e9\u003c","t\u0001\n"]}`, []string{"{\"class\":\"A\",\"args\":[\"a/b\",\"é<\",\"t\\u0001\\n\"]}"}},
		// Hash arguments: sorted pairs (resque-loner 1.x), then as they are.
		{`{"class":"A","args":[{"b":{"y":1,"x":2},"a":[]},3]}`, []string{
			`{"class":"A","args":[[["a",[]],["b",{"y":1,"x":2}]],3]}`,
			`{"class":"A","args":[{"b":{"y":1,"x":2},"a":[]},3]}`}},
		{`{"class":"A","args":[{}]}`, []string{`{"class":"A","args":[[]]}`, `{"class":"A","args":[{}]}`}},
		{`{"args":[]}`, []string{`{"class":null,"args":[]}`}},
		{`{"class":"A"}`, nil},
		{`{"class":"A","args":{}}`, nil},
		{`[1]`, nil},
	} {
		var want []string
		for _, w := range c.want {
			want = append(want, auditMD5(w))
		}
		if got := new(lonerDigester).digests([]byte(c.payload)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v (of %q)", c.payload, got, want, c.want)
		}
	}
}

func TestParseLoner(t *testing.T) {
	l := resque.MustLayout("resque", "")
	for key, want := range map[string]string{
		"resque:loners:queue:default:job:abc": "default abc true",
		"resque:loners:queue:a:job:b:job:abc": "a:job:b abc true",
		"resque:loners:queue:default":         "  false",
		"resque:loners:queue::job:abc":        "  false",
		"resque:loners:queue:default:job:":    "  false",
		"other:loners:queue:default:job:abc":  "  false",
	} {
		q, d, ok := parseLoner(l, key)
		if got := fmt.Sprintf("%s %s %v", q, d, ok); got != want {
			t.Errorf("%s: got %q, want %q", key, got, want)
		}
	}
	if q, _, ok := parseLoner(resque.MustLayout("", ""), "loners:queue:q:job:d"); !ok || q != "q" {
		t.Error("no namespace")
	}
}

func TestParseFamilies(t *testing.T) {
	fs, err := parseFamilies([]byte(`
families:
  - name: payments
    pattern: "payment:*"
    ttl: 7d
    values: [in_progress, completed, failed]
    stuck_value: in_progress
    stuck_after: 90m
  - pattern: "email_sent:*"
    ttl: 1w
    values: [true]
    type: string
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Family{
		{Name: "payments", Pattern: "payment:*", TTL: auditWeek, Values: []string{"in_progress", "completed", "failed"}, StuckValue: "in_progress", StuckAfter: 90 * time.Minute},
		{Pattern: "email_sent:*", TTL: auditWeek, Values: []string{"true"}, Type: "string"},
	}
	if fmt.Sprintf("%+v", fs) != fmt.Sprintf("%+v", want) {
		t.Errorf("got %+v\nwant %+v", fs, want)
	}
	if fs, err := parseFamilies([]byte("- pattern: 'a:*'\n  ttl: 1w2d3h\n")); err != nil || fs[0].TTL != 9*24*time.Hour+3*time.Hour {
		t.Errorf("bare list: %+v %v", fs, err)
	}
	for _, bad := range []string{
		"", "families: []", "- name: x", "- pattern: a\n  tll: 1h", "- pattern: a\n  ttl: soon",
		"- pattern: a\n  stuck_after: 1h", "- pattern: a\n  type: blob", "other: 1", "- pattern: [a]", "- pattern: a\n  values: x",
	} {
		if _, err := parseFamilies([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestThresholds(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	d := time.Hour
	rep := &Report{
		Families:  []*FamilyReport{{NoTTL: 2, Stuck: 1}, {NoTTL: 1}},
		Deadlines: &FamilyReport{Orphans: &OrphanReport{Fixable: 2}},
		Loners:    &FamilyReport{Orphans: &OrphanReport{Fixable: 1}},
		Jobs: &JobsReport{States: inspect.Counts{Expired: 5, Missing: 1}, DuplicateJobs: 3, LongestQueue: "q", LongestQueueLength: 10,
			MostOverdue: &inspect.JobRef{ID: "j", Overdue: 2 * time.Hour}},
	}
	th := Thresholds{MaxExpired: n(5), MaxMissing: n(0), MaxInvalid: n(0), MaxOrphans: n(3), MaxNoTTL: n(2), MaxStuck: n(1),
		MaxDuplicates: n(3), MaxQueueLength: n(9), MaxOverdue: &d}
	var got []string
	for _, r := range th.Evaluate(rep) {
		got = append(got, fmt.Sprintf("%s=%d/%d:%v", r.Name, r.Value, r.Limit, r.Pass))
	}
	want := "expired=5/5:true missing=1/0:false invalid=0/0:true orphans=3/3:true no-ttl=3/2:false stuck=1/1:true duplicates=3/3:true queue-length=10/9:false overdue=7200/3600:false"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	if o := (Thresholds{MaxStuck: n(0)}).Options(DefaultFamilies()); o.Jobs || o.Deadlines || len(o.Families) != 2 {
		t.Errorf("stuck reads %+v", o)
	}
	if o := (Thresholds{MaxOrphans: n(0)}).Options(DefaultFamilies()); !o.Jobs || !o.Deadlines || !o.Loners || len(o.Families) != 0 {
		t.Errorf("orphans read %+v", o)
	}
	if (Thresholds{}).Any() {
		t.Error("no thresholds, yet Any")
	}
}

// hashSet behaves like a map[uint64]bool, reserved values included, and
// stays within 21 bytes per entry.
func TestHashSet(t *testing.T) {
	var s hashSet
	ref := map[uint64]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		h := rng.Uint64() % 50000 // many repeats
		if i%7 == 0 {
			h = uint64(i % 3) // the reserved values and a neighbour
		}
		switch rng.IntN(4) {
		case 0:
			if got, want := s.remove(h), ref[h]; got != want {
				t.Fatalf("remove(%d) = %v, want %v", h, got, want)
			}
			delete(ref, h)
		default:
			if got, want := s.add(h), !ref[h]; got != want {
				t.Fatalf("add(%d) = %v, want %v", h, got, want)
			}
			ref[h] = true
		}
		if s.len() != len(ref) {
			t.Fatalf("len %d, want %d", s.len(), len(ref))
		}
	}
	for h := uint64(0); h < 50000; h++ {
		if s.has(h) != ref[h] {
			t.Fatalf("has(%d) = %v", h, s.has(h))
		}
	}
	var big hashSet
	const n = 1 << 20
	for i := 0; i < n; i++ {
		big.add(rng.Uint64())
	}
	if perEntry := float64(len(big.slots)*8) / n; big.len() != n || perEntry > 21.4 {
		t.Errorf("%d entries in %d slots: %.1f bytes each", big.len(), len(big.slots), perEntry)
	}
}

// TestAuditHeldDeadlineOrphans: an expired orphaned deadline key whose TTL
// already ends within OrphanHold (a sweep --orphans or a fix gave it the
// hold) is held, not fixable; without TTL or with a longer one it is.
func TestAuditHeldDeadlineOrphans(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Start(t))
	ctx := context.Background()
	past := strconv.FormatInt(auditNow.Add(-time.Hour).Unix(), 10)
	for k, ttl := range map[string]time.Duration{
		"resque:job:no-ttl:expiration": 0,
		"resque:job:held:expiration":   inspect.OrphanHold,
		"resque:job:soon:expiration":   time.Minute,
		"resque:job:long:expiration":   inspect.OrphanHold + time.Minute,
	} {
		if err := rdb.Set(ctx, k, past, ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	held := map[string]bool{}
	opts := Options{Jobs: true, Deadlines: true}
	opts.OnFindings = func(_ context.Context, fs []Finding) error {
		for _, fd := range fs {
			if !fd.Orphan || !fd.Expired {
				t.Errorf("finding %+v", fd)
			}
			held[fd.Key] = fd.Held
		}
		return nil
	}
	rep, err := Run(ctx, auditScanner(t, rdb, 3), opts)
	if err != nil {
		t.Fatal(err)
	}
	if o := rep.Deadlines.Orphans; o.Orphans != 4 || o.Expired != 4 || o.Held != 2 || o.Fixable != 2 || rep.Orphans() != 2 {
		t.Errorf("orphans %+v, report's Orphans() %d", *o, rep.Orphans())
	}
	want := map[string]bool{"resque:job:no-ttl:expiration": false, "resque:job:held:expiration": true,
		"resque:job:soon:expiration": true, "resque:job:long:expiration": false}
	if fmt.Sprint(held) != fmt.Sprint(want) {
		t.Errorf("held:\n got %v\nwant %v", held, want)
	}
}
