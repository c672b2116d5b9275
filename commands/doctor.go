package commands

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/doctor"
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
		Action: action(newDoctorOptions, doctorAction),
	}
}

// doctorOptions: doctor has no options of its own.
type doctorOptions struct{}

func newDoctorOptions() *doctorOptions { return &doctorOptions{} }

func (*doctorOptions) bind(*cli.Context) {}
func (*doctorOptions) validate() error   { return nil }

func doctorAction(ctx context.Context, e *env, _ *doctorOptions) error {
	rdb, err := e.connect()
	if err != nil {
		return err
	}
	defer rdb.Close()
	rep := doctor.Run(ctx, rdb, doctor.Options{Layout: e.layout, Sentinel: e.conn.SentinelMaster != "", Host: hostClock()})
	if err := e.render(doctorResult{rep}); err != nil {
		return err
	}
	if rep.Failed {
		return errThreshold
	}
	return nil
}
