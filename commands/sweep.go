package commands

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

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
		Flags: append(append(filterFlags(),
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
			durationFlag(cli.DurationFlag{Name: "max-script-time", Value: 4 * time.Millisecond, Usage: "time budget of one removal script; batches shrink to stay under it"}),
			metricsFileFlag(),
		), failedSweepFlags()...),
		Action: runSweep,
	}
}

func runSweep(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	for _, name := range []string{"grace", "max-duration", "max-age", "orphan-grace", "lock-ttl", "max-script-time"} {
		if c.Duration(name) < 0 {
			return usageErrorf("--%s must not be negative", name)
		}
	}
	if c.Int64("limit") < 0 {
		return usageErrorf("--limit must not be negative")
	}
	if ttl := c.Duration("lock-ttl"); ttl < minLockTTL {
		// The lock is renewed every ttl/3: below a second a renewal can
		// come too late and another run could take the lock meanwhile.
		return usageErrorf("--lock-ttl must be at least %s (it is renewed every third of it), got %s", minLockTTL, ttl)
	}
	if c.Bool("orphans") && (len(c.StringSlice("queue")) > 0 || !wantDelayed(c)) {
		return usageErrorf("--orphans needs every queue in view: it cannot be combined with --queue or --no-delayed")
	}
	mf := e.metricsFile(sweepMetricsCommand(c))
	defer mf.write()
	rdb, err := e.connect()
	if err != nil {
		return err
	}
	defer rdb.Close()
	mf.rdb, mf.readRemoved = rdb, true
	s, err := e.scanner(rdb, c.StringSlice("queue"), c.StringSlice("class"))
	if err != nil {
		return err
	}
	opts := sweep.Options{
		DryRun: c.Bool("dry-run"), Grace: c.Duration("grace"), Limit: c.Int64("limit"),
		MaxDuration: c.Duration("max-duration"), MaxAge: c.Duration("max-age"), Delayed: wantDelayed(c),
		ToFailed: c.Bool("to-failed"), LockTTL: c.Duration("lock-ttl"), MaxScriptTime: c.Duration("max-script-time"),
		Orphans: c.Bool("orphans"), OrphanGrace: c.Duration("orphan-grace"),
		// Set by a run over many targets (--targets) for each of them.
		Target: os.Getenv(fleet.TargetEnv),
	}
	if err := failedSweepOptions(c, &opts); err != nil {
		return err
	}
	sw := sweep.New(s)

	if !opts.DryRun && !c.Bool("yes") && isTerminalReader(c.App.Reader) {
		w, closeW, err := promptWriter(e)
		if err != nil {
			return usageErrorf("cannot ask for confirmation (stderr is not a terminal and %v); pass --yes to sweep, or --dry-run to see what would be removed", err)
		}
		ok, err := confirmSweep(c, e, sw, opts, w)
		closeW()
		if err != nil {
			return err
		}
		if !ok {
			// Not a success: a script must not take "n" for a sweep.
			return errors.New("sweep aborted at the confirmation prompt; nothing was removed")
		}
	}
	if path := c.String("archive"); path != "" && !opts.DryRun {
		a, err := sweep.OpenArchive(path)
		if err != nil {
			return err
		}
		defer a.Close()
		opts.Archive = a
	}
	verb := "removed expired job"
	if opts.DryRun {
		verb = "would remove expired job"
	}
	// One line per removed job is the record in JSON logs (cron); on a
	// terminal it would bury the progress bar under thousands of lines, so
	// there it is debug (the archive is the per-job record). Either way the
	// lines go through a buffer, flushed at the end and at least every
	// second, so that logging a removal costs no write system call.
	rmLog, flushRm := e.bufferedLogger()
	defer flushRm()
	rmLevel := zerolog.InfoLevel
	if isTerminal(c.App.ErrWriter) {
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
	p := e.progress("sweep")
	opts.Progress = p
	res, runErr := sw.Run(c.Context, opts)
	mf.observe(runErr, func(m *metrics.Set) { m.SetScanned(mf.command, res.Scanned) })
	finishProgress(p)
	flushRm()

	var held *sweep.LockHeldError
	if errors.As(runErr, &held) {
		return runErr
	}
	if runErr != nil && refused(res) {
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
	for _, pr := range res.Problems {
		e.log.Warn().Str("key", pr.Key).Str("kind", pr.Kind).Msg(pr.Detail)
	}
	if res.Stopped != "" {
		e.log.Warn().Str("reason", res.Stopped).Msg("sweep stopped before the end; the summary is partial")
	}
	if err := e.render(sweepResult{res, e.clockSkew()}); err != nil {
		return err
	}
	if runErr != nil {
		if errors.Is(runErr, sweep.ErrReadOnly) {
			return runErr
		}
		return fmt.Errorf("sweep failed (partial summary above): %w", runErr)
	}
	return nil
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
	if isTerminal(e.c.App.ErrWriter) {
		return e.stderr, func() {}, nil
	}
	return nil, nil, fmt.Errorf("there is no terminal to ask on: %v", err)
}

// confirmSweep shows what a sweep would remove on w and asks the operator.
func confirmSweep(c *cli.Context, e *env, sw *sweep.Sweeper, opts sweep.Options, w io.Writer) (bool, error) {
	dry := opts
	dry.DryRun, dry.Orphans = true, false
	dry.Progress = e.progress("checking")
	res, err := sw.Run(c.Context, dry)
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
	fmt.Fprintf(w, "Remove %d expired jobs (%s)? [y/N] ", res.Removed, destinationOf(opts, c.String("archive")))
	return askYes(c.App.Reader), nil
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

type sweepResult struct {
	*sweep.Result
	ClockSkew *float64 `json:"clock_skew_seconds,omitempty"`
}

func (r sweepResult) Tables() []report.Table {
	removed := "removed"
	if r.DryRun {
		removed = "would remove"
	}
	t := report.Table{Header: []string{"queue", "scanned", "expired", removed, "already gone", "changed", "skipped", "seconds"}}
	row := func(q sweep.QueueResult) []string {
		return []string{q.Queue, report.Int(q.Scanned), report.Int(q.Expired), report.Int(q.Removed), report.Int(q.AlreadyGone),
			report.Int(q.Changed), report.Int(q.Skipped), fmt.Sprintf("%.2f", q.Elapsed)}
	}
	for _, q := range r.Queues {
		t.Rows = append(t.Rows, row(q))
	}
	if r.Delayed != nil {
		t.Rows = append(t.Rows, row(*r.Delayed))
	}
	if r.Failed != nil {
		t.Rows = append(t.Rows, row(*r.Failed))
	}
	t.Footer = []string{"total", report.Int(r.Scanned), report.Int(r.Expired), report.Int(r.Removed), report.Int(r.AlreadyGone),
		report.Int(r.Changed), report.Int(r.Skipped), fmt.Sprintf("%.2f", r.Elapsed)}
	t.Notes = append(t.Notes, "removed jobs: "+r.Destination)
	if r.Stopped != "" {
		t.Notes = append(t.Notes, "stopped early: "+r.Stopped+" (partial)")
	}
	if o := r.Orphans; o != nil {
		verb := "set to vanish"
		if r.DryRun {
			verb = "would set to vanish"
		}
		hold := report.Duration(secondsDuration(o.HoldSeconds))
		t.Notes = append(t.Notes, fmt.Sprintf("orphaned deadline keys: %d of %d scanned; %s %d expired within %s, %d future ones %s after their deadline; %d unreadable left alone; none deleted",
			o.Orphans, o.Keys, verb, o.Expired, hold, o.Expiring, hold, o.Invalid))
	}
	t.Notes = append(t.Notes, problemNotes(r.Problems)...)
	return []report.Table{t}
}
