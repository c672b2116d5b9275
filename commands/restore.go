package commands

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/report"
	"github.com/resque-expire/resque-expire/sweep"
)

var _ = register(restoreCommand)

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "put archived jobs back on their queues",
		ArgsUsage: "ARCHIVE-FILE",
		Description: `Reads an archive written by 'sweep --archive' and pushes each job back onto the tail of
its queue (RPUSH, and SADD <ns>:queues). Every record is restored at most once: running
restore twice on the same file enqueues nothing twice, and a run that failed part-way (a
queue key of another type, a user the ACL does not allow RPUSH) marks nothing it did not
push: rerun it after the fix. Restored jobs come back without a deadline (state missing)
unless --deadline-ttl gives them a new one.

Records are restored into the namespace they were swept from, which must be --namespace
(default resque): an archive swept from another namespace is refused (exit 2, nothing
written) unless --to-namespace NS names where its jobs go.

Examples:
  resque-expire restore --dry-run removed.jsonl
  resque-expire restore --deadline-ttl 1h removed.jsonl
  resque-expire restore --to-namespace staging removed-from-prod.jsonl`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "report what would be restored; change nothing"},
			durationFlag(cli.DurationFlag{Name: "deadline-ttl", Usage: "give each restored job a new deadline this far ahead"}),
			&cli.StringFlag{Name: "to-namespace", Usage: "restore into this namespace, whatever namespace the records were swept from"},
		},
		Action: func(c *cli.Context) error {
			e, err := setup(c)
			if err != nil {
				return err
			}
			if c.NArg() > 1 {
				return usageErrorf("unexpected argument %q; restore takes exactly one archive file", c.Args().Get(1))
			}
			if c.NArg() != 1 {
				return usageErrorf("restore takes exactly one archive file")
			}
			if c.Duration("deadline-ttl") < 0 {
				return usageErrorf("--deadline-ttl must not be negative")
			}
			f, err := os.Open(c.Args().First())
			if err != nil {
				return err
			}
			defer f.Close()
			layout, anyNS := e.layout, false
			if c.IsSet("to-namespace") {
				if layout, err = resque.NewLayout(c.String("to-namespace"), c.String("expiration-key")); err != nil {
					return usageErrorf("--to-namespace: %v", err)
				}
				anyNS = true
			}
			rdb, err := e.connect()
			if err != nil {
				return err
			}
			defer rdb.Close()
			res, err := sweep.Restore(c.Context, rdb, layout, f, sweep.RestoreOptions{
				DryRun: c.Bool("dry-run"), DeadlineTTL: c.Duration("deadline-ttl"), AnyNamespace: anyNS,
				OnRecord: func(ev sweep.RestoreEvent) {
					l := e.log.Info()
					if ev.Action == "invalid" {
						l = e.log.Warn()
					}
					l.Int("line", ev.Line).Str("queue", ev.Queue).Str("id", ev.ID).Str("class", ev.Class).Str("detail", ev.Detail).Msg(ev.Action)
				},
			})
			var nsErr *sweep.NamespaceError
			if errors.As(err, &nsErr) {
				if !nsErr.Known {
					return usageErrorf("%v; nothing was restored", nsErr)
				}
				return usageErrorf("%v; nothing was restored. Restore into namespace %q with --to-namespace %s, or into its own with --namespace %s",
					nsErr, nsErr.To, nsErr.To, nsErr.From)
			}
			if res != nil {
				if rerr := e.render(restoreResult{res}); rerr != nil {
					return rerr
				}
			}
			return err
		},
	}
}

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
