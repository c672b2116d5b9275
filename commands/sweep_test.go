package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/sweep"
)

// validSweep is sweep's options as its flags' defaults leave them.
func validSweep() sweepOptions {
	return sweepOptions{filters: filters{delayed: true}, lockTTL: sweep.DefaultLockTTL, orphanGrace: time.Hour,
		maxScriptTime: sweep.DefaultMaxScriptTime}
}

// checkValidation runs validate on each case's options: a case with want
// "" must pass, any other must fail with a usage error containing want.
func checkValidation[O any](t *testing.T, name string, o *O, validate func(*O) error, want string) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		err := validate(o)
		switch {
		case want == "" && err != nil:
			t.Fatalf("validate: %v, want no error", err)
		case want == "":
		case err == nil:
			t.Fatalf("validate passed, want %q", want)
		case !strings.Contains(err.Error(), want):
			t.Fatalf("validate: %q, want %q", err, want)
		case exitCode(err) != ExitUsage:
			t.Fatalf("validate: %v is exit %d, want a usage error", err, exitCode(err))
		}
	})
}

func TestSweepOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*sweepOptions)
		want string
	}{
		{"defaults", func(*sweepOptions) {}, ""},
		{"everything given", func(o *sweepOptions) {
			o.grace, o.maxDuration, o.maxAge, o.limit, o.archive, o.toFailed = time.Minute, time.Hour, 72*time.Hour, 10, "a.jsonl", true
		}, ""},
		{"negative grace", func(o *sweepOptions) { o.grace = -time.Second }, "--grace must not be negative"},
		{"negative max-duration", func(o *sweepOptions) { o.maxDuration = -1 }, "--max-duration must not be negative"},
		{"negative max-age", func(o *sweepOptions) { o.maxAge = -1 }, "--max-age must not be negative"},
		{"negative orphan-grace", func(o *sweepOptions) { o.orphanGrace = -1 }, "--orphan-grace must not be negative"},
		{"negative lock-ttl", func(o *sweepOptions) { o.lockTTL = -1 }, "--lock-ttl must not be negative"},
		{"negative max-script-time", func(o *sweepOptions) { o.maxScriptTime = -1 }, "--max-script-time must not be negative"},
		{"negative limit", func(o *sweepOptions) { o.limit = -1 }, "--limit must not be negative"},
		{"lock-ttl under 1s", func(o *sweepOptions) { o.lockTTL = 500 * time.Millisecond }, "--lock-ttl must be at least 1s (it is renewed every third of it), got 500ms"},
		{"lock-ttl of 1s", func(o *sweepOptions) { o.lockTTL = time.Second }, ""},
		{"orphans", func(o *sweepOptions) { o.orphans = true }, ""},
		{"orphans with --queue", func(o *sweepOptions) { o.orphans, o.queues = true, []string{"q"} }, "--orphans needs every queue in view"},
		{"orphans with --no-delayed", func(o *sweepOptions) { o.orphans, o.delayed = true, false }, "--orphans needs every queue in view"},
		{"orphans with --class", func(o *sweepOptions) { o.orphans, o.classes = true, []string{"C"} }, ""},
		{"failed", func(o *sweepOptions) { o.failed.failed = true }, ""},
		{"only failed", func(o *sweepOptions) { o.failed = failedSweep{failed: true, only: "failed", onlySet: true} }, ""},
		{"only something else", func(o *sweepOptions) { o.failed = failedSweep{failed: true, only: "queues", onlySet: true} }, `--only: the one value is "failed", got "queues"`},
		{"only without failed", func(o *sweepOptions) { o.failed = failedSweep{only: "failed", onlySet: true} }, "--only failed needs --failed"},
		{"failed-older-than", func(o *sweepOptions) { o.failed = failedSweep{failed: true, olderThan: time.Hour, olderThanSet: true} }, ""},
		{"negative failed-older-than", func(o *sweepOptions) { o.failed = failedSweep{failed: true, olderThan: -1, olderThanSet: true} }, "--failed-older-than must not be negative"},
		{"failed-older-than 0", func(o *sweepOptions) { o.failed = failedSweep{failed: true, olderThanSet: true} }, "--failed-older-than must be more than 0"},
		{"failed-older-than without failed", func(o *sweepOptions) { o.failed = failedSweep{olderThan: time.Hour, olderThanSet: true} }, "--failed-older-than needs --failed"},
		{"failed with to-failed", func(o *sweepOptions) { o.failed.failed, o.toFailed = true, true }, "--failed and --to-failed cannot be combined"},
		{"only failed with orphans", func(o *sweepOptions) {
			o.failed, o.orphans = failedSweep{failed: true, only: "failed", onlySet: true}, true
		}, "--orphans needs the queues and delayed jobs in view: it cannot be combined with --only failed"},
	}
	for _, c := range cases {
		o := validSweep()
		c.edit(&o)
		checkValidation(t, c.name, &o, (*sweepOptions).validate, c.want)
	}
}

// TestSweepOptionsLibrary: the options handed to sweep.Run are the flags'.
func TestSweepOptionsLibrary(t *testing.T) {
	o := validSweep()
	o.dryRun, o.grace, o.limit, o.toFailed = true, time.Minute, 7, true
	o.failed = failedSweep{failed: true, only: "failed", onlySet: true, olderThan: time.Hour}
	got := o.library()
	if !got.DryRun || got.Grace != time.Minute || got.Limit != 7 || !got.ToFailed || !got.Delayed ||
		!got.Failed || !got.OnlyFailed || got.FailedOlderThan != time.Hour || got.LockTTL != sweep.DefaultLockTTL {
		t.Errorf("library() = %+v", got)
	}
	if o.metricsCommand() != "sweep_dry_run" {
		t.Errorf("a dry run's metrics are labelled %q", o.metricsCommand())
	}
}

func TestServeOptionsValidate(t *testing.T) {
	valid := func() serveOptions {
		return serveOptions{sweep: validSweep(), audit: auditOptions{families: validFamilies()}, interval: 5 * time.Minute,
			jitter: "0%", listen: "127.0.0.1:9187"}
	}
	cases := []struct {
		name string
		edit func(*serveOptions)
		want string
	}{
		{"defaults", func(*serveOptions) {}, ""},
		{"interval 0", func(o *serveOptions) { o.interval = 0 }, "--interval must be positive"},
		{"negative interval", func(o *serveOptions) { o.interval = -time.Minute }, "--interval must be positive"},
		{"bad jitter", func(o *serveOptions) { o.jitter = "100%" }, "--jitter: want a share of the interval below 100%"},
		{"negative audit interval", func(o *serveOptions) { o.auditInterval = -1 }, "--audit-interval must not be negative"},
		{"a sweep flag", func(o *serveOptions) { o.sweep.limit = -1 }, "--limit must not be negative"},
		{"fix without audit", func(o *serveOptions) { o.fix = true }, "--fix-* and --apply act in the audit: give --audit-interval too"},
		{"fix with audit", func(o *serveOptions) { o.fix, o.auditInterval, o.audit.fixStuck = true, time.Hour, true }, ""},
		{"an audit flag", func(o *serveOptions) { o.auditInterval, o.audit.apply = time.Hour, true }, "--apply needs something to fix"},
		{"audit flags unchecked without audits", func(o *serveOptions) { o.audit.maxKeys = -1 }, ""},
	}
	for _, c := range cases {
		o := valid()
		c.edit(&o)
		checkValidation(t, c.name, &o, (*serveOptions).validate, c.want)
	}
}
