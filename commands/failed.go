package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
)

// maxExpiredFailuresFlag is check's threshold on the failed lists.
var maxExpiredFailuresFlag = &cli.Int64Flag{Name: "max-expired-failures",
	Usage: "at most N expired failure entries (in the failed list, or the multi-queue backend's <queue>_failed lists)", DefaultText: "not checked"}

// expiredFailuresThreshold evaluates --max-expired-failures, when given.
func expiredFailuresThreshold(ctx context.Context, limit *int64, s *inspect.Scanner) ([]audit.ThresholdResult, []inspect.Problem, error) {
	if limit == nil {
		return nil, nil, nil
	}
	lim := *limit
	f, problems, err := s.InspectFailed(ctx)
	if err != nil {
		return nil, problems, err
	}
	detail := fmt.Sprintf("of %d entries in %d failed lists", f.Entries, len(f.Lists))
	return []audit.ThresholdResult{{Name: "expired-failures", Value: f.Expired, Limit: lim, Pass: f.Expired <= lim, Detail: detail}}, problems, nil
}

// failedSweepFlags are sweep's flags for the failed lists.
func failedSweepFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "failed", Usage: "also remove expired failure entries from the failed list(s): entries whose job's deadline passed, or that --to-failed wrote (ResqueExpire::JobExpired)"},
		&cli.StringFlag{Name: "only", Usage: "with --failed: \"failed\" sweeps the failed list(s) alone, not the queues and delayed jobs"},
		durationFlag(cli.DurationFlag{Name: "failed-older-than", Usage: "with --failed: also remove failure entries that failed longer ago than this, whatever their deadline (retention; off by default)"}),
	}
}

// failedSweep are sweep's options for the failed lists.
type failedSweep struct {
	failed bool
	// only is --only's value; onlySet says it was given.
	only    string
	onlySet bool
	// olderThan is --failed-older-than; olderThanSet says it was given.
	olderThan    time.Duration
	olderThanSet bool
}

func (f *failedSweep) bind(c *cli.Context) {
	f.failed, f.only, f.onlySet = c.Bool("failed"), c.String("only"), c.IsSet("only")
	f.olderThan, f.olderThanSet = c.Duration("failed-older-than"), c.IsSet("failed-older-than")
}

// validate checks the failed-list options, with sweep's --to-failed and
// --orphans.
func (f *failedSweep) validate(toFailed, orphans bool) error {
	switch {
	case f.onlySet && f.only != "failed":
		return usageErrorf("--only: the one value is \"failed\", got %q", f.only)
	case f.onlySet && !f.failed:
		return usageErrorf("--only failed needs --failed")
	}
	switch d := f.olderThan; {
	case d < 0:
		return usageErrorf("--failed-older-than must not be negative")
	case f.olderThanSet && d == 0:
		return usageErrorf("--failed-older-than must be more than 0")
	case d > 0 && !f.failed:
		return usageErrorf("--failed-older-than needs --failed")
	case f.failed && toFailed:
		return usageErrorf("--failed and --to-failed cannot be combined: --to-failed puts expired jobs on the failed list as expired failures, --failed removes those")
	case f.onlySet && orphans:
		return usageErrorf("--orphans needs the queues and delayed jobs in view: it cannot be combined with --only failed")
	}
	return nil
}
