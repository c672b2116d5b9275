package commands

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/report"
	"github.com/resque-expire/resque-expire/sweep"
)

// familyFlags choose the key families audit and check read.
func familyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "pattern", Usage: "audit the keys matching this SCAN glob, passed to Redis as it is (repeatable)"},
		&cli.StringFlag{Name: "config", Usage: "YAML file of key families: pattern, ttl, values, stuck_value, stuck_after (see docs/audit.md)"},
		&cli.Int64Flag{Name: "scan-count", Value: inspect.DefaultScanCount, Usage: "COUNT hint of each SCAN"},
		durationFlag(cli.DurationFlag{Name: "max-duration", Usage: "stop after this long and report the numbers as partial (0 = no limit)"}),
	}
}

// families returns the families of --config and --pattern, or the design
// note's idempotency families when neither is given.
func families(c *cli.Context) ([]inspect.Family, error) {
	var out []inspect.Family
	if path := c.String("config"); path != "" {
		fs, err := inspect.LoadFamilies(path)
		if err != nil {
			return nil, usageErrorf("--config: %v", err)
		}
		out = append(out, fs...)
	}
	for _, p := range c.StringSlice("pattern") {
		if p == "" {
			return nil, usageErrorf("--pattern must not be empty")
		}
		out = append(out, inspect.Family{Pattern: p})
	}
	if len(out) == 0 {
		out = inspect.DefaultFamilies()
	}
	return out, nil
}

func checkScanFlags(c *cli.Context) error {
	if c.Int64("scan-count") < 1 {
		return usageErrorf("--scan-count must be at least 1")
	}
	if c.Duration("max-duration") < 0 {
		return usageErrorf("--max-duration must not be negative")
	}
	return nil
}

var _ = register(auditCommand)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "report rotten idempotency keys, deadline keys, loner markers and duplicate jobs (writes only with --apply)",
		Description: `Reads, with SCAN and pipelined TYPE/PTTL/GET, each family of keys and reports: keys found,
keys without TTL, the remaining TTLs (min/median/p90/max and a histogram), the most frequent
values, keys of an unexpected type, values not among the expected ones, and stuck keys (the
family's stuck_value held longer than stuck_after, or with no TTL at all). Families come
from --pattern or --config; with neither, the design note's email_sent:* and payment:*.

It also reads every queue and delayed bucket for duplicate jobs (the same id, or the same
payload, more than once), the deadline keys for orphans (no job with their id anywhere),
and resque-loner's markers (<ns>:loners:queue:<q>:job:<md5>) for orphaned locks whose job
is not in their queue, which block every later enqueue of that job.

Memory stays bounded: families are counted and sampled, jobs remembered as 64-bit hashes
(about 1M jobs for some tens of MB). --max-keys and --max-duration stop early; the report
then says its numbers are partial.

Fixes are dry runs unless --apply is given; each key is re-checked by a script at write
time and kept if it changed since it was judged:
  --fix-ttl D    give keys of the families that have no TTL a TTL of D
  --fix-stuck    delete stuck keys (each one is logged)
  --fix-orphans  delete orphaned loner markers without TTL; give orphaned deadline keys
                 whose deadline has passed a TTL of 1h (never deleted: their job may
                 have been between a delayed bucket and a queue while it was read)

Examples:
  resque-expire audit
  resque-expire audit --pattern 'lock:*' --pattern 'idem:*' --skip jobs
  resque-expire audit --config families.yml --format json | jq '.families[] | {name, no_ttl, stuck}'
  resque-expire audit --fix-stuck --fix-orphans            # dry run: what would change
  resque-expire audit --fix-ttl 168h --fix-stuck --apply`,
		Flags: append(familyFlags(),
			&cli.StringSliceFlag{Name: "skip", Usage: "leave out a part: families, jobs, deadlines, loners (repeatable)"},
			&cli.Int64Flag{Name: "max-keys", Usage: "stop each key scan after this many keys and report it as partial (0 = no limit)"},
			&cli.IntFlag{Name: "examples", Value: inspect.DefaultExamples, Usage: "example keys and jobs shown per finding"},
			durationFlag(cli.DurationFlag{Name: "fix-ttl", Usage: "give keys of the families that have no TTL this TTL (dry run without --apply)"}),
			&cli.BoolFlag{Name: "fix-stuck", Usage: "delete stuck keys (dry run without --apply)"},
			&cli.BoolFlag{Name: "fix-orphans", Usage: "delete orphaned loner markers; give expired orphaned deadline keys a TTL of 1h (dry run without --apply)"},
			&cli.BoolFlag{Name: "apply", Usage: "make the --fix-* changes; without it they are only reported"},
			metricsFileFlag(),
		),
		Action: runAudit,
	}
}

