package commands

import (
	"fmt"

	"github.com/resque-expire/resque-expire/backfill"
	"github.com/resque-expire/resque-expire/report"
)

type backfillResult struct {
	*backfill.Result
	ClockSkew *float64 `json:"clock_skew_seconds,omitempty"`
}

func (r backfillResult) Tables() []report.Table {
	set := "set"
	if r.DryRun {
		set = "would set"
	}
	queues := report.Table{Header: []string{"queue", "scanned", "missing", set, "already set", "unmatched", "ttl fixed", "skipped"}}
	row := func(name string, c backfill.Counts) []string {
		return []string{name, report.Int(c.Scanned), report.Int(c.Missing), report.Int(c.Set), report.Int(c.AlreadySet),
			report.Int(c.Unmatched), report.Int(c.TTLFixed), report.Int(c.Skipped)}
	}
	for _, q := range r.Queues {
		queues.Rows = append(queues.Rows, row(q.Queue, q.Counts))
	}
	if r.Delayed != nil {
		queues.Rows = append(queues.Rows, row(r.Delayed.Queue, r.Delayed.Counts))
	}
	queues.Footer = row("total", r.Counts)
	queues.Notes = append(queues.Notes, fmt.Sprintf("deadlines count from %s; keys expire %s after their deadline",
		r.From, backfill.FormatTTL(r.Retention)))
	if r.FromNow > 0 {
		queues.Notes = append(queues.Notes, fmt.Sprintf("%d jobs record no enqueue time; their deadline counts from now", r.FromNow))
	}
	if r.AlreadySet > 0 {
		queues.Notes = append(queues.Notes, fmt.Sprintf("%d deadlines were set by someone else meanwhile and kept", r.AlreadySet))
	}
	if r.Unmatched > 0 {
		queues.Notes = append(queues.Notes, fmt.Sprintf("%d jobs matched no rule and were left without a deadline", r.Unmatched))
	}
	if r.Skipped > 0 {
		queues.Notes = append(queues.Notes, fmt.Sprintf("%d jobs did not match --class and were left alone", r.Skipped))
	}
	if r.Stopped != "" {
		queues.Notes = append(queues.Notes, "stopped early: "+r.Stopped+" (partial)")
	}
	queues.Notes = append(queues.Notes, problemNotes(r.Problems)...)

	tables := []report.Table{queues, r.rulesTable(set)}
	if r.DryRun {
		tables = append(tables, r.sampleTable())
	}
	return tables
}

// rulesTable counts the jobs per policy rule.
func (r backfillResult) rulesTable(set string) report.Table {
	rules := report.Table{Title: "By rule", Header: []string{"rule", "line", "ttl", "missing", set, "already set"}}
	for _, ru := range r.Rules {
		line := "-"
		if ru.Line > 0 {
			line = report.Int(int64(ru.Line))
		}
		rules.Rows = append(rules.Rows, []string{ru.Rule, line, ru.TTL, report.Int(ru.Matched), report.Int(ru.Set), report.Int(ru.AlreadySet)})
	}
	if r.Unmatched > 0 {
		rules.Rows = append(rules.Rows, []string{"(no rule)", "-", "-", report.Int(r.Unmatched), "-", "-"})
	}
	return rules
}

// sampleTable shows a dry run's first deadlines per rule.
func (r backfillResult) sampleTable() report.Table {
	sample := report.Table{Title: "Sample deadlines (first 3 per rule)",
		Header: []string{"rule", "queue", "id", "class", "from", "base", "deadline", "key expires"}}
	for _, ru := range r.Rules {
		for _, s := range ru.Sample {
			sample.Rows = append(sample.Rows, []string{s.Rule, s.Queue, s.ID, s.Class, string(s.From),
				report.Time(s.Base), report.Time(s.Deadline), report.Time(s.KeyExpiresAt)})
		}
	}
	return sample
}
