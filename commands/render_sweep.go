package commands

import (
	"fmt"

	"github.com/resque-expire/resque-expire/report"
	"github.com/resque-expire/resque-expire/sweep"
)

type sweepResult struct {
	*sweep.Result
	ClockSkew *float64 `json:"clock_skew_seconds,omitempty"`
}

func (r sweepResult) Tables() []report.Table {
	removed := "removed"
	if r.DryRun {
		removed = "would remove"
	}
	t := report.Table{Header: []string{"queue", "scanned", "expired", removed, "already gone", "changed", "skipped", "seconds"}}
	row := func(q sweep.QueueResult) []string {
		return []string{q.Queue, report.Int(q.Scanned), report.Int(q.Expired), report.Int(q.Removed), report.Int(q.AlreadyGone),
			report.Int(q.Changed), report.Int(q.Skipped), fmt.Sprintf("%.2f", q.Elapsed)}
	}
	for _, q := range r.Queues {
		t.Rows = append(t.Rows, row(q))
	}
	if r.Delayed != nil {
		t.Rows = append(t.Rows, row(*r.Delayed))
	}
	if r.Failed != nil {
		t.Rows = append(t.Rows, row(*r.Failed))
	}
	t.Footer = []string{"total", report.Int(r.Scanned), report.Int(r.Expired), report.Int(r.Removed), report.Int(r.AlreadyGone),
		report.Int(r.Changed), report.Int(r.Skipped), fmt.Sprintf("%.2f", r.Elapsed)}
	t.Notes = append(t.Notes, "removed jobs: "+r.Destination)
	if r.Stopped != "" {
		t.Notes = append(t.Notes, "stopped early: "+r.Stopped+" (partial)")
	}
	if o := r.Orphans; o != nil {
		verb := "set to vanish"
		if r.DryRun {
			verb = "would set to vanish"
		}
		hold := report.Duration(secondsDuration(o.HoldSeconds))
		t.Notes = append(t.Notes, fmt.Sprintf("orphaned deadline keys: %d of %d scanned; %s %d expired within %s, %d future ones %s after their deadline; %d unreadable left alone; none deleted",
			o.Orphans, o.Keys, verb, o.Expired, hold, o.Expiring, hold, o.Invalid))
	}
	t.Notes = append(t.Notes, problemNotes(r.Problems)...)
	return []report.Table{t}
}
