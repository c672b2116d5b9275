package enqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/scripts"
)

// Job describes one job to enqueue with a deadline.
type Job struct {
	// Queue is the queue the job runs on.
	Queue string
	// Class is the job class (with ActiveJob, the job_class; the payload's
	// class is then the ActiveJob wrapper).
	Class string
	// Args are the job's arguments, each one JSON value (see parseArg).
	Args []json.RawMessage
	// ID is the job id; "" generates a random UUID.
	ID string
	// IDPaths are where the tool looks for ids (default
	// resque.DefaultIDPaths). A plain payload gets its id at the first
	// path, which must be a top-level key ("id", "jid"); an ActiveJob
	// payload keeps it at args.0.job_id, which one of the paths must reach.
	IDPaths []string
	// ActiveJob builds the payload Rails' Resque adapter writes: the
	// JobWrapper class with the serialized job as its only argument.
	ActiveJob bool
	// TTL is how long the job may wait: the deadline is now + TTL, or for
	// a delayed job At + TTL (so it never expires before it is due). The
	// deadline is rounded up to the whole second.
	TTL time.Duration
	// At, when set, puts the job on resque-scheduler's delayed schedule for
	// that time (to the second, as resque-scheduler stores it) instead of
	// on the queue.
	At time.Time
	// Retention is how long the deadline key outlives the deadline (its
	// Redis TTL is deadline + Retention); default resque.DefaultRetention.
	Retention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Result says what Run wrote.
type Result struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	Class string `json:"class"`
	// List is the key the payload was pushed to: the queue, or the
	// delayed bucket.
	List          string    `json:"list"`
	ExpirationKey string    `json:"expiration_key"`
	Deadline      time.Time `json:"deadline"`
	KeyExpiresAt  time.Time `json:"key_expires_at"`
	// DelayedAt is the delayed bucket's Unix second, 0 for a queued job.
	DelayedAt int64  `json:"delayed_at,omitempty"`
	Payload   string `json:"payload"`
}

// ErrInvalidRequest is matched (errors.Is) by the errors Run returns for
// a request it cannot carry out as given; nothing was written.
var ErrInvalidRequest = errors.New("invalid enqueue request")

// ErrIDExists is returned by Run when a deadline key for the id already
// exists (another job has this id); nothing was written.
var ErrIDExists = errors.New("a deadline for this job id already exists")

type requestError string

func (e requestError) Error() string        { return string(e) }
func (e requestError) Is(target error) bool { return target == ErrInvalidRequest }

func invalidf(format string, args ...any) error {
	return requestError(fmt.Sprintf(format, args...))
}

// Run pushes one job together with its deadline, in one Lua script
// (enqueue.lua): the payload's RPUSH, the queue's registration in
// <ns>:queues and the deadline key (SET NX, with a Redis TTL of deadline +
// Retention) happen atomically, so no job ever exists without its deadline
// and no deadline without its job. With At set, the job goes on
// resque-scheduler's delayed schedule instead, written exactly as
// resque-scheduler's delayed_push writes it (RPUSH <ns>:delayed:<ts>, SADD
// <ns>:timestamps:<payload> "delayed:<ts>", ZADD <ns>:delayed_queue_schedule
// ts ts), still with its deadline.
//
// It is the reference for application code that wants to enqueue with a
// deadline; docs/enqueue.md shows the same script called from Ruby.
//
// The payload is Resque's {"class":...,"args":[...]} with the id at the
// first id path (or, with ActiveJob, the JobWrapper shape with the id as
// job_id); delayed payloads carry "queue" as resque-scheduler's do. When a
// deadline key for the id exists already, nothing is written and the error
// is ErrIDExists. Jobs that cannot be enqueued as given fail with an error
// matching ErrInvalidRequest.
func Run(ctx context.Context, rdb redis.UniversalClient, layout resque.Layout, job Job) (Result, error) {
	res, err := plan(layout, job)
	if err != nil {
		return Result{}, err
	}
	// A retry of a call whose reply was lost answers what the first
	// attempt did, rather than finding its own deadline key.
	requests := once.NewRequests(layout.Requests(once.NewRunID()))
	n, err := pushWithDeadline(ctx, requests, rdb, layout, res)
	if err == nil {
		_ = requests.Done(ctx, rdb)
	}
	if err != nil {
		if redis.IsReadOnlyError(err) {
			return Result{}, scripts.ErrReadOnly
		}
		if strings.Contains(err.Error(), "syntax error") {
			return Result{}, fmt.Errorf("enqueue: %w (needs Redis 6.2 or later)", err)
		}
		return Result{}, fmt.Errorf("enqueue: %w", err)
	}
	if n != 1 {
		return Result{}, fmt.Errorf("%w: job id %q (%s); nothing was enqueued", ErrIDExists, res.ID, res.ExpirationKey)
	}
	return res, nil
}

