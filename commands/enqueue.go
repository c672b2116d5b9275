package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/enqueue"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/report"
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
		Action: action(newEnqueueOptions, enqueueAction),
	}
}

// enqueueOptions are enqueue's options and operands (the job's args).
type enqueueOptions struct {
	queue, class, id, ttl, retention, at, in string
	activeJob                                bool
	args                                     []string
}

func newEnqueueOptions() *enqueueOptions { return &enqueueOptions{} }

func (o *enqueueOptions) bind(c *cli.Context) {
	o.queue, o.class, o.id, o.activeJob, o.args = c.String("queue"), c.String("class"), c.String("id"), c.Bool("activejob"), c.Args().Slice()
	o.ttl, o.retention, o.at, o.in = c.String("ttl"), c.String("retention"), c.String("at"), c.String("in")
}

func (o *enqueueOptions) validate() error {
	_, err := o.request(time.Now(), nil)
	return err
}

// request is the job to enqueue at now, its id where idPaths say.
func (o *enqueueOptions) request(now time.Time, idPaths []string) (enqueue.Job, error) {
	var err error
	req := enqueue.Job{Queue: o.queue, Class: o.class, ID: o.id,
		IDPaths: idPaths, ActiveJob: o.activeJob, Args: enqueue.ParseArgs(o.args)}
	if req.Queue == "" || req.Class == "" || o.ttl == "" {
		return req, usageErrorf("enqueue needs --queue, --class and --ttl")
	}
	if req.TTL, err = resque.ParseDuration(o.ttl); err != nil {
		return req, usageErrorf("--ttl %q: %v", o.ttl, err)
	}
	if req.TTL <= 0 {
		return req, usageErrorf("--ttl must be positive, got %q", o.ttl)
	}
	if req.Retention, err = resque.ParseDuration(o.retention); err != nil {
		return req, usageErrorf("--retention %q: %v", o.retention, err)
	}
	if req.Retention <= 0 {
		return req, usageErrorf("--retention must be positive, got %q", o.retention)
	}
	req.Now = func() time.Time { return now }
	switch at, in := o.at, o.in; {
	case at != "" && in != "":
		return req, usageErrorf("give --at or --in, not both")
	case at != "":
		if req.At, err = resque.ParseTime(at); err != nil {
			return req, usageErrorf("--at %q: %v", at, err)
		}
	case in != "":
		d, err := resque.ParseDuration(in)
		if err != nil {
			return req, usageErrorf("--in %q: %v", in, err)
		}
		if d <= 0 {
			return req, usageErrorf("--in must be positive, got %q", in)
		}
		req.At = now.Add(d)
	}
	return req, nil
}

func enqueueAction(ctx context.Context, e *env, o *enqueueOptions) error {
	req, err := o.request(time.Now(), e.scan.IDPaths)
	if err != nil {
		return err
	}
	rdb, err := e.connect()
	if err != nil {
		return err
	}
	defer rdb.Close()
	res, err := enqueue.Run(ctx, rdb, e.layout, req)
	if err != nil {
		return err // exit.go: an invalid request is a usage error
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
