package commands

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/report"
	"github.com/resque-expire/resque-expire/sweep"
)

var _ = register(enqueueCommand)

func enqueueCommand() *cli.Command {
	return &cli.Command{
		Name:      "enqueue",
		Usage:     "push one job with its deadline, atomically (canaries, scripts)",
		ArgsUsage: "[--] ARG...",
		Description: `Pushes one Resque job, {"class":CLASS,"args":[ARG...]} plus its id, together with its
deadline key, in one Lua script: the RPUSH, the queue's registration (SADD <ns>:queues) and
the deadline (SET NX, expiring --retention after the deadline) happen atomically, so no job
exists without its deadline. Each ARG is a JSON value when it parses as one (42, true,
'{"a":1}'), a string otherwise. The id (a random UUID unless --id) goes where the first
--id-path looks (top-level "id" by default), or into the ActiveJob wrapper with --activejob.
--at / --in put the job on resque-scheduler's delayed schedule instead; its TTL then counts
from that time. Prints the id.

Examples:
  resque-expire enqueue --queue mailers --class WelcomeMail --ttl 1h -- 42 '{"locale":"fr"}'
  resque-expire enqueue --queue default --class Reports::Daily --activejob --ttl 6h -- 2024-05-01
  resque-expire enqueue --queue low --class Cleanup --in 30m --ttl 2h
  id=$(resque-expire enqueue --queue canary --class Canary --ttl 1s) && sleep 2 && resque-expire sweep --yes --queue canary`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "queue", Usage: "queue to push to"},
			&cli.StringFlag{Name: "class", Usage: "job class (with --activejob, the ActiveJob job_class)"},
			&cli.StringFlag{Name: "ttl", Usage: "deadline = now (or the --at/--in time) + TTL: 90s, 6h, 3d, 1d12h"},
			&cli.StringFlag{Name: "id", Usage: "job id (default: a random UUID)"},
			&cli.BoolFlag{Name: "activejob", Usage: "write the payload Rails' Resque adapter writes (JobWrapper, id as job_id)"},
			&cli.StringFlag{Name: "at", Usage: "put the job on resque-scheduler's delayed schedule for this time (RFC 3339 or Unix seconds)"},
			&cli.StringFlag{Name: "in", Usage: "put the job on resque-scheduler's delayed schedule this far ahead"},
			&cli.StringFlag{Name: "retention", Value: "7d", Usage: "the deadline key expires this long after the deadline"},
		},
		Action: runEnqueue,
	}
}

func runEnqueue(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	req := sweep.EnqueueRequest{Queue: c.String("queue"), Class: c.String("class"), ID: c.String("id"),
		IDPaths: e.scan.IDPaths, ActiveJob: c.Bool("activejob"), Args: sweep.ParseArgs(c.Args().Slice())}
	if req.Queue == "" || req.Class == "" || c.String("ttl") == "" {
		return usageErrorf("enqueue needs --queue, --class and --ttl")
	}
	if req.TTL, err = resque.ParseDuration(c.String("ttl")); err != nil {
		return usageErrorf("--ttl %q: %v", c.String("ttl"), err)
	}
	if req.TTL <= 0 {
		return usageErrorf("--ttl must be positive, got %q", c.String("ttl"))
	}
	if req.Retention, err = resque.ParseDuration(c.String("retention")); err != nil {
		return usageErrorf("--retention %q: %v", c.String("retention"), err)
	}
	if req.Retention <= 0 {
		return usageErrorf("--retention must be positive, got %q", c.String("retention"))
	}
	now := time.Now()
	req.Now = func() time.Time { return now }
	switch at, in := c.String("at"), c.String("in"); {
	case at != "" && in != "":
		return usageErrorf("give --at or --in, not both")
	case at != "":
		if req.At, err = resque.ParseTime(at); err != nil {
			return usageErrorf("--at %q: %v", at, err)
		}
	case in != "":
		d, err := resque.ParseDuration(in)
		if err != nil {
			return usageErrorf("--in %q: %v", in, err)
		}
		if d <= 0 {
			return usageErrorf("--in must be positive, got %q", in)
		}
		req.At = now.Add(d)
	}

	rdb, err := e.connect()
	if err != nil {
		return err
	}
	defer rdb.Close()
	res, err := sweep.Enqueue(c.Context, rdb, e.layout, req)
	switch {
	case errors.Is(err, sweep.ErrInvalidRequest):
		return usage(err)
	case errors.Is(err, sweep.ErrReadOnly):
		return err
	case err != nil:
		return err
	}
	ev := e.log.Info().Str("id", res.ID).Str("queue", res.Queue).Str("class", res.Class).Str("list", res.List).
		Time("deadline", res.Deadline)
	if res.DelayedAt != 0 {
		ev = ev.Int64("delayed_at", res.DelayedAt)
	}
	ev.Msg("enqueued job")
	if e.format == report.FormatTable {
		_, err := fmt.Fprintln(e.stdout, res.ID)
		return err
	}
	return e.render(enqueueResult{res})
}

type enqueueResult struct{ sweep.EnqueueResult }

func (r enqueueResult) Tables() []report.Table {
	delayed := ""
	if r.DelayedAt != 0 {
		delayed = report.Time(time.Unix(r.DelayedAt, 0))
	}
	return []report.Table{{
		Header: []string{"id", "queue", "class", "list", "deadline", "delayed_at", "expiration_key", "key_expires_at"},
		Rows: [][]string{{r.ID, r.Queue, r.Class, r.List, report.Time(r.Deadline), delayed, r.ExpirationKey,
			report.Time(r.KeyExpiresAt)}},
	}}
}
