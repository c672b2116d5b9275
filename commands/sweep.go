package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/fleet"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/internal/redisconn"
	"github.com/resque-expire/resque-expire/report"
	"github.com/resque-expire/resque-expire/sweep"
)

var _ = register(sweepCommand)

// minLockTTL is the shortest --lock-ttl a sweep accepts.
const minLockTTL = time.Second

func sweepCommand() *cli.Command {
	return &cli.Command{
		Name:  "sweep",
		Usage: "remove expired jobs from every queue and the delayed schedule",
		Description: `Removes every job whose deadline (<ns>:job:<id>:expiration) is at or before now, from
every queue and from resque-scheduler's delayed buckets, together with its deadline key.
Each batch is removed by one Lua script that re-checks every job, so a job that is live,
has no deadline, has no id or cannot be read is never removed, and a job a worker took
first is counted as already gone. Runs hold the lock <ns>:resque-expire:lock; a second
run exits with code 75.

On a terminal it shows what it will remove and asks first, on the terminal itself even
when stderr is redirected (--yes skips the question; with no terminal to ask on it refuses,
exit 2). Any answer but y/yes removes nothing and exits 1. From cron (stdin not a
terminal) it never asks.

Examples:
  resque-expire sweep --dry-run
  resque-expire sweep --yes --archive /var/lib/resque-expire/removed.jsonl
  resque-expire sweep --queue mailers --grace 5m --limit 10000 --max-duration 2m
  resque-expire sweep --to-failed      # removed jobs show up in resque-web's Failed tab
  resque-expire sweep --failed --only failed --archive failed.jsonl   # before "Retry all"
  */5 * * * * resque-expire sweep --log-format json --format jsonl >>/var/log/resque-expire.log 2>&1`,
		Flags:  sweepFlags(),
		Action: action(newSweepOptions, sweepAction),
	}
}

// sweepFlags are sweep's flags; serve takes most of them.
func sweepFlags() []cli.Flag {
	return append(append(filterFlags(),
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "report exactly what would be removed; change nothing"},
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation on a terminal"},
		durationFlag(cli.DurationFlag{Name: "grace", Usage: "only remove jobs expired longer ago than this"}),
		&cli.Int64Flag{Name: "limit", Usage: "stop after this many removals (0 = no limit)"},
		durationFlag(cli.DurationFlag{Name: "max-duration", Usage: "stop cleanly after this long, reporting what was done"}),
		durationFlag(cli.DurationFlag{Name: "max-age", Usage: "also remove jobs with no deadline enqueued longer ago than this (off by default)"}),
		&cli.StringFlag{Name: "archive", Usage: "append one JSON line per removed job to this file (fsynced); see restore"},
		&cli.BoolFlag{Name: "to-failed", Usage: "move removed jobs onto <ns>:failed as Resque failures (exception ResqueExpire::JobExpired)"},
		&cli.BoolFlag{Name: "orphans", Usage: "also handle deadline keys whose job is in no queue: give each a TTL (the hold past its deadline, or past now); never delete one"},
		durationFlag(cli.DurationFlag{Name: "orphan-grace", Value: time.Hour, Usage: "the hold: orphaned deadline keys vanish this long after their deadline, or after now if it passed (at least 1h)"}),
		durationFlag(cli.DurationFlag{Name: "lock-ttl", Value: sweep.DefaultLockTTL, Usage: "lifetime of the lock if this run dies (renewed while it runs)"}),
		durationFlag(cli.DurationFlag{Name: "max-script-time", Value: sweep.DefaultMaxScriptTime, Usage: "time budget of one removal script; batches shrink to stay under it"}),
		metricsFileFlag(),
	), failedSweepFlags()...)
}

// sweepOptions are sweep's options (serve takes them too).
type sweepOptions struct {
	filters
	dryRun, yes, toFailed, orphans                                  bool
	grace, maxDuration, maxAge, orphanGrace, lockTTL, maxScriptTime time.Duration
	limit                                                           int64
	archive                                                         string
	failed                                                          failedSweep
}

func newSweepOptions() *sweepOptions { return &sweepOptions{} }

func (o *sweepOptions) bind(c *cli.Context) {
	o.filters.bind(c)
	o.dryRun, o.yes, o.toFailed, o.orphans = c.Bool("dry-run"), c.Bool("yes"), c.Bool("to-failed"), c.Bool("orphans")
	o.grace, o.maxDuration, o.maxAge = c.Duration("grace"), c.Duration("max-duration"), c.Duration("max-age")
	o.orphanGrace, o.lockTTL, o.maxScriptTime = c.Duration("orphan-grace"), c.Duration("lock-ttl"), c.Duration("max-script-time")
	o.limit, o.archive = c.Int64("limit"), c.String("archive")
	o.failed.bind(c)
}

