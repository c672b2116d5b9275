package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/doctor"
	"github.com/resque-expire/resque-expire/report"
)

var _ = register(doctorCommand)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "read-only pre-flight: server, mode, eviction policy, persistence, clock, permissions, scripts, namespace; exit 3 when a check fails",
		Description: `Checks, without writing any data, that this Redis is fit for resque-expire, and says
what it finds: server flavour and version (Redis, Valkey; others named); mode (standalone,
replica, Sentinel; a Redis Cluster is refused: Resque does not run on Cluster);
maxmemory-policy (volatile-* and allkeys-* evict the deadline and idempotency keys:
warned, with evicted_keys); persistence (off: deadlines are lost on a restart); the clock
skew between this host and Redis; whether the user may run every command a sweep runs;
whether the scripts load; and the namespace (queues, jobs, delayed timestamps, a sample
of deadline keys).

It reads INFO, not CONFIG, so it works where CONFIG is forbidden, and says what it could
not see. Loading the scripts (SCRIPT LOAD) is the one thing it asks Redis to keep.

Exit codes: 0 no check failed (warnings allowed); 3 a check failed; 1 it could not connect.

Examples:
  resque-expire doctor
  resque-expire doctor --format json | jq '.checks[] | select(.status != "ok")'`,
		Action: func(c *cli.Context) error {
			e, err := setup(c)
			if err != nil {
				return err
			}
			rdb, err := e.connect()
			if err != nil {
				return err
			}
			defer rdb.Close()
			rep := doctor.Run(c.Context, rdb, doctor.Options{Layout: e.layout, Sentinel: e.conn.SentinelMaster != "", Host: hostClock()})
			if err := e.render(doctorResult{rep}); err != nil {
				return err
			}
			if rep.Failed {
				return errThreshold
			}
			return nil
		},
	}
}

type doctorResult struct{ *doctor.Report }

func (r doctorResult) Tables() []report.Table {
	t := report.Table{Header: []string{"check", "status", "detail"}}
	fails, warns := 0, 0
	for _, ch := range r.Checks {
		t.Rows = append(t.Rows, []string{ch.Name, ch.Status, ch.Detail})
		switch ch.Status {
		case doctor.Fail:
			fails++
		case doctor.Warn:
			warns++
		}
	}
	t.Notes = append(t.Notes, fmt.Sprintf("%d checks: %d failed, %d warnings", len(r.Checks), fails, warns))
	return []report.Table{t}
}

// Lines makes --format jsonl one line per check.
func (r doctorResult) Lines() []any {
	out := make([]any, len(r.Checks))
	for i, c := range r.Checks {
		out[i] = c
	}
	return out
}