// plan validates a job and builds its payload and the Result that says
// where it goes.
func plan(layout resque.Layout, job Job) (Result, error) {
	if err := check(layout, job); err != nil {
		return Result{}, err
	}
	retention := job.Retention
	if retention <= 0 {
		retention = resque.DefaultRetention
	}
	now := time.Now()
	if job.Now != nil {
		now = job.Now()
	}
	pathSpec := job.IDPaths
	if len(pathSpec) == 0 {
		pathSpec = resque.DefaultIDPaths
	}
	paths, err := resque.ParsePaths(pathSpec)
	if err != nil {
		return Result{}, invalidf("id path: %v", err)
	}
	id := job.ID
	if id == "" {
		id = newJobID()
	}
	delayed := !job.At.IsZero()
	base := now
	if delayed {
		if job.At.Unix() <= 0 {
			return Result{}, invalidf("the delayed time %s is not a positive Unix time", job.At.UTC().Format(time.RFC3339))
		}
		base = job.At
	}
	deadline := ceilSecond(base.Add(job.TTL))
	if !deadline.After(now) {
		return Result{}, invalidf("the deadline %s (%s + TTL %s) is already past", deadline.UTC().Format(time.RFC3339),
			base.UTC().Format(time.RFC3339), job.TTL)
	}
	payload, err := buildPayload(job, paths, pathSpec, id, now, delayed)
	if err != nil {
		return Result{}, err
	}
	res := Result{ID: id, Queue: job.Queue, Class: job.Class, ExpirationKey: layout.Expiration(id),
		Deadline: deadline.UTC(), KeyExpiresAt: deadline.Add(retention).UTC(), Payload: payload, List: layout.Queue(job.Queue)}
	if delayed {
		res.DelayedAt = job.At.Unix()
		res.List = layout.Delayed(res.DelayedAt)
	}
	return res, nil
}

// check rejects a job that cannot be enqueued whatever the clock says.
func check(layout resque.Layout, job Job) error {
	if layout == (resque.Layout{}) {
		return invalidf("enqueue needs a key layout")
	}
	if job.Queue == "" {
		return invalidf("a queue is required")
	}
	if job.Class == "" {
		return invalidf("a class is required")
	}
	if job.TTL <= 0 {
		return invalidf("the TTL must be positive, got %s", job.TTL)
	}
	for i, a := range job.Args {
		if !json.Valid(a) {
			return invalidf("argument %d is not a JSON value: %q", i+1, string(a))
		}
	}
	return nil
}

// buildPayload builds the job's payload with the id where the first id
// path (or, with ActiveJob, args.0.job_id) puts it, and checks that the id
// paths find it there.
func buildPayload(job Job, paths []resque.Path, pathSpec []string, id string, now time.Time, delayed bool) (string, error) {
	var payload string
	if job.ActiveJob {
		payload = activeJobPayload(job, id, now, delayed)
	} else {
		first := paths[0]
		if len(first) != 1 {
			return "", invalidf("a plain payload keeps its id at a top-level key, and the first id path is %q; "+
				"pass --id-path with a top-level key such as id, or use --activejob for args.0.job_id", first.String())
		}
		switch first[0] {
		case "class", "args", "queue":
			return "", invalidf("the id cannot go at %q: Resque uses that key", first[0])
		}
		payload = plainPayload(job, first[0], id, delayed)
	}
	// The tool must find the id where it was put, or the job could never
	// be swept.
	p, err := resque.DecodePayload([]byte(payload))
	if err != nil {
		return "", fmt.Errorf("enqueue: built an unreadable payload: %w", err)
	}
	if got, ok := p.ID(paths); !ok || got != id {
		return "", invalidf("the id paths %s would not find the id %q in the payload (they would read %q); "+
			"add args.0.job_id to --id-path for ActiveJob payloads", strings.Join(pathSpec, ","), id, got)
	}
	return payload, nil
}

func ceilSecond(t time.Time) time.Time {
	s := t.Truncate(time.Second)
	if s.Before(t) {
		s = s.Add(time.Second)
	}
	return s
}