func (o *sweepOptions) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"grace", o.grace}, {"max-duration", o.maxDuration}, {"max-age", o.maxAge}, {"orphan-grace", o.orphanGrace},
		{"lock-ttl", o.lockTTL}, {"max-script-time", o.maxScriptTime}} {
		if d.v < 0 {
			return usageErrorf("--%s must not be negative", d.name)
		}
	}
	if o.limit < 0 {
		return usageErrorf("--limit must not be negative")
	}
	if o.lockTTL < minLockTTL {
		// The lock is renewed every ttl/3: below a second a renewal can
		// come too late and another run could take the lock meanwhile.
		return usageErrorf("--lock-ttl must be at least %s (it is renewed every third of it), got %s", minLockTTL, o.lockTTL)
	}
	if o.orphans && (len(o.queues) > 0 || !o.delayed) {
		return usageErrorf("--orphans needs every queue in view: it cannot be combined with --queue or --no-delayed")
	}
	return o.failed.validate(o.toFailed, o.orphans)
}

// library is what sweep.Run is given (without the archive and the hooks).
func (o *sweepOptions) library() sweep.Options {
	return sweep.Options{
		DryRun: o.dryRun, Grace: o.grace, Limit: o.limit, MaxDuration: o.maxDuration, MaxAge: o.maxAge, Delayed: o.delayed,
		ToFailed: o.toFailed, LockTTL: o.lockTTL, MaxScriptTime: o.maxScriptTime, Orphans: o.orphans, OrphanGrace: o.orphanGrace,
		Failed: o.failed.failed, OnlyFailed: o.failed.onlySet, FailedOlderThan: o.failed.olderThan,
	}
}

// metricsCommand is the command label of a sweep's metrics: a dry run is
// no sweep, and must not count as the last success of one.
func (o *sweepOptions) metricsCommand() string {
	if o.dryRun {
		return "sweep_dry_run"
	}
	return "sweep"
}

func sweepAction(ctx context.Context, e *env, o *sweepOptions) error {
	mf := e.metricsFile(o.metricsCommand())
	defer mf.write()
	ss, err := e.open(o.filters, mf)
	if err != nil {
		return err
	}
	defer ss.Close()
	mf.readRemoved = true
	opts := o.library()
	// Set by a run over many targets (--targets) for each of them.
	opts.Target = os.Getenv(fleet.TargetEnv)
	sw := sweep.New(ss.scanner)
	if err := o.confirm(ctx, e, sw, opts); err != nil {
		return err
	}
	if o.archive != "" && !opts.DryRun {
		a, err := sweep.OpenArchive(o.archive)
		if err != nil {
			return err
		}
		defer a.Close()
		opts.Archive = a
	}
	flushRm := e.logRemovals(&opts)
	defer flushRm()
	res, runErr := runSweep(ctx, e, sw, opts)
	mf.observe(runErr, func(m *metrics.Set) { m.SetScanned(mf.command, res.Scanned) })
	flushRm()
	return e.reportSweep(ss.scanner, res, runErr)
}

// runSweep runs the sweep, with a progress bar.
func runSweep(ctx context.Context, e *env, sw *sweep.Sweeper, opts sweep.Options) (*sweep.Result, error) {
	p, done := e.track("sweep")
	defer done()
	opts.Progress = p
	return sw.Run(ctx, opts)
}

// confirm asks the operator first, on a terminal, unless --yes or
// --dry-run; any answer but yes is an error.
func (o *sweepOptions) confirm(ctx context.Context, e *env, sw *sweep.Sweeper, opts sweep.Options) error {
	if opts.DryRun || o.yes || !isTerminalReader(e.stdin) {
		return nil
	}
	w, closeW, err := promptWriter(e)
	if err != nil {
		return usageErrorf("cannot ask for confirmation (stderr is not a terminal and %v); pass --yes to sweep, or --dry-run to see what would be removed", err)
	}
	ok, err := confirmSweep(ctx, e, sw, opts, o.archive, w)
	closeW()
	if err != nil {
		return err
	}
	if !ok {
		// Not a success: a script must not take "n" for a sweep.
		return errors.New("sweep aborted at the confirmation prompt; nothing was removed")
	}
	return nil
}