func runAudit(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	opts, fix, err := auditOptions(c)
	if err != nil {
		return err
	}
	mf := e.metricsFile("audit")
	defer mf.write()
	rdb, err := e.connect()
	if err != nil {
		return err
	}
	defer rdb.Close()
	mf.rdb = rdb
	s, err := e.scanner(rdb, nil, nil)
	if err != nil {
		return err
	}
	p := e.progress("audit")
	opts.Progress = p
	var result report.Result
	var rep *inspect.AuditReport
	var runErr error
	if fix != nil {
		fix.Audit = opts
		fix.OnAction = func(a sweep.FixAction) { logFix(e, a) }
		var res *sweep.FixResult
		res, runErr = sweep.Fix(c.Context, s, *fix)
		if res != nil && res.Audit != nil {
			rep, result = res.Audit, fixResult{res}
		}
	} else {
		rep, runErr = s.Audit(c.Context, opts)
		if rep != nil {
			result = auditResult{rep, e.clockSkew()}
		}
	}
	finishProgress(p)
	mf.observe(runErr, func(m *metrics.Set) { observeAudit(m, rep) })
	if rep == nil {
		return runErr
	}
	for _, pr := range rep.Problems {
		e.log.Warn().Str("key", pr.Key).Str("kind", pr.Kind).Msg(pr.Detail)
	}
	if rep.Partial && runErr == nil {
		e.log.Warn().Str("reason", rep.Stopped).Msg("audit stopped early; the numbers are partial")
	}
	if err := e.render(result); err != nil {
		return err
	}
	if runErr != nil {
		if errors.Is(runErr, sweep.ErrReadOnly) {
			return runErr
		}
		return fmt.Errorf("audit failed (partial report above): %w", runErr)
	}
	return nil
}

// auditOptions reads the audit's flags; fix is nil unless a --fix-* flag
// is given.
func auditOptions(c *cli.Context) (inspect.AuditOptions, *sweep.FixOptions, error) {
	var opts inspect.AuditOptions
	if err := checkScanFlags(c); err != nil {
		return opts, nil, err
	}
	switch {
	case c.Int64("max-keys") < 0:
		return opts, nil, usageErrorf("--max-keys must not be negative")
	case c.Int("examples") < 0:
		return opts, nil, usageErrorf("--examples must not be negative")
	case c.Duration("fix-ttl") < 0:
		return opts, nil, usageErrorf("--fix-ttl must not be negative")
	}
	skip := map[string]bool{}
	for _, s := range c.StringSlice("skip") {
		for _, part := range strings.Split(s, ",") {
			switch part = strings.TrimSpace(part); part {
			case "families", "jobs", "deadlines", "loners":
				skip[part] = true
			default:
				return opts, nil, usageErrorf("--skip: unknown part %q (want families, jobs, deadlines or loners)", part)
			}
		}
	}
	if !skip["families"] {
		fs, err := families(c)
		if err != nil {
			return opts, nil, err
		}
		opts.Families = fs
	} else if c.IsSet("pattern") || c.IsSet("config") {
		return opts, nil, usageErrorf("--skip families leaves nothing for --pattern or --config to do")
	}
	opts.Jobs, opts.Deadlines, opts.Loners = !skip["jobs"], !skip["deadlines"], !skip["loners"]
	opts.ScanCount, opts.MaxKeys, opts.MaxDuration = c.Int64("scan-count"), c.Int64("max-keys"), c.Duration("max-duration")
	opts.Examples = c.Int("examples")
	if opts.Examples == 0 {
		opts.Examples = -1 // none
	}

	fix := &sweep.FixOptions{TTL: c.Duration("fix-ttl"), Stuck: c.Bool("fix-stuck"), Orphans: c.Bool("fix-orphans"), Apply: c.Bool("apply")}
	switch {
	case fix.TTL == 0 && !fix.Stuck && !fix.Orphans:
		if fix.Apply {
			return opts, nil, usageErrorf("--apply needs something to fix: --fix-ttl, --fix-stuck or --fix-orphans")
		}
		return opts, nil, nil
	case (fix.TTL > 0 || fix.Stuck) && skip["families"]:
		return opts, nil, usageErrorf("--fix-ttl and --fix-stuck act on the key families: drop --skip families")
	case fix.Orphans && (!opts.Jobs || (!opts.Deadlines && !opts.Loners)):
		return opts, nil, usageErrorf("--fix-orphans needs the jobs and the deadline keys or loner markers read: drop --skip jobs")
	}
	return opts, fix, nil
}

