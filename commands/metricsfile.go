package commands

import (
	"errors"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/fleet"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/sweep"
)

// metricsFileFlag is --metrics-file, for the commands cron runs.
func metricsFileFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics-file", EnvVars: []string{"RESQUE_EXPIRE_METRICS_FILE"},
		Usage: "write this run's Prometheus metrics to this file for node_exporter's textfile collector (e.g. /var/lib/node_exporter/textfile/resque_expire_sweep.prom); see docs/metrics.md"}
}

// metricsFile collects one run's metrics for --metrics-file. Build it with
// e.metricsFile right before connecting, defer its write, set rdb once
// connected, and call observe when the run is over (while rdb is open). Without --metrics-file
// it does nothing.
type metricsFile struct {
	e       *env
	path    string
	command string
	start   time.Time
	rdb     redis.UniversalClient
	set     *metrics.Set
	result  string
	// readRemoved: the removal counters are this command's to report
	// (sweep): node_exporter refuses a series found in two files.
	readRemoved bool
}

func (e *env) metricsFile(command string) *metricsFile {
	m := &metricsFile{e: e, path: e.metricsPath, command: command, start: time.Now(), result: metrics.ResultError}
	if m.path != "" {
		// One of many targets (--targets): its series carry its name.
		m.set = metrics.New(metrics.Options{Version: Version, Command: command, Target: os.Getenv(fleet.TargetEnv)})
	}
	return m
}

// observe records how the run ended; fn adds the run's own findings.
func (m *metricsFile) observe(runErr error, fn func(*metrics.Set)) {
	if m.set == nil {
		return
	}
	var held *sweep.LockHeldError
	switch {
	case runErr == nil:
		m.result = metrics.ResultOK
	case errors.As(runErr, &held):
		m.result = metrics.ResultLockHeld
	}
	if fn != nil {
		fn(m.set)
	}
	if m.rdb != nil && m.readRemoved {
		if counts, err := sweep.RemovedTotals(m.e.ctx, m.rdb, m.e.layout); err == nil {
			m.set.SetRemoved(counts)
		} else {
			m.e.log.Warn().Err(err).Msg("could not read the removal counters for --metrics-file")
		}
	}
}

// write writes the file. A run that did not succeed keeps the last success
// of the file it replaces. Failing to write is logged, not fatal: the run
// itself is what the exit code reports.
func (m *metricsFile) write() {
	if m.set == nil {
		return
	}
	end := time.Now()
	m.set.SetRedisUp(m.rdb != nil)
	if m.e.skew != nil {
		m.set.SetClockSkew(*m.e.skew)
	}
	if m.result != metrics.ResultOK {
		if last := metrics.LastSuccess(m.path, m.command); last > 0 {
			m.set.SetLastSuccess(m.command, last)
		}
	}
	m.set.ObserveRun(m.command, m.result, end.Sub(m.start), end)
	if err := m.set.WriteTextfile(m.path); err != nil {
		m.e.log.Warn().Err(err).Msg("could not write --metrics-file")
	}
}

func observeSummary(m *metrics.Set, sum *inspect.Summary) {
	if sum != nil {
		m.ObserveSummary(sum)
		m.SetScanned("inspect", sum.Totals.Jobs)
	}
}

func observeAudit(m *metrics.Set, rep *audit.Report) {
	if rep != nil {
		m.ObserveAudit(rep)
	}
}