// logRemovals makes opts log one line per removed job, and returns the
// function that flushes those lines.
//
// One line per removed job is the record in JSON logs (cron); on a
// terminal it would bury the progress bar under thousands of lines, so
// there it is debug (the archive is the per-job record). Either way the
// lines go through a buffer, flushed at the end and at least every second,
// so that logging a removal costs no write system call.
func (e *env) logRemovals(opts *sweep.Options) func() {
	verb := "removed expired job"
	if opts.DryRun {
		verb = "would remove expired job"
	}
	rmLog, flush := e.bufferedLogger()
	rmLevel := zerolog.InfoLevel
	if isTerminal(e.rawStderr) {
		rmLevel = zerolog.DebugLevel
	}
	opts.OnRemoved = func(rm sweep.Removal) {
		ev := rmLog.WithLevel(rmLevel).Str("id", rm.ID).Str("queue", rm.Queue).Str("class", rm.Class)
		if rm.ByAge {
			ev = ev.Time("enqueued_at", rm.EnqueuedAt).Bool("by_age", true)
		} else if !rm.ExpiresAt.IsZero() {
			ev = ev.Time("expires_at", rm.ExpiresAt)
		}
		if rm.DelayedAt != 0 {
			ev = ev.Int64("delayed_at", rm.DelayedAt)
		}
		msg := verb
		if rm.Failed != "" {
			ev, msg = ev.Str("failed_list", rm.Failed), strings.Replace(verb, "expired job", "failure entry", 1)
		}
		ev.Str("overdue_by", report.Duration(rm.OverdueBy)).Msg(msg)
	}
	return flush
}

// reportSweep logs what the sweep met, renders its summary and returns
// its error, if any.
func (e *env) reportSweep(s *inspect.Scanner, res *sweep.Result, runErr error) error {
	if isA[*sweep.LockHeldError](runErr) || (runErr != nil && refused(res)) {
		// Refused before doing anything (lock, read-only replica): one
		// error line, no warning, no all-zero "partial" summary.
		return runErr
	}
	if runErr == nil && res.Stopped == "" {
		res.Problems = append(res.Problems, s.Unmatched()...)
	}
	if res.Recovered > 0 {
		e.log.Warn().Int("records", res.Recovered).Msg("wrote archive records left in the journal by an interrupted run")
	}
	e.logProblems(res.Problems)
	if res.Stopped != "" {
		e.log.Warn().Str("reason", res.Stopped).Msg("sweep stopped before the end; the summary is partial")
	}
	if err := e.render(sweepResult{res, e.clockSkew()}); err != nil {
		return err
	}
	if runErr != nil && !errors.Is(runErr, sweep.ErrReadOnly) {
		return fmt.Errorf("sweep failed (partial summary above): %w", runErr)
	}
	return runErr
}

// refused reports whether a failed sweep stopped before it looked at any
// queue: nothing was scanned or removed, so there is nothing to summarise.
func refused(res *sweep.Result) bool {
	return res == nil || (len(res.Queues) == 0 && res.Delayed == nil && res.Failed == nil && res.Orphans == nil &&
		res.Scanned == 0 && res.Removed == 0 && res.Recovered == 0)
}

// promptWriter returns where the confirmation goes: the terminal itself
// (/dev/tty), so that "sweep 2>sweep.log" does not wait for an answer to a
// question nobody sees and stderr holds only logs; stderr when it is a
// terminal but /dev/tty cannot be opened.
func promptWriter(e *env) (io.Writer, func(), error) {
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err == nil {
		return &scrubWriter{w: tty, secrets: e.secrets}, func() { tty.Close() }, nil
	}
	if isTerminal(e.rawStderr) {
		return e.stderr, func() {}, nil
	}
	return nil, nil, fmt.Errorf("there is no terminal to ask on: %v", err)
}

// confirmSweep shows what a sweep would remove on w and asks the operator.
func confirmSweep(ctx context.Context, e *env, sw *sweep.Sweeper, opts sweep.Options, archive string, w io.Writer) (bool, error) {
	dry := opts
	dry.DryRun, dry.Orphans = true, false
	dry.Progress = e.progress("checking")
	res, err := sw.Run(ctx, dry)
	finishProgress(dry.Progress)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(w, "Redis: %s (namespace %q)\n", redisconn.Describe(e.conn), e.layout.Namespace())
	for _, q := range res.Queues {
		if q.Removed > 0 {
			fmt.Fprintf(w, "  %-30s %d expired jobs to remove\n", q.Queue, q.Removed)
		}
	}
	if res.Delayed != nil && res.Delayed.Removed > 0 {
		fmt.Fprintf(w, "  %-30s %d expired jobs to remove\n", "(delayed)", res.Delayed.Removed)
	}
	if res.Failed != nil && res.Failed.Removed > 0 {
		fmt.Fprintf(w, "  %-30s %d failure entries to remove\n", "(failed)", res.Failed.Removed)
	}
	if res.Removed == 0 && !opts.Orphans {
		fmt.Fprintln(w, "Nothing to remove.")
		return true, nil
	}
	fmt.Fprintf(w, "Remove %d expired jobs (%s)? [y/N] ", res.Removed, destinationOf(opts, archive))
	return askYes(e.stdin), nil
}

func destinationOf(o sweep.Options, archive string) string {
	switch {
	case o.ToFailed:
		return "moved to the failed list"
	case archive != "":
		return "archived to " + archive
	}
	return "deleted"
}

func askYes(r io.Reader) bool {
	line, _ := bufio.NewReader(r).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
