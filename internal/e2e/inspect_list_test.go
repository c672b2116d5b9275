package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/sample"
)

// inspectSpec is the data the inspect and list tests read: every state, a
// few ActiveJob payloads, delayed jobs, a failure. Deadlines are relative
// to the wall clock, which the binary judges by.
func inspectSpec() sample.Spec {
	return sample.Spec{Seed: 11, Now: time.Now(), Queues: []string{"mailers", "default", "critical"}, Jobs: 300,
		Expired: 0.3, Missing: 0.2, Unidentified: 0.1, Invalid: 0.1, ActiveJob: 0.4,
		MinPayload: 80, MaxPayload: 200, Delayed: 12, Failed: 2}
}

// stateCounts is what the generator made, per queue and for the delayed
// jobs ("(delayed)"), by state.
func stateCounts(spec sample.Spec) (map[string]map[string]int64, int) {
	out := map[string]map[string]int64{}
	buckets := map[int64]bool{}
	sample.Generate(spec, func(j sample.Job) {
		q := j.Queue
		if j.DelayedAt != 0 {
			q = "(delayed)"
			buckets[j.DelayedAt] = true
		}
		if out[q] == nil {
			out[q] = map[string]int64{}
		}
		out[q][j.State]++
		out[q]["jobs"]++
	})
	return out, len(buckets)
}

// inspectRow is one queue of `inspect --format json`.
type inspectRow struct {
	Queue        string `json:"queue"`
	Jobs         int64  `json:"jobs"`
	Expired      int64  `json:"expired"`
	Live         int64  `json:"live"`
	Missing      int64  `json:"missing"`
	Unidentified int64  `json:"unidentified"`
	Invalid      int64  `json:"invalid"`
}

func (r inspectRow) counts() map[string]int64 {
	return map[string]int64{"jobs": r.Jobs, "expired": r.Expired, "live": r.Live, "missing": r.Missing,
		"unidentified": r.Unidentified, "invalid": r.Invalid}
}

type inspectJSON struct {
	Queues  []inspectRow `json:"queues"`
	Delayed struct {
		inspectRow
		Buckets int `json:"buckets"`
	} `json:"delayed"`
	Totals inspectRow `json:"totals"`
	Failed struct {
		Entries int64 `json:"entries"`
	} `json:"failed"`
}

func sameCounts(t *testing.T, what string, got map[string]int64, want map[string]int64) {
	t.Helper()
	for _, k := range []string{"jobs", "expired", "live", "missing", "unidentified", "invalid"} {
		if got[k] != want[k] {
			t.Errorf("%s: %s = %d, want %d", what, k, got[k], want[k])
		}
	}
}

// TestInspectJSON: `inspect --format json` counts every queue and the
// delayed jobs by state, in the documented shape.
func TestInspectJSON(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	spec := inspectSpec()
	fill(t, redistest.Client(t, srv), spec)
	want, buckets := stateCounts(spec)

	r := run(t, srv, "inspect", "--format", "json").expect(t, 0)
	var shape map[string]json.RawMessage
	r.decode(t, &shape)
	for _, k := range []string{"queues", "delayed", "totals", "failed", "problems", "at"} {
		if _, ok := shape[k]; !ok {
			t.Errorf("inspect JSON has no %q", k)
		}
	}
	var queues []map[string]any
	_ = json.Unmarshal(shape["queues"], &queues)
	for _, q := range queues {
		for _, k := range []string{"queue", "jobs", "expired", "live", "missing", "unidentified", "invalid"} {
			if _, ok := q[k]; !ok {
				t.Errorf("queue entry %v has no %q", q["queue"], k)
			}
		}
	}

	var got inspectJSON
	r.decode(t, &got)
	var names []string
	total := map[string]int64{}
	for _, q := range got.Queues {
		names = append(names, q.Queue)
		sameCounts(t, q.Queue, q.counts(), want[q.Queue])
		for k, v := range q.counts() {
			total[k] += v
		}
	}
	if strings.Join(names, ",") != "critical,default,mailers" {
		t.Errorf("queues %v, want sorted critical,default,mailers", names)
	}
	sameCounts(t, "delayed", got.Delayed.counts(), want["(delayed)"])
	if got.Delayed.Buckets != buckets {
		t.Errorf("delayed buckets %d, want %d", got.Delayed.Buckets, buckets)
	}
	for k, v := range got.Delayed.counts() {
		total[k] += v
	}
	sameCounts(t, "totals", got.Totals.counts(), total)
	if got.Totals.Jobs != int64(spec.Jobs+spec.Delayed) || got.Failed.Entries != 2 {
		t.Errorf("totals %d jobs, failed %d", got.Totals.Jobs, got.Failed.Entries)
	}
}

