package commands

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/resque"
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
		Action: action(newRestoreOptions, restoreAction),
	}
}

// restoreOptions are restore's options and operand.
type restoreOptions struct {
	dryRun      bool
	deadlineTTL time.Duration
	// toNamespace is --to-namespace, when given (toNamespaceSet), and
	// expirationKey the global --expiration-key its layout is built with.
	toNamespace, expirationKey string
	toNamespaceSet             bool
	args                       []string
}

func newRestoreOptions() *restoreOptions { return &restoreOptions{} }

func (o *restoreOptions) bind(c *cli.Context) {
	o.dryRun, o.deadlineTTL, o.args = c.Bool("dry-run"), c.Duration("deadline-ttl"), c.Args().Slice()
	o.toNamespace, o.toNamespaceSet, o.expirationKey = c.String("to-namespace"), c.IsSet("to-namespace"), c.String("expiration-key")
}

func (o *restoreOptions) validate() error {
	if len(o.args) > 1 {
		return usageErrorf("unexpected argument %q; restore takes exactly one archive file", o.args[1])
	}
	if len(o.args) != 1 {
		return usageErrorf("restore takes exactly one archive file")
	}
	if o.deadlineTTL < 0 {
		return usageErrorf("--deadline-ttl must not be negative")
	}
	_, _, err := o.layout(resque.Layout{})
	return err
}

// layout is where the records go: --to-namespace's layout (any namespace
// the records were swept from is then taken), else def.
func (o *restoreOptions) layout(def resque.Layout) (l resque.Layout, anyNamespace bool, err error) {
	if !o.toNamespaceSet {
		return def, false, nil
	}
	if l, err = resque.NewLayout(o.toNamespace, o.expirationKey); err != nil {
		return l, false, usageErrorf("--to-namespace: %v", err)
	}
	return l, true, nil
}

func restoreAction(ctx context.Context, e *env, o *restoreOptions) error {
	f, err := os.Open(o.args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	rdb, err := e.connect()
	if err != nil {
		return err
	}
	defer rdb.Close()
	res, err := runRestore(ctx, e, rdb, f, o)
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
}

// runRestore restores the archive r, logging each record.
func runRestore(ctx context.Context, e *env, rdb redis.UniversalClient, r io.Reader, o *restoreOptions) (*sweep.RestoreResult, error) {
	layout, anyNS, _ := o.layout(e.layout) // validated
	return sweep.Restore(ctx, rdb, layout, r, sweep.RestoreOptions{
		DryRun: o.dryRun, DeadlineTTL: o.deadlineTTL, AnyNamespace: anyNS,
		OnRecord: func(ev sweep.RestoreEvent) {
			l := e.log.Info()
			if ev.Action == "invalid" {
				l = e.log.Warn()
			}
			l.Int("line", ev.Line).Str("queue", ev.Queue).Str("id", ev.ID).Str("class", ev.Class).Str("detail", ev.Detail).Msg(ev.Action)
		},
	})
}