func logFix(e *env, a sweep.FixAction) {
	verbs := map[string][2]string{
		sweep.ActionExpire:         {"would give a TTL to key", "gave a TTL to key"},
		sweep.ActionDeleteStuck:    {"would delete stuck key", "deleted stuck key"},
		sweep.ActionDeleteLoner:    {"would delete orphaned loner marker", "deleted orphaned loner marker"},
		sweep.ActionExpireDeadline: {"would give orphaned deadline key a TTL of " + inspect.OrphanHold.String(), "gave orphaned deadline key a TTL of " + inspect.OrphanHold.String()},
	}
	v := verbs[a.Action]
	ev := e.log.Info()
	msg := v[1]
	switch a.Outcome {
	case sweep.OutcomeWould:
		msg = v[0]
	case sweep.OutcomeChanged:
		ev, msg = e.log.Warn(), "kept key changed since it was judged ("+a.Action+")"
	case sweep.OutcomeGone:
		msg = "key already gone (" + a.Action + ")"
	}
	ev.Str("family", a.Family).Str("key", a.Key).Str("value", a.Value).Float64("ttl_seconds", a.TTLSeconds).Msg(msg)
}

type auditResult struct {
	*inspect.AuditReport
	ClockSkew *float64 `json:"clock_skew_seconds,omitempty"`
}

func (r auditResult) Tables() []report.Table { return auditTables(r.AuditReport) }

type fixResult struct{ *sweep.FixResult }

func (r fixResult) Tables() []report.Table {
	t := report.Table{Title: "Fixes (applied)", Header: []string{"action", "candidates", "done", "kept: changed since judged", "gone meanwhile"}}
	if r.DryRun {
		t.Title = "Fixes (dry run: nothing was changed; add --apply)"
	}
	row := func(name string, c *sweep.FixCount) {
		if c != nil {
			t.Rows = append(t.Rows, []string{name, report.Int(c.Candidates), report.Int(c.Done), report.Int(c.Changed), report.Int(c.Gone)})
		}
	}
	if r.TTL != nil {
		row(fmt.Sprintf("give a TTL of %s", report.Duration(secondsDuration(r.TTLSeconds))), r.TTL)
	}
	row("delete stuck keys", r.Stuck)
	row("delete orphaned loner markers (no TTL)", r.LonerOrphans)
	row("give orphaned deadline keys (expired) a TTL of "+report.Duration(inspect.OrphanHold), r.DeadlineOrphans)
	return append(auditTables(r.Audit), t)
}

func auditTables(r *inspect.AuditReport) []report.Table {
	var tables []report.Table
	all := append([]*inspect.FamilyReport{}, r.Families...)
	for _, f := range []*inspect.FamilyReport{r.Deadlines, r.Loners} {
		if f != nil {
			all = append(all, f)
		}
	}
	if len(all) > 0 {
		t := report.Table{Title: "Key families",
			Header: []string{"family", "pattern", "keys", "no TTL", "wrong type", "unexpected value", "stuck", "TTL min", "median", "p90", "max"}}
		for _, f := range all {
			t.Rows = append(t.Rows, familyRow(f))
			t.Notes = append(t.Notes, familyNotes(f)...)
		}
		tables = append(tables, t)
	}
	if r.Deadlines != nil || r.Loners != nil {
		tables = append(tables, orphanTable(r))
	}
	if r.Jobs != nil {
		tables = append(tables, jobsTable(r.Jobs))
	}
	if len(tables) == 0 {
		tables = append(tables, report.Table{Title: "Audit"})
	}
	last := &tables[len(tables)-1]
	if r.Partial {
		last.Notes = append(last.Notes, fmt.Sprintf("PARTIAL: stopped early (%s); the numbers above are partial", r.Stopped))
	}
	last.Notes = append(last.Notes, problemNotes(r.Problems)...)
	return tables
}

