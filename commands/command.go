package commands

import (
	"context"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/inspect"
)

// Every command has the same shape (restic's): an options struct that its
// bind method fills from the flags, a validate method that checks it
// without any I/O (so that it is unit-tested without Redis), a run
// function that calls one library function and returns its result, and a
// renderer of that result in render_<command>.go. Exit codes are not the
// commands' business: exit.go decides them from the error returned.

// options is a command's options struct.
type options interface {
	// bind reads the command's flags (and operands).
	bind(c *cli.Context)
	// validate checks the options; its errors are usage errors.
	validate() error
}

// action is a command's cli.Action: the global flags (setup), then the
// command's options, bound and validated, then run.
func action[O options](newOptions func() O, run func(ctx context.Context, e *env, o O) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		e, err := setup(c)
		if err != nil {
			return err
		}
		o := newOptions()
		o.bind(c)
		if err := o.validate(); err != nil {
			return err
		}
		return run(c.Context, e, o)
	}
}

// filters are the --queue and --class filters of the commands that read
// jobs, and --delayed/--no-delayed.
type filters struct {
	queues, classes []string
	delayed         bool
}

func (f *filters) bind(c *cli.Context) {
	f.queues, f.classes, f.delayed = c.StringSlice("queue"), c.StringSlice("class"), wantDelayed(c)
}

// filterNames names the filters given that can leave jobs uncounted:
// --class anywhere, --queue for delayed jobs (whose queue is in the
// payload).
func (f *filters) filterNames() string {
	q, cl := len(f.queues) > 0, len(f.classes) > 0
	switch {
	case q && cl:
		return "--queue or --class"
	case q:
		return "--queue"
	}
	return "--class"
}

// filterFlags are --queue, --class and --delayed/--no-delayed (filters).
func filterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "queue", Usage: "only queues matching this glob (repeatable)"},
		&cli.StringSliceFlag{Name: "class", Usage: "only jobs whose class (or ActiveJob job_class) matches this glob (repeatable)"},
		&cli.BoolFlag{Name: "delayed", Value: true, Usage: "include resque-scheduler's delayed jobs"},
		&cli.BoolFlag{Name: "no-delayed", Usage: "leave resque-scheduler's delayed jobs out"},
	}
}

// wantDelayed reads --delayed / --no-delayed (urfave/cli v2 has no negated
// bool flags of its own).
func wantDelayed(c *cli.Context) bool { return c.Bool("delayed") && !c.Bool("no-delayed") }

// session is a command's connection to Redis and the scanner over it.
type session struct {
	rdb     redis.UniversalClient
	scanner *inspect.Scanner
}

// open connects to Redis and builds a scanner with the filters; mf (nil
// for none) learns the client once connected. Close the session when
// done.
func (e *env) open(f filters, mf *metricsFile) (*session, error) {
	rdb, err := e.connect()
	if err != nil {
		return nil, err
	}
	if mf != nil {
		mf.rdb = rdb
	}
	s, err := e.scanner(rdb, f.queues, f.classes)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return &session{rdb: rdb, scanner: s}, nil
}

func (s *session) Close() { s.rdb.Close() }

// track returns the progress reporter of long work (nil when none is
// shown) and the function that clears it when the work is done.
func (e *env) track(label string) (inspect.Progress, func()) {
	p := e.progress(label)
	return p, func() { finishProgress(p) }
}

// logProblems logs each problem a run met, as a warning.
func (e *env) logProblems(ps []inspect.Problem) {
	for _, pr := range ps {
		e.log.Warn().Str("key", pr.Key).Str("kind", pr.Kind).Msg(pr.Detail)
	}
}
