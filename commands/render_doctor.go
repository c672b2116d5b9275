package commands

import (
	"fmt"

	"github.com/resque-expire/resque-expire/internal/doctor"
	"github.com/resque-expire/resque-expire/report"
)

type doctorResult struct{ *doctor.Report }

func (r doctorResult) Tables() []report.Table {
	t := report.Table{Header: []string{"check", "status", "detail"}}
	fails, warns := 0, 0
	for _, ch := range r.Checks {
		t.Rows = append(t.Rows, []string{ch.Name, ch.Status, ch.Detail})
		switch ch.Status {
		case doctor.Fail:
			fails++
		case doctor.Warn:
			warns++
		}
	}
	t.Notes = append(t.Notes, fmt.Sprintf("%d checks: %d failed, %d warnings", len(r.Checks), fails, warns))
	return []report.Table{t}
}

// Lines makes --format jsonl one line per check.
func (r doctorResult) Lines() []any {
	out := make([]any, len(r.Checks))
	for i, c := range r.Checks {
		out[i] = c
	}
	return out
}
