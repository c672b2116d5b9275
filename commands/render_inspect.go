package commands

import (
	"fmt"
	"time"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/report"
)

type inspectResult struct {
	*inspect.Summary
	delayed   bool
	ClockSkew *float64 `json:"clock_skew_seconds,omitempty"`
	// skippedBy names the filters that leave jobs out ("--class", ...).
	skippedBy string
}

func (r inspectResult) Tables() []report.Table {
	now := r.At
	row := func(q inspect.QueueSummary) []string {
		return []string{q.Queue, report.Int(q.Jobs), report.Int(q.Expired), report.Int(q.Live), report.Int(q.Missing),
			report.Int(q.Unidentified), report.Int(q.Invalid), soonest(q.Soonest, now), overdue(q.MostOverdue)}
	}
	t := report.Table{
		Header: []string{"queue", "jobs", "expired", "live", "missing", "unidentified", "invalid", "next deadline", "most overdue"},
	}
	for _, q := range r.Queues {
		t.Rows = append(t.Rows, row(q))
	}
	if r.delayed {
		d := r.Delayed.QueueSummary
		d.Queue = fmt.Sprintf("(delayed: %d buckets)", r.Delayed.Buckets)
		t.Rows = append(t.Rows, row(d))
	}
	if r.FailedEntries != nil {
		t.Rows = append(t.Rows, failedRow(r.FailedEntries))
	}
	t.Footer = row(r.Totals)
	t.Notes = append(t.Notes, fmt.Sprintf("failed list: %d entries", r.Failed))
	if r.Totals.Skipped > 0 {
		t.Notes = append(t.Notes, fmt.Sprintf("%d jobs did not match %s and were not counted", r.Totals.Skipped, r.skippedBy))
	}
	if o := r.Totals.MostOverdue; o != nil {
		t.Notes = append(t.Notes, fmt.Sprintf("most overdue: job %s (%s) in %s, expired %s ago", o.ID, o.Class, o.Queue, report.Duration(o.Overdue)))
	}
	if s := r.Totals.Soonest; s != nil {
		t.Notes = append(t.Notes, fmt.Sprintf("next to expire: job %s (%s) in %s, in %s", s.ID, s.Class, s.Queue, report.Duration(-s.Overdue)))
	}
	t.Notes = append(t.Notes, problemNotes(r.Problems)...)
	return []report.Table{t}
}

func soonest(j *inspect.JobRef, now time.Time) string {
	if j == nil {
		return "-"
	}
	return "in " + report.Duration(j.Deadline.Sub(now))
}

func overdue(j *inspect.JobRef) string {
	if j == nil {
		return "-"
	}
	return report.Duration(j.Overdue) + " ago"
}

// problemNotes lists problems for the table output, a few per kind.
func problemNotes(ps []inspect.Problem) []string {
	const perKind = 5
	seen := map[string]int{}
	var out []string
	for _, p := range ps {
		seen[p.Kind]++
		if seen[p.Kind] <= perKind {
			out = append(out, fmt.Sprintf("%s: %s (%s)", p.Kind, p.Detail, p.Key))
		}
	}
	for kind, n := range seen {
		if n > perKind {
			out = append(out, fmt.Sprintf("%s: %d more not shown (see --format json)", kind, n-perKind))
		}
	}
	return out
}

// failedRow is the inspect table's row for the failed lists.
func failedRow(f *inspect.FailedSummary) []string {
	name := "(failed)"
	if len(f.Lists) != 1 {
		name = fmt.Sprintf("(failed: %d lists)", len(f.Lists))
	}
	return []string{name, report.Int(f.Entries), report.Int(f.Expired), report.Int(f.Live), report.Int(f.Missing),
		report.Int(f.Unidentified), report.Int(f.Invalid), "-", overdue(f.MostOverdue)}
}
