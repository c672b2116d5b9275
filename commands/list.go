package commands

import (
	"strconv"

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
		Action: func(c *cli.Context) error {
			e, err := setup(c)
			if err != nil {
				return err
			}
			var states []inspect.State
			if st := c.String("state"); st != "all" {
				s, ok := inspect.ParseState(st)
				if !ok {
					return usageErrorf("--state: want expired, live, missing, unidentified, invalid or all, got %q", st)
				}
				states = []inspect.State{s}
			}
			if c.Int64("limit") < 0 {
				return usageErrorf("--limit must not be negative")
			}
			rdb, err := e.connect()
			if err != nil {
				return err
			}
			defer rdb.Close()
			s, err := e.scanner(rdb, c.StringSlice("queue"), c.StringSlice("class"))
			if err != nil {
				return err
			}
			queues, delayed, failed, err := listSources(c)
			if err != nil {
				return err
			}
			header := listHeader
			if failed {
				header = failedListHeader
			}
			w := report.NewRowWriter(e.stdout, e.format, header)
			var rows int64
			var problems []inspect.Problem
			lo := inspect.ListOptions{Options: inspect.Options{Delayed: delayed}, States: states, Limit: c.Int64("limit")}
			switch {
			case failed:
				problems, err = s.ListFailed(c.Context, lo, func(l inspect.Listed) error { rows++; return w.Write(failedRecord(l)) })
			case !queues && !delayed: // --source delayed --no-delayed: nothing
			case !queues:
				problems, err = s.ListDelayed(c.Context, lo, func(l inspect.Listed) error { rows++; return w.Write(listRecord(l)) })
			default:
				problems, err = s.List(c.Context, lo, func(l inspect.Listed) error { rows++; return w.Write(listRecord(l)) })
			}
			if err == nil && (c.Int64("limit") == 0 || rows < c.Int64("limit")) {
				// A scan cut short by --limit has not seen everything.
				problems = append(problems, s.Unmatched()...)
			}
			for _, pr := range problems {
				e.log.Warn().Str("key", pr.Key).Str("kind", pr.Kind).Msg(pr.Detail)
			}
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
}

var listHeader = []string{"queue", "position", "id", "class", "state", "expires_at", "overdue_by", "reason"}

type listRecord inspect.Listed

// listedJSON is the jsonl/json shape of one listed job.
type listedJSON struct {
	Queue     string  `json:"queue"`
	List      string  `json:"list"`
	Position  int64   `json:"position"`
	ID        string  `json:"id"`
	Class     string  `json:"class"`
	State     string  `json:"state"`
	ExpiresAt string  `json:"expires_at"`
	OverdueBy float64 `json:"overdue_by"`
	Reason    string  `json:"reason,omitempty"`
	DelayedAt int64   `json:"delayed_at,omitempty"`
	Payload   string  `json:"payload"`
}

func (r listRecord) Row() []string {
	return []string{r.Queue, strconv.FormatInt(r.Index, 10), r.ID, r.Class, string(r.State),
		report.Time(r.Deadline), overdueCell(inspect.Listed(r)), r.Reason}
}

func overdueCell(l inspect.Listed) string {
	if l.State != inspect.StateExpired {
		return ""
	}
	return report.Duration(l.OverdueBy(l.Now))
}

func (r listRecord) Object() any {
	o := listedJSON{Queue: r.Queue, List: r.List.Key, Position: r.Index, ID: r.ID, Class: r.Class, State: string(r.State),
		ExpiresAt: report.Time(r.Deadline), Reason: r.Reason, DelayedAt: r.List.DelayedAt, Payload: r.Raw}
	if r.State == inspect.StateExpired {
		o.OverdueBy = r.OverdueBy(r.Now).Seconds()
	}
	return o
}
