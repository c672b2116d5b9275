package commands

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/report"
)

var _ = register(listCommand)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list jobs one per row, with their state and deadline (read-only)",
		Description: `Streams jobs in queue order. Use --format jsonl or csv for large listings: the table
format holds every row in memory until the end.

Examples:
  resque-expire list --state expired
  resque-expire list --state invalid --format jsonl | jq -r .payload
  resque-expire list --queue mailers --limit 20
  resque-expire list --source failed --state expired`,
		Flags: append(filterFlags(),
			&cli.StringFlag{Name: "state", Value: "all", Usage: "expired, live, missing, unidentified, invalid or all"},
			&cli.Int64Flag{Name: "limit", Usage: "stop after this many jobs (0 = all)"},
			&cli.StringSliceFlag{Name: "source", Usage: "what to list: queues, delayed (default: both), or failed (the failure entries, alone)"},
		),
		Action: action(newListOptions, listAction),
	}
}

// listOptions are list's options.
type listOptions struct {
	filters
	state   string
	limit   int64
	sources []string
}

func newListOptions() *listOptions { return &listOptions{} }

func (o *listOptions) bind(c *cli.Context) {
	o.filters.bind(c)
	o.state, o.limit, o.sources = c.String("state"), c.Int64("limit"), c.StringSlice("source")
}

func (o *listOptions) validate() error {
	if _, err := o.states(); err != nil {
		return err
	}
	if o.limit < 0 {
		return usageErrorf("--limit must not be negative")
	}
	_, _, _, err := o.lists()
	return err
}

// states are the states --state asks for (nil: all).
func (o *listOptions) states() ([]inspect.State, error) {
	if o.state == "all" {
		return nil, nil
	}
	s, ok := inspect.ParseState(o.state)
	if !ok {
		return nil, usageErrorf("--state: want expired, live, missing, unidentified, invalid or all, got %q", o.state)
	}
	return []inspect.State{s}, nil
}

// lists reads --source: which lists to read. Failure entries have columns
// of their own, so "failed" goes alone.
func (o *listOptions) lists() (queues, delayed, failed bool, err error) {
	if len(o.sources) == 0 {
		return true, o.delayed, false, nil
	}
	for _, s := range o.sources {
		switch s {
		case "queues":
			queues = true
		case "delayed":
			delayed = true
		case "failed":
			failed = true
		default:
			return false, false, false, usageErrorf("--source: want queues, delayed or failed, got %q", s)
		}
	}
	if failed && (queues || delayed) {
		return false, false, false, usageErrorf("--source failed lists failure entries, whose columns differ: give it alone")
	}
	return queues, delayed && o.delayed, failed, nil
}

func listAction(ctx context.Context, e *env, o *listOptions) error {
	ss, err := e.open(o.filters, nil)
	if err != nil {
		return err
	}
	defer ss.Close()
	header := listHeader
	if _, _, failed, _ := o.lists(); failed {
		header = failedListHeader
	}
	w := report.NewRowWriter(e.stdout, e.format, header)
	rows, problems, err := runList(ctx, ss.scanner, o, w)
	if err == nil && (o.limit == 0 || rows < o.limit) {
		// A scan cut short by --limit has not seen everything.
		problems = append(problems, ss.scanner.Unmatched()...)
	}
	e.logProblems(problems)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// runList writes the jobs (or failure entries) the options ask for to w,
// and says how many.
func runList(ctx context.Context, s *inspect.Scanner, o *listOptions, w report.RowWriter) (int64, []inspect.Problem, error) {
	queues, delayed, failed, _ := o.lists()
	states, _ := o.states()
	var rows int64
	lo := inspect.ListOptions{Options: inspect.Options{Delayed: delayed}, States: states, Limit: o.limit}
	var problems []inspect.Problem
	var err error
	switch {
	case failed:
		problems, err = s.ListFailed(ctx, lo, func(l inspect.Listed) error { rows++; return w.Write(failedRecord(l)) })
	case !queues && !delayed: // --source delayed --no-delayed: nothing
	case !queues:
		problems, err = s.ListDelayed(ctx, lo, func(l inspect.Listed) error { rows++; return w.Write(listRecord(l)) })
	default:
		problems, err = s.List(ctx, lo, func(l inspect.Listed) error { rows++; return w.Write(listRecord(l)) })
	}
	return rows, problems, err
}
