package commands

import (
	"fmt"
	"strings"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/report"
)

type auditResult struct {
	*audit.Report
	ClockSkew *float64 `json:"clock_skew_seconds,omitempty"`
}

func (r auditResult) Tables() []report.Table { return auditTables(r.Report) }

type fixResult struct{ *audit.FixResult }

func (r fixResult) Tables() []report.Table {
	t := report.Table{Title: "Fixes (applied)", Header: []string{"action", "candidates", "done", "kept: changed since judged", "gone meanwhile"}}
	if r.DryRun {
		t.Title = "Fixes (dry run: nothing was changed; add --apply)"
	}
	row := func(name string, c *audit.FixCount) {
		if c != nil {
			t.Rows = append(t.Rows, []string{name, report.Int(c.Candidates), report.Int(c.Done), report.Int(c.Changed), report.Int(c.Gone)})
		}
	}
	if r.TTL != nil {
		row(fmt.Sprintf("give a TTL of %s", report.Duration(secondsDuration(r.TTLSeconds))), r.TTL)
	}
	row("delete stuck keys", r.Stuck)
	row("delete orphaned loner markers (no TTL)", r.LonerOrphans)
	row("give orphaned deadline keys (expired) a TTL of "+report.Duration(inspect.OrphanHold), r.DeadlineOrphans)
	return append(auditTables(r.Audit), t)
}

func auditTables(r *audit.Report) []report.Table {
	var tables []report.Table
	all := append([]*audit.FamilyReport{}, r.Families...)
	for _, f := range []*audit.FamilyReport{r.Deadlines, r.Loners} {
		if f != nil {
			all = append(all, f)
		}
	}
	if len(all) > 0 {
		t := report.Table{Title: "Key families",
			Header: []string{"family", "pattern", "keys", "no TTL", "wrong type", "unexpected value", "stuck", "TTL min", "median", "p90", "max"}}
		for _, f := range all {
			t.Rows = append(t.Rows, familyRow(f))
			t.Notes = append(t.Notes, familyNotes(f)...)
		}
		tables = append(tables, t)
	}
	if r.Deadlines != nil || r.Loners != nil {
		tables = append(tables, orphanTable(r))
	}
	if r.Jobs != nil {
		tables = append(tables, jobsTable(r.Jobs))
	}
	if len(tables) == 0 {
		tables = append(tables, report.Table{Title: "Audit"})
	}
	last := &tables[len(tables)-1]
	if r.Partial {
		last.Notes = append(last.Notes, fmt.Sprintf("PARTIAL: stopped early (%s); the numbers above are partial", r.Stopped))
	}
	last.Notes = append(last.Notes, problemNotes(r.Problems)...)
	return tables
}

func familyRow(f *audit.FamilyReport) []string {
	keys := report.Int(f.Keys)
	switch {
	case f.Skipped:
		keys = "skipped"
	case f.Partial:
		keys += " (partial)"
	}
	dash := func(applies bool, n int64) string {
		if !applies {
			return "-"
		}
		return report.Int(n)
	}
	row := []string{f.Name, f.Pattern, keys, report.Int(f.NoTTL), report.Int(f.WrongType),
		dash(len(f.ExpectedValues) > 0, f.Unexpected), dash(f.StuckValue != "", f.Stuck)}
	if f.TTL.Count == 0 {
		return append(row, "-", "-", "-", "-")
	}
	d := func(s float64) string { return report.Duration(secondsDuration(s)) }
	return append(row, d(f.TTL.MinSeconds), d(f.TTL.MedianSeconds), d(f.TTL.P90Seconds), d(f.TTL.MaxSeconds))
}

func familyNotes(f *audit.FamilyReport) []string {
	var out []string
	if f.Skipped {
		return []string{fmt.Sprintf("%s: skipped (out of time)", f.Name)}
	}
	if len(f.TopValues) > 0 {
		vals := make([]string, len(f.TopValues))
		for i, v := range f.TopValues {
			vals[i] = fmt.Sprintf("%q %d", v.Value, v.Count)
		}
		out = append(out, fmt.Sprintf("%s: top values: %s", f.Name, strings.Join(vals, ", ")))
	}
	if f.TTL.Sampled {
		out = append(out, fmt.Sprintf("%s: TTL median and p90 sampled from %d of %d keys", f.Name, f.TTL.SampleSize, f.TTL.Count))
	}
	if f.StuckUnknownAge > 0 {
		out = append(out, fmt.Sprintf("%s: %d keys hold %q with a TTL but the family has no expected ttl to tell their age: not counted as stuck",
			f.Name, f.StuckUnknownAge, f.StuckValue))
	}
	if f.Unreadable > 0 {
		out = append(out, fmt.Sprintf("%s: %d unreadable", f.Name, f.Unreadable))
	}
	out = append(out, histogram(f)...)
	for _, kind := range []string{audit.ExampleNoTTL, audit.ExampleWrongType, audit.ExampleUnexpected, audit.ExampleStuck, audit.ExampleUnreadable} {
		for _, ex := range f.Examples[kind] {
			out = append(out, fmt.Sprintf("  %s %s: %s", f.Name, strings.ReplaceAll(kind, "_", " "), exampleText(ex)))
		}
	}
	return out
}

