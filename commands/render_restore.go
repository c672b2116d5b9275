package commands

import (
	"fmt"
	"sort"
	"time"

	"github.com/resque-expire/resque-expire/report"
	"github.com/resque-expire/resque-expire/sweep"
)

type restoreResult struct{ *sweep.RestoreResult }

func (r restoreResult) Tables() []report.Table {
	verb := "restored"
	if r.DryRun {
		verb = "would restore"
	}
	t := report.Table{Header: []string{"queue", verb}}
	names := make([]string, 0, len(r.Queues))
	for q := range r.Queues {
		names = append(names, q)
	}
	sort.Strings(names)
	for _, q := range names {
		t.Rows = append(t.Rows, []string{q, report.Int(int64(r.Queues[q]))})
	}
	t.Footer = []string{"total", report.Int(int64(r.Restored))}
	t.Notes = []string{fmt.Sprintf("%d records, %d already restored before, %d invalid (at %s)",
		r.Records, r.AlreadyRestored, r.Invalid, time.Now().UTC().Format(time.RFC3339))}
	return []report.Table{t}
}
