package commands

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/metrics"
)

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
		Flags:  append(filterFlags(), metricsFileFlag()),
		Action: action(newInspectOptions, inspectAction),
	}
}

// inspectOptions are inspect's options: the filters.
type inspectOptions struct{ filters }

func newInspectOptions() *inspectOptions { return &inspectOptions{} }

func (o *inspectOptions) validate() error { return nil }

func inspectAction(ctx context.Context, e *env, o *inspectOptions) error {
	mf := e.metricsFile("inspect")
	defer mf.write()
	ss, err := e.open(o.filters, mf)
	if err != nil {
		return err
	}
	defer ss.Close()
	sum, err := runInspect(ctx, e, ss.scanner, o)
	mf.observe(err, func(m *metrics.Set) { observeSummary(m, sum) })
	if err != nil {
		return err
	}
	sum.Problems = append(sum.Problems, ss.scanner.Unmatched()...)
	e.logProblems(sum.Problems)
	return e.render(inspectResult{Summary: sum, delayed: o.delayed, skippedBy: o.filterNames(), ClockSkew: e.clockSkew()})
}

// runInspect counts the jobs, with a progress bar.
func runInspect(ctx context.Context, e *env, s *inspect.Scanner, o *inspectOptions) (*inspect.Summary, error) {
	p, done := e.track("inspect")
	defer done()
	return s.Inspect(ctx, inspect.Options{Delayed: o.delayed, Progress: p})
}