func familyRow(f *inspect.FamilyReport) []string {
	keys := report.Int(f.Keys)
	switch {
	case f.Skipped:
		keys = "skipped"
	case f.Partial:
		keys += " (partial)"
	}
	dash := func(applies bool, n int64) string {
		if !applies {
			return "-"
		}
		return report.Int(n)
	}
	row := []string{f.Name, f.Pattern, keys, report.Int(f.NoTTL), report.Int(f.WrongType),
		dash(len(f.ExpectedValues) > 0, f.Unexpected), dash(f.StuckValue != "", f.Stuck)}
	if f.TTL.Count == 0 {
		return append(row, "-", "-", "-", "-")
	}
	d := func(s float64) string { return report.Duration(secondsDuration(s)) }
	return append(row, d(f.TTL.MinSeconds), d(f.TTL.MedianSeconds), d(f.TTL.P90Seconds), d(f.TTL.MaxSeconds))
}

func familyNotes(f *inspect.FamilyReport) []string {
	var out []string
	if f.Skipped {
		return []string{fmt.Sprintf("%s: skipped (out of time)", f.Name)}
	}
	if len(f.TopValues) > 0 {
		vals := make([]string, len(f.TopValues))
		for i, v := range f.TopValues {
			vals[i] = fmt.Sprintf("%q %d", v.Value, v.Count)
		}
		out = append(out, fmt.Sprintf("%s: top values: %s", f.Name, strings.Join(vals, ", ")))
	}
	if f.TTL.Sampled {
		out = append(out, fmt.Sprintf("%s: TTL median and p90 sampled from %d of %d keys", f.Name, f.TTL.SampleSize, f.TTL.Count))
	}
	if f.StuckUnknownAge > 0 {
		out = append(out, fmt.Sprintf("%s: %d keys hold %q with a TTL but the family has no expected ttl to tell their age: not counted as stuck",
			f.Name, f.StuckUnknownAge, f.StuckValue))
	}
	if f.Unreadable > 0 {
		out = append(out, fmt.Sprintf("%s: %d unreadable", f.Name, f.Unreadable))
	}
	out = append(out, histogram(f)...)
	for _, kind := range []string{inspect.ExampleNoTTL, inspect.ExampleWrongType, inspect.ExampleUnexpected, inspect.ExampleStuck, inspect.ExampleUnreadable} {
		for _, ex := range f.Examples[kind] {
			out = append(out, fmt.Sprintf("  %s %s: %s", f.Name, strings.ReplaceAll(kind, "_", " "), exampleText(ex)))
		}
	}
	return out
}

func exampleText(ex inspect.KeyExample) string {
	s := ex.Key + " (" + ex.Type
	if ex.Value != "" {
		s += fmt.Sprintf(" %q", ex.Value)
	}
	if ex.TTLSeconds >= 0 {
		s += ", TTL " + report.Duration(secondsDuration(ex.TTLSeconds))
	} else {
		s += ", no TTL"
	}
	s += ")"
	if ex.Detail != "" {
		s += " " + ex.Detail
	}
	return s
}

// histogram draws the remaining TTLs of a family as text bars.
func histogram(f *inspect.FamilyReport) []string {
	if f.TTL.Count == 0 {
		return nil
	}
	const width = 30
	var most int64
	for _, b := range f.TTL.Histogram {
		most = max(most, b.Keys)
	}
	// Only the buckets from the first to the last that holds keys.
	lo, hi := 0, len(f.TTL.Histogram)-1
	for lo < hi && f.TTL.Histogram[lo].Keys == 0 {
		lo++
	}
	for hi > lo && f.TTL.Histogram[hi].Keys == 0 {
		hi--
	}
	out := []string{fmt.Sprintf("%s: remaining TTL of %d keys:", f.Name, f.TTL.Count)}
	for _, b := range f.TTL.Histogram[lo : hi+1] {
		n := int(b.Keys * width / most)
		if n == 0 && b.Keys > 0 {
			n = 1
		}
		out = append(out, fmt.Sprintf("  %-6s |%-*s %d", b.Label, width, strings.Repeat("#", n), b.Keys))
	}
	return out
}