// TestInspectTable: the default table shows a row per queue, the delayed
// row and the totals; logs stay on stderr.
func TestInspectTable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	spec := inspectSpec()
	fill(t, redistest.Client(t, srv), spec)
	want, buckets := stateCounts(spec)

	r := run(t, srv, "inspect").expect(t, 0)
	out := r.stdout
	header := regexp.MustCompile(`(?i)queue\s*\S?\s*jobs\s*\S?\s*expired\s*\S?\s*live\s*\S?\s*missing\s*\S?\s*unidentified\s*\S?\s*invalid`)
	if !header.MatchString(out) {
		t.Errorf("no header row in\n%s", out)
	}
	rowOf := func(name string) []string {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, name) {
				return regexp.MustCompile(`\d+`).FindAllString(strings.SplitN(l, name, 2)[1], -1)
			}
		}
		t.Errorf("no row for %s in\n%s", name, out)
		return nil
	}
	for _, q := range []string{"mailers", "default", "critical"} {
		nums := rowOf(q)
		w := want[q]
		if len(nums) < 6 || strings.Join(nums[:6], " ") != fmt.Sprintf("%d %d %d %d %d %d", w["jobs"], w["expired"], w["live"], w["missing"], w["unidentified"], w["invalid"]) {
			t.Errorf("row %s: %v, want %v", q, nums, w)
		}
	}
	if !strings.Contains(out, fmt.Sprintf("(delayed: %d buckets)", buckets)) {
		t.Errorf("no delayed row in\n%s", out)
	}
	if !regexp.MustCompile(`(?i)total`).MatchString(out) || !strings.Contains(out, fmt.Sprint(spec.Jobs+spec.Delayed)) {
		t.Errorf("no totals in\n%s", out)
	}
	if strings.Contains(out, `"level"`) {
		t.Errorf("log lines on stdout:\n%s", out)
	}
}

// TestInspectNoDelayed: --no-delayed, as the help and the errors advise,
// leaves the delayed jobs out.
func TestInspectNoDelayed(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	spec := inspectSpec()
	fill(t, redistest.Client(t, srv), spec)
	r := run(t, srv, "inspect", "--no-delayed", "--format", "json").expect(t, 0)
	var got inspectJSON
	r.decode(t, &got)
	if got.Delayed.Jobs != 0 || got.Totals.Jobs != int64(spec.Jobs) {
		t.Errorf("with --no-delayed: delayed %d jobs, totals %d", got.Delayed.Jobs, got.Totals.Jobs)
	}
}

// listedJob is one line of `list --format jsonl`.
type listedJob struct {
	Queue     string  `json:"queue"`
	List      string  `json:"list"`
	Position  int64   `json:"position"`
	ID        string  `json:"id"`
	Class     string  `json:"class"`
	State     string  `json:"state"`
	ExpiresAt string  `json:"expires_at"`
	OverdueBy float64 `json:"overdue_by"`
	DelayedAt int64   `json:"delayed_at"`
	Payload   string  `json:"payload"`
}

// TestListExpiredJSONL: `list --state expired --format jsonl` streams one
// JSON object per expired job, queued or delayed, with its payload.
func TestListExpiredJSONL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	spec := inspectSpec()
	fill(t, redistest.Client(t, srv), spec)
	want := map[string]sample.Job{}
	sample.Generate(spec, func(j sample.Job) {
		if j.State == "expired" {
			want[j.Payload] = j
		}
	})

	r := run(t, srv, "list", "--state", "expired", "--format", "jsonl").expect(t, 0)
	lines := r.lines()
	if len(lines) != len(want) {
		t.Errorf("%d lines, want %d expired jobs", len(lines), len(want))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var j listedJob
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("line is not JSON: %v: %s", err, l)
		}
		g, ok := want[j.Payload]
		if !ok {
			t.Errorf("listed a job that is not expired: %s", l)
			continue
		}
		if seen[j.Payload] {
			t.Errorf("listed twice: %s", j.ID)
		}
		seen[j.Payload] = true
		wantList := defaultLayout.Queue(g.Queue)
		if g.DelayedAt != 0 {
			wantList = defaultLayout.Delayed(g.DelayedAt)
		}
		if j.State != "expired" || j.ID != g.ID || j.Queue != g.Queue || j.List != wantList || j.DelayedAt != g.DelayedAt ||
			j.OverdueBy <= 0 || j.ExpiresAt == "" || j.Class == "" {
			t.Errorf("listed %+v\nfor generated %+v", j, g)
		}
		if _, err := time.Parse(time.RFC3339, j.ExpiresAt); err != nil {
			t.Errorf("expires_at %q: %v", j.ExpiresAt, err)
		}
	}

	// Filters and limit.
	r = run(t, srv, "list", "--queue", "mailers", "--state", "live", "--limit", "3", "--format", "jsonl").expect(t, 0)
	if n := len(r.lines()); n != 3 {
		t.Errorf("--limit 3 listed %d", n)
	}
	for _, l := range r.lines() {
		var j listedJob
		_ = json.Unmarshal([]byte(l), &j)
		if j.Queue != "mailers" || j.State != "live" {
			t.Errorf("filtered list gave %s", l)
		}
	}
	// CSV has a header and one row per job.
	r = run(t, srv, "list", "--state", "invalid", "--format", "csv", "--no-progress").expect(t, 0)
	rows := r.lines()
	var invalid int
	sample.Generate(spec, func(j sample.Job) {
		if j.State == "invalid" {
			invalid++
		}
	})
	if len(rows) != invalid+1 || !strings.HasPrefix(rows[0], "queue,") {
		t.Errorf("csv: %d lines, want a header and %d rows:\n%s", len(rows), invalid, r.stdout)
	}
}
