package e2e

// Hostile and odd input: payloads and ids that are not what Resque writes,
// keys of the wrong type wherever the tool reads, namespaces and queue
// names full of glob characters, odd deadlines. Each is reported (inspect
// and list show its state, or a problem goes to stderr) and left exactly
// where it is; the sweep removes only the truly expired control jobs seeded
// beside it; nothing crashes.

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// hstJob is one seeded list element with what the tool must make of it.
type hstJob struct {
	payload  string
	id       string // "" when the deadline key is not to be set
	deadline string // value of the deadline key ("" = none)
	// state is what list must report; remove whether sweep must take it.
	state  string
	remove bool
}

// hstPayload builds a plain Resque payload with the given id.
func hstPayload(class, id string, extra ...string) string {
	b, _ := json.Marshal(id)
	s := `{"class":"` + class + `","args":[1,"two"],"id":` + string(b)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

func hstPast() string   { return fmt.Sprint(time.Now().Add(-2 * time.Hour).Unix()) }
func hstFuture() string { return fmt.Sprint(time.Now().Add(2 * time.Hour).Unix()) }

// hstControls returns a truly expired and a live job for queue q.
func hstControls(q string) []hstJob {
	exp, live := "ctl-exp-"+q, "ctl-live-"+q
	return []hstJob{
		{payload: hstPayload("Control", exp), id: exp, deadline: hstPast(), state: "expired", remove: true},
		{payload: hstPayload("Control", live), id: live, deadline: hstFuture(), state: "live"},
	}
}

// hstSeed pushes jobs onto queue q of layout (registering q) and sets their
// deadline keys.
func hstSeed(t *testing.T, rdb *redis.Client, l resque.Layout, q string, jobs []hstJob) {
	t.Helper()
	s := redistest.Seed(t, rdb, l)
	if typ := rdb.Type(context.Background(), l.Queues()).Val(); typ == "set" || typ == "none" {
		s.Register(q)
	}
	seeded := make([]redistest.Job, len(jobs))
	for i, j := range jobs {
		seeded[i] = redistest.Job{Payload: j.payload, ID: j.id, Deadline: j.deadline}
	}
	s.Push(q, seeded...)
}

// hstOK runs the binary and expects exit 0 without a crash.
func hstOK(t *testing.T, srv *redisserver.Server, args ...string) result {
	t.Helper()
	r := run(t, srv, args...)
	fltNoCrash(t, r)
	return r.expect(t, 0)
}

// hstListed is one line of `list --format jsonl`.
type hstListed struct {
	Queue   string `json:"queue"`
	ID      string `json:"id"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Payload string `json:"payload"`
}

func hstList(t *testing.T, srv *redisserver.Server, args ...string) []hstListed {
	t.Helper()
	r := hstOK(t, srv, append([]string{"--format", "jsonl", "--log-level", "error", "list"}, args...)...)
	var out []hstListed
	for _, l := range r.lines() {
		var j hstListed
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("list line is not JSON: %v: %q", err, l)
		}
		out = append(out, j)
	}
	return out
}

// hstProblems returns the kind and key of every warning logged with a key.
func hstProblems(t *testing.T, r result) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range r.logs(t) {
		if k, ok := l["key"].(string); ok {
			kind, _ := l["kind"].(string)
			out[k] = kind
		}
	}
	return out
}

// hstCheckQueue checks that queue q of l holds exactly the jobs that must
// stay, in their order, no marker, and that deadline keys of removed jobs
// are gone while the others are untouched.
func hstCheckQueue(t *testing.T, rdb *redis.Client, l resque.Layout, q string, jobs []hstJob) {
	t.Helper()
	ctx := context.Background()
	var want []string
	for _, j := range jobs {
		if !j.remove {
			want = append(want, j.payload)
		}
	}
	got, err := rdb.LRange(ctx, l.Queue(q), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		if strings.HasPrefix(v, fltMarkerPrefix) && !hstSeeded(jobs, v) {
			t.Errorf("queue %q holds a removal marker", q)
		}
	}
	if strings.Join(got, "\x01") != strings.Join(want, "\x01") {
		t.Errorf("queue %q after the sweep: %d jobs, want the %d that must stay, in order", q, len(got), len(want))
		wantSet := map[string]bool{}
		for _, w := range want {
			wantSet[w] = true
		}
		gotSet := map[string]bool{}
		for _, g := range got {
			gotSet[g] = true
			if !wantSet[g] {
				t.Errorf("  still there, should be gone: %.120q", g)
			}
		}
		for _, w := range want {
			if !gotSet[w] {
				t.Errorf("  gone, should be there: %.120q", w)
			}
		}
	}
	for _, j := range jobs {
		if j.id == "" || j.deadline == "" {
			continue
		}
		v, err := rdb.Get(ctx, l.Expiration(j.id)).Result()
		switch {
		case j.remove && err != redis.Nil:
			t.Errorf("deadline key of removed job %q is still there (%q, %v)", j.id, v, err)
		case !j.remove && (err != nil || v != j.deadline):
			t.Errorf("deadline key of kept job %q changed: %q, %v", j.id, v, err)
		}
	}
}

// hstJSONString is s as it comes back from a JSON string: JSON output
// replaces bytes that are not UTF-8 with U+FFFD.
func hstJSONString(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func hstSeeded(jobs []hstJob, v string) bool {
	for _, j := range jobs {
		if j.payload == v {
			return true
		}
	}
	return false
}

// hstCheckStates checks that list reports each job of queue q in its state.
func hstCheckStates(t *testing.T, listed []hstListed, q string, jobs []hstJob) {
	t.Helper()
	byPayload := map[string]hstListed{}
	for _, l := range listed {
		if l.Queue == q {
			byPayload[l.Payload] = l
		}
	}
	for _, j := range jobs {
		l, ok := byPayload[hstJSONString(j.payload)]
		switch {
		case !ok:
			t.Errorf("list does not show %.80q (id %q) in %q", j.payload, j.id, q)
		case l.State != j.state:
			t.Errorf("list shows %.80q (id %q, deadline %q) as %s (%s), want %s", j.payload, j.id, j.deadline, l.State, l.Reason, j.state)
		case (l.State == "invalid" || l.State == "unidentified") && l.Reason == "":
			t.Errorf("list shows %.80q as %s without a reason", j.payload, l.State)
		}
	}
}

// TestHostilePayloads: payloads that are not JSON, JSON that is not an
// object, huge and binary payloads, a value that looks like a removal
// marker, and ids full of glob and key-separator characters. list shows
// each in its state; sweep (archiving) removes exactly the expired ones
// with a well-formed payload, whatever their id, and nothing else.
func TestHostilePayloads(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	past, future := hstPast(), hstFuture()
	huge := strings.Repeat("x", 5<<20)

	jobs := hstControls("hostile")
	add := func(j hstJob) { jobs = append(jobs, j) }
	// Not JSON, or not an object: invalid, even when an id-looking string
	// has an expired deadline key.
	add(hstJob{payload: "this is not json", state: "invalid"})
	add(hstJob{payload: `{"class":"Trunc","id":"trunc-1"`, id: "trunc-1", deadline: past, state: "invalid"})
	add(hstJob{payload: `[{"class":"Arr","id":"arr-1"}]`, id: "arr-1", deadline: past, state: "invalid"})
	for _, p := range []string{`"just a string"`, `42`, `null`, `true`, ``, ` `} {
		add(hstJob{payload: p, state: "invalid"})
	}
	add(hstJob{payload: `{}`, state: "unidentified"})
	add(hstJob{payload: `{"class":"NoID","args":[]}`, state: "unidentified"})
	add(hstJob{payload: `{"class":"NullID","id":null}`, state: "unidentified"})
	add(hstJob{payload: `{"class":"EmptyID","id":""}`, state: "unidentified"})
	add(hstJob{payload: `{"class":"ObjID","id":{"a":1}}`, state: "unidentified"})
	// Binary bytes: not JSON; and raw non-UTF-8 bytes inside a JSON id.
	add(hstJob{payload: "\x00\xff\xfe\x01binary\x00", state: "invalid"})
	add(hstJob{payload: "\x1f\x8b\x08\x00gzip?", state: "invalid"})
	// JSON must be UTF-8 (RFC 8259): a payload with raw non-UTF-8 bytes
	// cannot be archived, logged or failed as it is (JSON output turns the
	// bytes into U+FFFD), so it is invalid and left alone, even expired.
	add(hstJob{payload: `{"class":"Bin","id":"bin-` + "\xff\xfe" + `"}`, id: "bin-\xff\xfe", deadline: future, state: "invalid"})
	add(hstJob{payload: `{"class":"Bin","id":"binx-` + "\xff\xfe" + `"}`, id: "binx-\xff\xfe", deadline: past, state: "invalid"})
	add(hstJob{payload: `{"class":"Bin","id":"bin-ok","args":["` + "caf\xe9" + `"]}`, id: "bin-ok", deadline: past, state: "invalid"})
	// Something that looks like the sweep's marker but is somebody's data.
	add(hstJob{payload: fltMarkerPrefix + "0123456789abcdef0123456789abcdef", state: "invalid"})
	// Huge payloads: a live one stays, an expired one goes (and is archived).
	add(hstJob{payload: hstPayload("Huge", "huge-live", `"blob":"`+huge+`"`), id: "huge-live", deadline: future, state: "live"})
	add(hstJob{payload: hstPayload("Huge", "huge-exp", `"blob":"`+huge+`"`), id: "huge-exp", deadline: past, state: "expired", remove: true})
	// Ids with glob, key-separator and control characters: each live one
	// stays and each expired one goes, touching no other key.
	for _, odd := range []string{"*", "?", "[a-z]", "[", "\\*", "a:b", ":", "has space", "new\nline", "tab\there",
		"nul\x00byte", "ünïcødé-キュー", "{id}", "{ns}", "%s%d", "job:x:expiration", "../../etc"} {
		add(hstJob{payload: hstPayload("Odd", odd), id: odd, deadline: future, state: "live"})
		add(hstJob{payload: hstPayload("Odd", "exp"+odd), id: "exp" + odd, deadline: past, state: "expired", remove: true})
	}
	// A live job whose id is a prefix of an expired one's, and the reverse.
	add(hstJob{payload: hstPayload("Prefix", "pre"), id: "pre", deadline: future, state: "live"})
	add(hstJob{payload: hstPayload("Prefix", "pre:fix"), id: "pre:fix", deadline: past, state: "expired", remove: true})
	hstSeed(t, rdb, defaultLayout, "hostile", jobs)
	// Keys that glob ids would match if the tool ever sent them as patterns.
	bystanders := []string{"resque:job:anything:expiration", "resque:job:a:expiration", "resque:job:-:expiration"}
	for _, k := range bystanders {
		rdb.Set(ctx, k, past, 0)
	}

	listed := hstList(t, srv)
	hstCheckStates(t, listed, "hostile", jobs)
	var sum struct {
		Totals struct {
			Jobs int64 `json:"jobs"`
		} `json:"totals"`
	}
	hstOK(t, srv, "--format", "json", "inspect").decode(t, &sum)
	if sum.Totals.Jobs != int64(len(jobs)) {
		t.Errorf("inspect counts %d jobs, want %d", sum.Totals.Jobs, len(jobs))
	}
	var dry fltSweepJSON
	hstOK(t, srv, "--format", "json", "sweep", "--dry-run").decode(t, &dry)
	wantRemoved := 0
	for _, j := range jobs {
		if j.remove {
			wantRemoved++
		}
	}
	if dry.Removed != int64(wantRemoved) {
		t.Errorf("dry run would remove %d, want %d", dry.Removed, wantRemoved)
	}

	archive := t.TempDir() + "/removed.jsonl"
	var res fltSweepJSON
	hstOK(t, srv, "--format", "json", "--log-level", "warn", "sweep", "--yes", "--archive", archive).decode(t, &res)
	if res.Removed != int64(wantRemoved) {
		t.Errorf("sweep removed %d, want %d", res.Removed, wantRemoved)
	}
	hstCheckQueue(t, rdb, defaultLayout, "hostile", jobs)
	for _, k := range bystanders {
		if rdb.Exists(ctx, k).Val() != 1 {
			t.Errorf("a sweep without --orphans deleted %q", k)
		}
	}
	recs := fltArchive(t, archive)
	got := map[string]bool{}
	for _, r := range recs {
		got[r.ID] = true
	}
	for _, j := range jobs {
		if j.remove && !got[j.id] {
			t.Errorf("removed job %q is not in the archive", j.id)
		}
	}
	// A second sweep finds nothing more to do.
	var again fltSweepJSON
	hstOK(t, srv, "--format", "json", "--log-level", "warn", "sweep", "--yes").decode(t, &again)
	if again.Removed != 0 {
		t.Errorf("second sweep removed %d more", again.Removed)
	}
	hstCheckQueue(t, rdb, defaultLayout, "hostile", jobs)
}

// TestHostileDeadlines: deadline values of every odd kind. Unbelievable ones
// (0, negative, past the year 9999, NaN, exponents, hex, words, empty) are
// invalid and left in place; the year 3000 is live; believable past ones
// are expired.
func TestHostileDeadlines(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	jobs := hstControls("deadlines")
	cases := []struct {
		deadline, state string
	}{
		{"0", "invalid"},
		{"-5", "invalid"},
		{"-0", "invalid"},
		{"32503680000", "live"},     // 3000-01-01
		{"32503680000000", "live"},  // 3000-01-01 in milliseconds
		{"253402300800", "invalid"}, // 10000-01-01
		{"3000-01-01T00:00:00Z", "live"},
		{"10000-01-01T00:00:00Z", "invalid"},
		{"NaN", "invalid"},
		{"nan", "invalid"},
		{"Infinity", "invalid"},
		{"1e9", "invalid"},
		{"1.5e9", "invalid"},
		{"0x10", "invalid"},
		{"+5", "invalid"},
		{"", "invalid"},
		{"   ", "invalid"},
		{"tomorrow", "invalid"},
		{"12abc", "invalid"},
		{"99999999999999999999999", "invalid"}, // overflows int64
		{"1700000000.5", "expired"},            // 2023, decimal seconds
		{"1700000000500", "expired"},           // 2023, milliseconds
		{"2023-11-14T22:13:20Z", "expired"},
		{" " + hstPast() + " ", "expired"}, // padded, but a believable past deadline
	}
	for i, c := range cases {
		id := fmt.Sprintf("dl-%02d", i)
		jobs = append(jobs, hstJob{payload: hstPayload("Deadline", id), id: id, deadline: c.deadline, state: c.state,
			remove: c.state == "expired"})
	}
	hstSeed(t, rdb, defaultLayout, "deadlines", jobs)
	// An empty string value must be stored (hstSeed skips empty deadlines).
	for i, c := range cases {
		if c.deadline == "" {
			rdb.Set(context.Background(), defaultLayout.Expiration(fmt.Sprintf("dl-%02d", i)), "", 0)
		}
	}
	listed := hstList(t, srv)
	byID := map[string]hstListed{}
	for _, l := range listed {
		byID[l.ID] = l
	}
	for i, c := range cases {
		id := fmt.Sprintf("dl-%02d", i)
		if l := byID[id]; l.State != c.state {
			t.Errorf("deadline %q: list says %s (%s), want %s", c.deadline, l.State, l.Reason, c.state)
		}
	}
	hstOK(t, srv, "inspect")
	hstOK(t, srv, "--log-level", "warn", "sweep", "--yes")
	// hstCheckQueue compares deadline values; the empty one is special.
	for i := range jobs {
		if jobs[i].deadline == "" && jobs[i].id != "" {
			jobs[i].id = ""
		}
	}
	hstCheckQueue(t, rdb, defaultLayout, "deadlines", jobs)
}

// TestHostileNamespaceGlob: --namespace 're[s]que*' reads and writes only
// its own keys. Unescaped, its SCAN patterns would match every resque:*
// key; the resque:* data (with expired jobs and orphaned deadline keys of
// its own) must come through inspect, list and sweep --orphans untouched.
func TestHostileNamespaceGlob(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	const ns = "re[s]que*"
	odd := resque.MustLayout(ns, "")
	oddJobs := hstControls("q")
	hstSeed(t, rdb, odd, "q", oddJobs)
	rdb.Set(ctx, odd.Expiration("odd-orphan"), hstPast(), 0)
	// Bystanders: the default namespace and look-alikes the glob matches.
	for _, other := range []string{"resque", "resqueX", "re[s]que", "rexque*"} {
		l := resque.MustLayout(other, "")
		hstSeed(t, rdb, l, "q", hstControls("q"))
		rdb.Set(ctx, l.Expiration("orphan-"+other), hstPast(), 0)
		rdb.RPush(ctx, l.Queue("unregistered"), hstPayload("Stray", "stray-"+other))
		rdb.Set(ctx, l.Expiration("stray-"+other), hstPast(), 0)
	}
	isOdd := func(k string) bool { return strings.HasPrefix(k, ns+":") }
	before := redistest.Dump(t, rdb, func(k string) bool { return !isOdd(k) })

	var sum struct {
		Queues []struct {
			Queue string `json:"queue"`
			Jobs  int64  `json:"jobs"`
		} `json:"queues"`
		Totals struct {
			Jobs int64 `json:"jobs"`
		} `json:"totals"`
	}
	hstOK(t, srv, "--namespace", ns, "--format", "json", "inspect").decode(t, &sum)
	if sum.Totals.Jobs != int64(len(oddJobs)) || len(sum.Queues) != 1 {
		t.Errorf("inspect --namespace %q sees %d jobs in %d queues, want %d in 1: %+v", ns, sum.Totals.Jobs, len(sum.Queues), len(oddJobs), sum.Queues)
	}
	if n := len(hstList(t, srv, "--namespace", ns)); n != len(oddJobs) {
		t.Errorf("list --namespace %q shows %d jobs, want %d", ns, n, len(oddJobs))
	}
	var res fltSweepJSON
	hstOK(t, srv, "--namespace", ns, "--format", "json", "--log-level", "warn", "sweep", "--yes", "--orphans").decode(t, &res)
	if res.Removed != 1 {
		t.Errorf("sweep --namespace %q removed %d, want 1", ns, res.Removed)
	}
	hstCheckQueue(t, rdb, odd, "q", oddJobs)
	if o := res.Orphans; o == nil || o.Orphans != 1 || o.Expired != 1 || o.HoldSeconds != 3600 {
		t.Errorf("sweep --namespace %q --orphans: orphans %+v, want the one expired orphan held for 3600s", ns, o)
	}
	// Orphans are never deleted: the namespace's own expired orphan is set
	// to vanish within the hold (1h).
	if pttl := rdb.PTTL(ctx, odd.Expiration("odd-orphan")).Val(); pttl <= 0 || pttl > time.Hour {
		t.Errorf("the namespace's own expired orphan has TTL %v, want at most 1h", pttl)
	}
	redistest.SameDump(t, fmt.Sprintf("sweep --namespace %q --orphans", ns), before, redistest.Dump(t, rdb, func(k string) bool { return !isOdd(k) }))
}

// TestHostileQueueNames: queue names with spaces, unicode, glob and
// separator characters are read, filtered with --queue (client-side
// globs, escaped where they would match) and swept like any other.
func TestHostileQueueNames(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	names := []string{"with space", "ünïcødé-キュー", "star*", "*", "[x]", "x", "colon:name", "new\nline", "tab\tq", "emoji-🚀"}
	jobs := map[string][]hstJob{}
	for _, q := range names {
		jobs[q] = hstControls(q)
		hstSeed(t, rdb, defaultLayout, q, jobs[q])
	}
	listed := hstList(t, srv)
	for _, q := range names {
		hstCheckStates(t, listed, q, jobs[q])
	}
	// --queue '\*' selects the queue named "*" only; '[x]' as a glob
	// selects "x", and '\[x\]' the queue named "[x]".
	for pattern, want := range map[string][]string{
		`\*`:    {"*"},
		`[x]`:   {"x"},
		`\[x\]`: {"[x]"},
		`ünï*`:  {"ünïcødé-キュー"},
		`* *`:   {"with space"},
	} {
		var got []string
		for _, l := range hstList(t, srv, "--queue", pattern) {
			got = append(got, l.Queue)
		}
		got = hstUniq(got)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("--queue %q selects %q, want %q", pattern, got, want)
		}
	}
	hstOK(t, srv, "--log-level", "warn", "sweep", "--yes", "--queue", `\*`)
	for _, q := range names {
		if q == "*" {
			hstCheckQueue(t, rdb, defaultLayout, q, jobs[q])
		} else if n := rdb.LLen(context.Background(), defaultLayout.Queue(q)).Val(); n != 2 {
			t.Errorf("sweep --queue '\\*' touched queue %q (%d jobs left)", q, n)
		}
	}
	hstOK(t, srv, "--log-level", "warn", "sweep", "--yes")
	for _, q := range names {
		hstCheckQueue(t, rdb, defaultLayout, q, jobs[q])
	}
}

func hstUniq(ss []string) []string {
	sort.Strings(ss)
	var out []string
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// TestHostileWrongTypes: a key of the wrong type at every place the tool
// reads. Each case lives in its own namespace beside a truly expired and a
// live control job. inspect and list exit 0 and report the key; sweep exits
// 0, removes the expired control and leaves the odd key exactly as it was.
func TestHostileWrongTypes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	now := time.Now().Unix()

	type wtCase struct {
		name string
		// setup seeds the odd keys of layout l and returns the keys whose
		// report is expected on stderr ("" for none) and extra jobs of
		// queue "ok" (beside the controls).
		setup func(l resque.Layout) (reported string, extra []hstJob)
		// sweepArgs are extra sweep flags.
		sweepArgs []string
	}
	cases := []wtCase{
		{name: "queue-string", setup: func(l resque.Layout) (string, []hstJob) {
			rdb.SAdd(ctx, l.Queues(), "odd")
			rdb.Set(ctx, l.Queue("odd"), hstPayload("X", "x"), 0)
			return l.Queue("odd"), nil
		}},
		{name: "queue-hash", setup: func(l resque.Layout) (string, []hstJob) {
			rdb.SAdd(ctx, l.Queues(), "odd")
			rdb.HSet(ctx, l.Queue("odd"), "a", "b")
			return l.Queue("odd"), nil
		}},
		{name: "queue-zset-unregistered", setup: func(l resque.Layout) (string, []hstJob) {
			rdb.ZAdd(ctx, l.Queue("odd"), redis.Z{Score: 1, Member: "m"})
			return l.Queue("odd"), nil
		}},
		{name: "queues-string", setup: func(l resque.Layout) (string, []hstJob) {
			// Registered queues are then found by SCAN only; the
			// controls' queue list exists, so it is still swept.
			rdb.Set(ctx, l.Queues(), "ok", 0)
			return l.Queues(), nil
		}},
		{name: "schedule-list", setup: func(l resque.Layout) (string, []hstJob) {
			rdb.RPush(ctx, l.DelayedSchedule(), fmt.Sprint(now+60))
			return l.DelayedSchedule(), nil
		}},
		{name: "bucket-set", setup: func(l resque.Layout) (string, []hstJob) {
			at := now + 60
			rdb.ZAdd(ctx, l.DelayedSchedule(), redis.Z{Score: float64(at), Member: fmt.Sprint(at)})
			rdb.SAdd(ctx, l.Delayed(at), hstPayload("X", "x"))
			return l.Delayed(at), nil
		}},
		{name: "schedule-garbage-member", setup: func(l resque.Layout) (string, []hstJob) {
			rdb.ZAdd(ctx, l.DelayedSchedule(), redis.Z{Score: float64(now), Member: "not-a-time"})
			return l.DelayedSchedule(), nil
		}},
		{name: "expiration-hash-and-list", setup: func(l resque.Layout) (string, []hstJob) {
			rdb.HSet(ctx, l.Expiration("exp-hash"), "at", fmt.Sprint(now-3600))
			rdb.RPush(ctx, l.Expiration("exp-list"), fmt.Sprint(now-3600))
			rdb.SAdd(ctx, l.Expiration("exp-set"), fmt.Sprint(now-3600))
			return "", []hstJob{
				{payload: hstPayload("X", "exp-hash"), state: "invalid"},
				{payload: hstPayload("X", "exp-list"), state: "invalid"},
				{payload: hstPayload("X", "exp-set"), state: "invalid"},
			}
		}},
		{name: "failed-hash", setup: func(l resque.Layout) (string, []hstJob) {
			rdb.HSet(ctx, l.Failed(), "a", "b")
			return l.Failed(), nil
		}},
		{name: "journal-string", setup: func(l resque.Layout) (string, []hstJob) {
			rdb.Set(ctx, l.Journal(), "not a journal", 0)
			return "", nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := "wt-" + c.name
			l := resque.MustLayout(ns, "")
			reported, extra := c.setup(l)
			jobs := append(hstControls("ok"), extra...)
			hstSeed(t, rdb, l, "ok", jobs)
			isControl := func(k string) bool {
				return k == l.Queue("ok") || strings.HasPrefix(k, ns+":job:ctl-") || k == l.Queues() && c.name != "queues-string" ||
					k == l.Stats() // the removal counter: the expired control's removal is counted
			}
			odd := func(k string) bool { return strings.HasPrefix(k, ns+":") && !isControl(k) }
			before := redistest.Dump(t, rdb, odd)

			r := hstOK(t, srv, "--namespace", ns, "inspect")
			if reported != "" {
				if _, ok := hstProblems(t, r)[reported]; !ok {
					t.Errorf("inspect does not report %q on stderr:\n%s", reported, r.stderr)
				}
			}
			hstCheckStates(t, hstList(t, srv, "--namespace", ns), "ok", jobs)
			r = hstOK(t, srv, "--namespace", ns, "list")
			if reported != "" && reported != l.Failed() {
				if _, ok := hstProblems(t, r)[reported]; !ok {
					t.Errorf("list does not report %q on stderr:\n%s", reported, r.stderr)
				}
			}
			hstOK(t, srv, "--namespace", ns, "sweep", "--dry-run")
			r = hstOK(t, srv, append([]string{"--namespace", ns, "--format", "json", "sweep", "--yes"}, c.sweepArgs...)...)
			var res fltSweepJSON
			r.decode(t, &res)
			if res.Removed != 1 {
				t.Errorf("sweep removed %d, want the 1 expired control", res.Removed)
			}
			hstCheckQueue(t, rdb, l, "ok", jobs)
			redistest.SameDump(t, "inspect, list and sweep", before, redistest.Dump(t, rdb, odd))
		})
	}
}

// TestHostileWrongTypeWriteTargets: keys the removal script writes besides
// the list — the failed list (--to-failed), the journal (--archive), a
// delayed job's timestamps set — hold another type. The sweep must not
// leave markers in place of jobs, nor destroy a job without archiving or
// failing it: it either refuses (exit 1, one line) before changing
// anything, or handles the job and reports the key.
func TestHostileWrongTypeWriteTargets(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	now := time.Now().Unix()
	at := now + 120

	check := func(t *testing.T, r result, l resque.Layout, lists map[string][]string, oddKey, oddDump string) {
		t.Helper()
		t.Logf("sweep: %s", r)
		fltNoCrash(t, r)
		if r.code != 0 {
			fltExpectError(t, r, 1)
		}
		for key, payloads := range lists {
			got := rdb.LRange(ctx, key, 0, -1).Val()
			for _, v := range got {
				if strings.HasPrefix(v, fltMarkerPrefix) {
					t.Errorf("a removal marker was left in %s in place of a job", key)
				}
			}
			present := map[string]bool{}
			for _, v := range got {
				present[v] = true
			}
			for _, p := range payloads {
				if !present[p] && strings.Contains(p, "ctl-live") {
					t.Errorf("live job lost from %s", key)
				}
				if !present[p] && strings.Contains(p, "ctl-exp") && r.code != 0 {
					t.Errorf("the sweep failed (exit %d) yet removed an expired job from %s", r.code, key)
				}
			}
		}
		if d, _ := rdb.Dump(ctx, oddKey).Result(); d != oddDump {
			t.Errorf("the odd key %s was changed", oddKey)
		}
	}

	t.Run("failed-hash-to-failed", func(t *testing.T) {
		l := resque.MustLayout("wtw-failed", "")
		jobs := hstControls("ok")
		hstSeed(t, rdb, l, "ok", jobs)
		rdb.HSet(ctx, l.Failed(), "a", "b")
		dump := rdb.Dump(ctx, l.Failed()).Val()
		r := run(t, srv, "--namespace", l.Namespace(), "--format", "json", "sweep", "--yes", "--to-failed")
		check(t, r, l, map[string][]string{l.Queue("ok"): {jobs[0].payload, jobs[1].payload}}, l.Failed(), dump)
		if r.code == 0 && rdb.Exists(ctx, l.Expiration("ctl-exp-ok")).Val() == 0 && hstIn(rdb, l.Queue("ok"), jobs[0].payload) {
			t.Error("the expired job's deadline key was deleted but the job left in the queue")
		}
	})

	t.Run("journal-string-archive", func(t *testing.T) {
		l := resque.MustLayout("wtw-journal", "")
		jobs := hstControls("ok")
		hstSeed(t, rdb, l, "ok", jobs)
		rdb.Set(ctx, l.Journal(), "not a journal", 0)
		dump := rdb.Dump(ctx, l.Journal()).Val()
		r := run(t, srv, "--namespace", l.Namespace(), "--format", "json", "sweep", "--yes", "--archive", t.TempDir()+"/a.jsonl")
		check(t, r, l, map[string][]string{l.Queue("ok"): {jobs[0].payload, jobs[1].payload}}, l.Journal(), dump)
	})

	t.Run("timestamps-string-delayed", func(t *testing.T) {
		l := resque.MustLayout("wtw-ts", "")
		hstSeed(t, rdb, l, "ok", hstControls("ok"))
		exp := hstPayload("Delayed", "ctl-exp-delayed", `"queue":"ok"`)
		live := hstPayload("Delayed", "ctl-live-delayed", `"queue":"ok"`)
		rdb.RPush(ctx, l.Delayed(at), exp, live)
		rdb.ZAdd(ctx, l.DelayedSchedule(), redis.Z{Score: float64(at), Member: fmt.Sprint(at)})
		rdb.Set(ctx, l.Timestamps(exp), "not a set", 0)
		rdb.SAdd(ctx, l.Timestamps(live), resque.DelayedMember(at))
		rdb.Set(ctx, l.Expiration("ctl-exp-delayed"), now-3600, 0)
		rdb.Set(ctx, l.Expiration("ctl-live-delayed"), now+3600, 0)
		dump := rdb.Dump(ctx, l.Timestamps(exp)).Val()
		r := run(t, srv, "--namespace", l.Namespace(), "--format", "json", "sweep", "--yes")
		check(t, r, l, map[string][]string{l.Delayed(at): {exp, live}}, l.Timestamps(exp), dump)
	})
}

func hstIn(rdb *redis.Client, key, payload string) bool {
	for _, v := range rdb.LRange(context.Background(), key, 0, -1).Val() {
		if v == payload {
			return true
		}
	}
	return false
}

// TestHostileLockHash: the lock key holds a hash (not a lock any run
// wrote). inspect and list work; sweep refuses with one line that says the
// key is not a lock — not exit 75 "another sweep holds the lock", which a
// cron wrapper treats as "try again later", forever, since a hash never
// expires — and leaves the key alone.
func TestHostileLockHash(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	jobs := hstControls("ok")
	hstSeed(t, rdb, defaultLayout, "ok", jobs)
	rdb.HSet(ctx, defaultLayout.Lock(), "owner", "someone")
	dump := rdb.Dump(ctx, defaultLayout.Lock()).Val()
	hstOK(t, srv, "inspect")
	hstOK(t, srv, "list")
	hstOK(t, srv, "sweep", "--dry-run")
	r := run(t, srv, "sweep", "--yes")
	line := fltExpectError(t, r, r.code, defaultLayout.Lock())
	if r.code == 0 {
		t.Fatalf("sweep ran without its lock: %s", r)
	}
	if r.code == 75 || !strings.Contains(line, "hash") {
		t.Errorf("want exit 1 and a message saying the lock key is a hash, got exit %d: %s", r.code, line)
	}
	if rdb.Dump(ctx, defaultLayout.Lock()).Val() != dump {
		t.Error("the odd lock key was changed")
	}
	if rdb.LLen(ctx, defaultLayout.Queue("ok")).Val() != 2 {
		t.Error("sweep removed jobs without its lock")
	}
}

// TestHostileManyEmptyQueues: a queues set naming 5000 queues that have no
// list (Resque never forgets a queue name) costs little: inspect, list and
// sweep each finish in a few seconds and still sweep the one real queue.
func TestHostileManyEmptyQueues(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	names := make([]any, 5000)
	for i := range names {
		names[i] = fmt.Sprintf("empty-%04d", i)
	}
	rdb.SAdd(ctx, defaultLayout.Queues(), names...)
	jobs := hstControls("real")
	hstSeed(t, rdb, defaultLayout, "real", jobs)
	for _, args := range [][]string{
		{"--log-level", "error", "inspect"},
		{"--log-level", "error", "list"},
		{"--log-level", "error", "sweep", "--dry-run"},
		{"--log-level", "error", "sweep", "--yes"},
		{"--log-level", "error", "sweep", "--yes", "--orphans"},
	} {
		start := time.Now()
		hstOK(t, srv, args...)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%v over 5000 empty queues took %v", args, took)
		}
	}
	hstCheckQueue(t, rdb, defaultLayout, "real", jobs)
	if n := rdb.SCard(ctx, defaultLayout.Queues()).Val(); n != 5001 {
		t.Errorf("the queues set changed: %d names", n)
	}
	// With warnings on, each empty queue is one line at most.
	r := hstOK(t, srv, "inspect")
	if n := len(splitLines(r.stderr)); n > 5001 {
		t.Errorf("inspect logged %d lines for 5000 empty queues", n)
	}
}

// TestHostileExpirationTemplate: with a permissive --expiration-key such as
// '{ns}:{id}', deadline keys share the key space of Resque's own keys. A
// job id then picks which key the sweep treats as its deadline, and
// --orphans scans every <ns>:* key. Resque's counters (resque:stat:*)
// hold small integers that parse as 1970 deadlines: neither a job whose id
// is "stat:processed" nor --orphans may delete them. The tool must refuse
// such a template, or leave keys it did not write alone.
func TestHostileExpirationTemplate(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	l := resque.MustLayout("resque", "{ns}:{id}")
	jobs := []hstJob{
		{payload: hstPayload("Control", "ctl-exp"), id: "ctl-exp", deadline: hstPast(), state: "expired", remove: true},
		{payload: hstPayload("Control", "ctl-live"), id: "ctl-live", deadline: hstFuture(), state: "live"},
	}
	hstSeed(t, rdb, l, "q", jobs)
	// Resque's own keys, and a job whose id names one of them.
	rdb.Set(ctx, "resque:stat:processed", "1234", 0)
	rdb.Set(ctx, "resque:stat:failed", "5", 0)
	rdb.Set(ctx, "resque:stat:processed:host:1:q", "1700000000", 0)
	rdb.RPush(ctx, l.Queue("q"), hstPayload("Evil", "stat:failed"))
	bystanders := func(k string) bool { return strings.HasPrefix(k, "resque:stat:") }
	before := redistest.Dump(t, rdb, bystanders)

	r := run(t, srv, "--expiration-key", "{ns}:{id}", "--log-level", "warn", "sweep", "--yes", "--orphans")
	fltNoCrash(t, r)
	if r.code != 0 {
		fltExpectError(t, r, 2, "expiration")
	}
	redistest.SameDump(t, "sweep --expiration-key '{ns}:{id}' --orphans", before, redistest.Dump(t, rdb, bystanders))

	// audit --fix-orphans deletes expired orphaned deadline keys too.
	rdb.Set(ctx, "resque:stat:processed", "1234", 0)
	rdb.Set(ctx, "resque:stat:failed", "5", 0)
	rdb.Set(ctx, "resque:stat:processed:host:1:q", "1700000000", 0)
	before = redistest.Dump(t, rdb, bystanders)
	r = run(t, srv, "--expiration-key", "{ns}:{id}", "--log-level", "warn", "audit", "--fix-orphans", "--apply")
	fltNoCrash(t, r)
	if r.code != 0 && r.code != 3 {
		fltExpectError(t, r, 2, "expiration")
	}
	redistest.SameDump(t, "audit --expiration-key '{ns}:{id}' --fix-orphans --apply", before, redistest.Dump(t, rdb, bystanders))
}

// TestHostileDeadlineTinyUnixTime: ' 12 ' (and '12') read as Unix seconds is
// 1970-01-01T00:00:12Z. A deadline that small is almost surely a relative
// TTL written where an absolute time belongs ("expire in 12 seconds"), the
// same writer bug as 0 or -5, which are refused: such a job is reported as
// invalid and left in place, not removed as 56 years overdue, as
// internal/resque/deadline_test.go asserts for the parser (every Unix time
// before 2000 is refused).
func TestHostileDeadlineTinyUnixTime(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	jobs := hstControls("tiny")
	for i, v := range []string{" 12 ", "12", "3600", "86400"} {
		id := fmt.Sprintf("tiny-%d", i)
		jobs = append(jobs, hstJob{payload: hstPayload("Tiny", id), id: id, deadline: v, state: "invalid"})
	}
	hstSeed(t, rdb, defaultLayout, "tiny", jobs)
	hstCheckStates(t, hstList(t, srv), "tiny", jobs)
	hstOK(t, srv, "--log-level", "warn", "sweep", "--yes")
	hstCheckQueue(t, rdb, defaultLayout, "tiny", jobs)
}