func orphanTable(r *inspect.AuditReport) report.Table {
	t := report.Table{Title: "Orphans", Header: []string{"keys", "checked", "orphans", "fixable", "detail"}}
	add := func(f *inspect.FamilyReport, detail func(o *inspect.OrphanReport) string) {
		if f == nil || f.Orphans == nil {
			return
		}
		o := f.Orphans
		if !o.Judged {
			t.Rows = append(t.Rows, []string{f.Name, "-", "-", "-", "not judged: " + o.NotJudged})
			return
		}
		checked := report.Int(o.Checked)
		if f.Partial {
			checked += " (partial)"
		}
		t.Rows = append(t.Rows, []string{f.Name, checked, report.Int(o.Orphans), report.Int(o.Fixable), detail(o)})
		for _, ex := range o.Examples {
			t.Notes = append(t.Notes, fmt.Sprintf("  orphaned %s: %s", strings.TrimSuffix(f.Name, "s"), exampleText(ex)))
		}
	}
	add(r.Deadlines, func(o *inspect.OrphanReport) string {
		return fmt.Sprintf("deadline passed %d (fixable unless already vanishing within %s: %d), ahead %d (job may be running), unreadable %d",
			o.Expired, report.Duration(inspect.OrphanHold), o.Held, o.Live, o.Unreadable)
	})
	add(r.Loners, func(o *inspect.OrphanReport) string {
		return fmt.Sprintf("no TTL %d (block re-enqueue forever: fixable), queue missing %d", o.NoTTL, o.UnknownQueue)
	})
	return t
}

func jobsTable(j *inspect.JobsReport) report.Table {
	t := report.Table{Title: "Duplicate jobs", Header: []string{"queue", "class", "duplicate ids", "identical payloads"}}
	for _, g := range j.Groups {
		q := g.Queue
		if g.Delayed {
			q += " (delayed)"
		}
		t.Rows = append(t.Rows, []string{q, g.Class, report.Int(g.DuplicateIDs), report.Int(g.IdenticalPayloads)})
	}
	t.Footer = []string{"total", "", report.Int(j.DuplicateIDs), report.Int(j.IdenticalPayloads)}
	st := j.States
	t.Notes = append(t.Notes,
		fmt.Sprintf("%d jobs read in %d queues and %d delayed buckets (%d delayed): expired %d, live %d, missing %d, unidentified %d, invalid %d",
			j.Jobs, j.Queues, j.Buckets, j.Delayed, st.Expired, st.Live, st.Missing, st.Unidentified, st.Invalid),
		fmt.Sprintf("%d jobs are extra copies; %d ids and %d payloads occur more than once", j.DuplicateJobs, j.DuplicatedIDs, j.DuplicatedPayloads))
	if j.Partial {
		t.Notes = append(t.Notes, fmt.Sprintf("jobs: stopped early (%s): partial, and orphans were not judged", j.Stopped))
	}
	for _, ex := range j.IDExamples {
		t.Notes = append(t.Notes, fmt.Sprintf("  id %s again: %s in %s", ex.ID, exampleClass(ex), exampleQueue(ex)))
	}
	for _, ex := range j.PayloadExamples {
		t.Notes = append(t.Notes, fmt.Sprintf("  payload again: %s in %s: %s", exampleClass(ex), exampleQueue(ex), ex.Payload))
	}
	return t
}

func exampleQueue(ex inspect.DuplicateExample) string {
	if ex.DelayedAt != 0 {
		return fmt.Sprintf("%s (delayed bucket %d)", ex.Queue, ex.DelayedAt)
	}
	return ex.Queue
}

func exampleClass(ex inspect.DuplicateExample) string {
	if ex.Class == "" {
		return "(no class)"
	}
	return ex.Class
}
