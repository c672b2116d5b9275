package commands

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/report"
)

func filterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "queue", Usage: "only queues matching this glob (repeatable)"},
		&cli.StringSliceFlag{Name: "class", Usage: "only jobs whose class (or ActiveJob job_class) matches this glob (repeatable)"},
		&cli.BoolFlag{Name: "delayed", Value: true, Usage: "include resque-scheduler's delayed jobs"},
		&cli.BoolFlag{Name: "no-delayed", Usage: "leave resque-scheduler's delayed jobs out"},
	}
}

// wantDelayed reads --delayed / --no-delayed (urfave/cli v2 has no negated
// bool flags of its own).
func wantDelayed(c *cli.Context) bool { return c.Bool("delayed") && !c.Bool("no-delayed") }

var _ = register(inspectCommand)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "count the jobs of every queue by state (read-only)",
		Description: `Reads every queue (and resque-scheduler's delayed schedule) in bounded pages and counts
each job as expired, live, missing (no deadline key), unidentified (no id) or invalid
(bad payload or deadline). It never writes to Redis, so it is safe against a replica.

Examples:
  resque-expire inspect
  resque-expire inspect --queue 'mail*' --format json | jq .totals
  REDIS_URL=redis://:secret@redis.internal:6379/0 resque-expire inspect --class 'Reports::*'`,
		Flags: append(filterFlags(), metricsFileFlag()),
		Action: func(c *cli.Context) error {
			e, err := setup(c)
			if err != nil {
				return err
			}
			mf := e.metricsFile("inspect")
			defer mf.write()
			rdb, err := e.connect()
			if err != nil {
				return err
			}
			defer rdb.Close()
			mf.rdb = rdb
			s, err := e.scanner(rdb, c.StringSlice("queue"), c.StringSlice("class"))
			if err != nil {
				return err
			}
			p := e.progress("inspect")
			sum, err := s.Inspect(c.Context, inspect.Options{Delayed: wantDelayed(c), Progress: p})
			finishProgress(p)
			mf.observe(err, func(m *metrics.Set) { observeSummary(m, sum) })
			if err != nil {
				return err
			}
			sum.Problems = append(sum.Problems, s.Unmatched()...)
			for _, pr := range sum.Problems {
				e.log.Warn().Str("key", pr.Key).Str("kind", pr.Kind).Msg(pr.Detail)
			}
			return e.render(inspectResult{Summary: sum, delayed: wantDelayed(c), skippedBy: filterNames(c), ClockSkew: e.clockSkew()})
		},
	}
}

type inspectResult struct {
	*inspect.Summary
	delayed   bool
	ClockSkew *float64 `json:"clock_skew_seconds,omitempty"`
	// skippedBy names the filters that leave jobs out ("--class", ...).
	skippedBy string
}

// filterNames names the filters given that can leave jobs uncounted:
// --class anywhere, --queue for delayed jobs (whose queue is in the
// payload).
func filterNames(c *cli.Context) string {
	q, cl := len(c.StringSlice("queue")) > 0, len(c.StringSlice("class")) > 0
	switch {
	case q && cl:
		return "--queue or --class"
	case q:
		return "--queue"
	}
	return "--class"
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