func exampleText(ex audit.KeyExample) string {
	s := ex.Key + " (" + ex.Type
	if ex.Value != "" {
		s += fmt.Sprintf(" %q", ex.Value)
	}
	if ex.TTLSeconds >= 0 {
		s += ", TTL " + report.Duration(secondsDuration(ex.TTLSeconds))
	} else {
		s += ", no TTL"
	}
	s += ")"
	if ex.Detail != "" {
		s += " " + ex.Detail
	}
	return s
}

// histogram draws the remaining TTLs of a family as text bars.
func histogram(f *audit.FamilyReport) []string {
	if f.TTL.Count == 0 {
		return nil
	}
	const width = 30
	var most int64
	for _, b := range f.TTL.Histogram {
		most = max(most, b.Keys)
	}
	// Only the buckets from the first to the last that holds keys.
	lo, hi := 0, len(f.TTL.Histogram)-1
	for lo < hi && f.TTL.Histogram[lo].Keys == 0 {
		lo++
	}
	for hi > lo && f.TTL.Histogram[hi].Keys == 0 {
		hi--
	}
	out := []string{fmt.Sprintf("%s: remaining TTL of %d keys:", f.Name, f.TTL.Count)}
	for _, b := range f.TTL.Histogram[lo : hi+1] {
		n := int(b.Keys * width / most)
		if n == 0 && b.Keys > 0 {
			n = 1
		}
		out = append(out, fmt.Sprintf("  %-6s |%-*s %d", b.Label, width, strings.Repeat("#", n), b.Keys))
	}
	return out
}

func orphanTable(r *audit.Report) report.Table {
	t := report.Table{Title: "Orphans", Header: []string{"keys", "checked", "orphans", "fixable", "detail"}}
	add := func(f *audit.FamilyReport, detail func(o *audit.OrphanReport) string) {
		if f == nil || f.Orphans == nil {
			return
		}
		o := f.Orphans
		if !o.Judged {
			t.Rows = append(t.Rows, []string{f.Name, "-", "-", "-", "not judged: " + o.NotJudged})
			return
		}
		checked := report.Int(o.Checked)
		if f.Partial {
			checked += " (partial)"
		}
		t.Rows = append(t.Rows, []string{f.Name, checked, report.Int(o.Orphans), report.Int(o.Fixable), detail(o)})
		for _, ex := range o.Examples {
			t.Notes = append(t.Notes, fmt.Sprintf("  orphaned %s: %s", strings.TrimSuffix(f.Name, "s"), exampleText(ex)))
		}
	}
	add(r.Deadlines, func(o *audit.OrphanReport) string {
		return fmt.Sprintf("deadline passed %d (fixable unless already vanishing within %s: %d), ahead %d (job may be running), unreadable %d",
			o.Expired, report.Duration(inspect.OrphanHold), o.Held, o.Live, o.Unreadable)
	})
	add(r.Loners, func(o *audit.OrphanReport) string {
		return fmt.Sprintf("no TTL %d (block re-enqueue forever: fixable), queue missing %d", o.NoTTL, o.UnknownQueue)
	})
	return t
}

func jobsTable(j *audit.JobsReport) report.Table {
	t := report.Table{Title: "Duplicate jobs", Header: []string{"queue", "class", "duplicate ids", "identical payloads"}}
	for _, g := range j.Groups {
		q := g.Queue
		if g.Delayed {
			q += " (delayed)"
		}
		t.Rows = append(t.Rows, []string{q, g.Class, report.Int(g.DuplicateIDs), report.Int(g.IdenticalPayloads)})
	}
	t.Footer = []string{"total", "", report.Int(j.DuplicateIDs), report.Int(j.IdenticalPayloads)}
	st := j.States
	t.Notes = append(t.Notes,
		fmt.Sprintf("%d jobs read in %d queues and %d delayed buckets (%d delayed): expired %d, live %d, missing %d, unidentified %d, invalid %d",
			j.Jobs, j.Queues, j.Buckets, j.Delayed, st.Expired, st.Live, st.Missing, st.Unidentified, st.Invalid),
		fmt.Sprintf("%d jobs are extra copies; %d ids and %d payloads occur more than once", j.DuplicateJobs, j.DuplicatedIDs, j.DuplicatedPayloads))
	if j.Partial {
		t.Notes = append(t.Notes, fmt.Sprintf("jobs: stopped early (%s): partial, and orphans were not judged", j.Stopped))
	}
	for _, ex := range j.IDExamples {
		t.Notes = append(t.Notes, fmt.Sprintf("  id %s again: %s in %s", ex.ID, exampleClass(ex), exampleQueue(ex)))
	}
	for _, ex := range j.PayloadExamples {
		t.Notes = append(t.Notes, fmt.Sprintf("  payload again: %s in %s: %s", exampleClass(ex), exampleQueue(ex), ex.Payload))
	}
	return t
}

func exampleQueue(ex audit.DuplicateExample) string {
	if ex.DelayedAt != 0 {
		return fmt.Sprintf("%s (delayed bucket %d)", ex.Queue, ex.DelayedAt)
	}
	return ex.Queue
}

func exampleClass(ex audit.DuplicateExample) string {
	if ex.Class == "" {
		return "(no class)"
	}
	return ex.Class
}
