package sweep

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/resque"
)

//go:embed enqueue.lua
var enqueueSrc string

var enqueueScript = registerOnce(once.New(enqueueSrc))

// EnqueueRequest describes one job to enqueue with a deadline.
type EnqueueRequest struct {
	// Queue is the queue the job runs on.
	Queue string
	// Class is the job class (with ActiveJob, the job_class; the payload's
	// class is then the ActiveJob wrapper).
	Class string
	// Args are the job's arguments, each one JSON value (see ParseArg).
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
	// Redis TTL is deadline + Retention); default DefaultRetention.
	Retention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// EnqueueResult says what Enqueue wrote.
type EnqueueResult struct {
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

// ErrInvalidRequest is matched (errors.Is) by the errors Enqueue returns for
// a request it cannot carry out as given; nothing was written.
var ErrInvalidRequest = errors.New("invalid enqueue request")

// ErrIDExists is returned by Enqueue when a deadline key for the id already
// exists (another job has this id); nothing was written.
var ErrIDExists = errors.New("a deadline for this job id already exists")

type requestError string

func (e requestError) Error() string        { return string(e) }
func (e requestError) Is(target error) bool { return target == ErrInvalidRequest }

func invalidf(format string, args ...any) error {
	return requestError(fmt.Sprintf(format, args...))
}

// Enqueue pushes one job together with its deadline, in one Lua script
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
// is ErrIDExists. Requests that cannot be carried out as given fail with an
// error matching ErrInvalidRequest.
func Enqueue(ctx context.Context, rdb redis.UniversalClient, layout resque.Layout, req EnqueueRequest) (EnqueueResult, error) {
	plan, err := planEnqueue(layout, req)
	if err != nil {
		return EnqueueResult{}, err
	}
	// A retry of a call whose reply was lost answers what the first
	// attempt did, rather than finding its own deadline key.
	requests := once.NewRequests(layout.Requests(once.NewRunID()))
	n, err := requests.Run(ctx, rdb, enqueueScript, plan.keys, plan.args...).Int()
	if err == nil {
		_ = requests.Done(ctx, rdb)
	}
	if err != nil {
		if IsReadOnly(err) {
			return EnqueueResult{}, ErrReadOnly
		}
		if strings.Contains(err.Error(), "syntax error") {
			return EnqueueResult{}, fmt.Errorf("enqueue: %w (needs Redis 6.2 or later)", err)
		}
		return EnqueueResult{}, fmt.Errorf("enqueue: %w", err)
	}
	if n != 1 {
		return EnqueueResult{}, fmt.Errorf("%w: job id %q (%s); nothing was enqueued", ErrIDExists, plan.res.ID, plan.res.ExpirationKey)
	}
	return plan.res, nil
}

type enqueuePlan struct {
	keys []string
	args []any
	res  EnqueueResult
}

// planEnqueue validates a request and builds the payload and the script's
// keys and arguments.
func planEnqueue(layout resque.Layout, req EnqueueRequest) (*enqueuePlan, error) {
	if layout == (resque.Layout{}) {
		return nil, invalidf("enqueue needs a key layout")
	}
	if req.Queue == "" {
		return nil, invalidf("a queue is required")
	}
	if req.Class == "" {
		return nil, invalidf("a class is required")
	}
	if req.TTL <= 0 {
		return nil, invalidf("the TTL must be positive, got %s", req.TTL)
	}
	for i, a := range req.Args {
		if !json.Valid(a) {
			return nil, invalidf("argument %d is not a JSON value: %q", i+1, string(a))
		}
	}
	retention := req.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	nowFn := req.Now
	if nowFn == nil {
		nowFn = time.Now
	}
	now := nowFn()
	pathSpec := req.IDPaths
	if len(pathSpec) == 0 {
		pathSpec = resque.DefaultIDPaths
	}
	paths, err := resque.ParsePaths(pathSpec)
	if err != nil {
		return nil, invalidf("id path: %v", err)
	}
	id := req.ID
	if id == "" {
		id = NewJobID()
	}
	delayed := !req.At.IsZero()
	var ts int64
	base := now
	if delayed {
		if ts = req.At.Unix(); ts <= 0 {
			return nil, invalidf("the delayed time %s is not a positive Unix time", req.At.UTC().Format(time.RFC3339))
		}
		base = req.At
	}
	deadline := ceilSecond(base.Add(req.TTL))
	if !deadline.After(now) {
		return nil, invalidf("the deadline %s (%s + TTL %s) is already past", deadline.UTC().Format(time.RFC3339),
			base.UTC().Format(time.RFC3339), req.TTL)
	}

	var payload string
	if req.ActiveJob {
		payload = activeJobPayload(req, id, now, delayed)
	} else {
		first := paths[0]
		if len(first) != 1 {
			return nil, invalidf("a plain payload keeps its id at a top-level key, and the first id path is %q; "+
				"pass --id-path with a top-level key such as id, or use --activejob for args.0.job_id", first.String())
		}
		switch first[0] {
		case "class", "args", "queue":
			return nil, invalidf("the id cannot go at %q: Resque uses that key", first[0])
		}
		payload = plainPayload(req, first[0], id, delayed)
	}
	// The tool must find the id where it was put, or the job could never
	// be swept.
	p, err := resque.DecodePayload([]byte(payload))
	if err != nil {
		return nil, fmt.Errorf("enqueue: built an unreadable payload: %w", err)
	}
	if got, ok := p.ID(paths); !ok || got != id {
		return nil, invalidf("the id paths %s would not find the id %q in the payload (they would read %q); "+
			"add args.0.job_id to --id-path for ActiveJob payloads", strings.Join(pathSpec, ","), id, got)
	}

	res := EnqueueResult{ID: id, Queue: req.Queue, Class: req.Class, ExpirationKey: layout.Expiration(id),
		Deadline: deadline.UTC(), KeyExpiresAt: deadline.Add(retention).UTC(), Payload: payload}
	plan := &enqueuePlan{}
	if delayed {
		res.DelayedAt = ts
		res.List = layout.Delayed(ts)
		plan.keys = []string{res.List, layout.Timestamps(payload), res.ExpirationKey, layout.DelayedSchedule()}
		plan.args = []any{payload, resque.DelayedMember(ts), resque.FormatDeadline(deadline), res.KeyExpiresAt.Unix(), ts}
	} else {
		res.List = layout.Queue(req.Queue)
		plan.keys = []string{res.List, layout.Queues(), res.ExpirationKey}
		plan.args = []any{payload, req.Queue, resque.FormatDeadline(deadline), res.KeyExpiresAt.Unix(), ""}
	}
	plan.res = res
	return plan, nil
}

func ceilSecond(t time.Time) time.Time {
	s := t.Truncate(time.Second)
	if s.Before(t) {
		s = s.Add(time.Second)
	}
	return s
}

func nonNilArgs(a []json.RawMessage) []json.RawMessage {
	if a == nil {
		return []json.RawMessage{}
	}
	return a
}

// plainPayload is Resque's {"class":...,"args":[...]} (plus "queue" for a
// delayed job, as resque-scheduler writes it), then the id at idKey.
func plainPayload(req EnqueueRequest, idKey, id string, delayed bool) string {
	var b strings.Builder
	b.WriteString(`{"class":`)
	b.WriteString(marshal(req.Class))
	b.WriteString(`,"args":`)
	b.WriteString(marshal(nonNilArgs(req.Args)))
	if delayed {
		b.WriteString(`,"queue":`)
		b.WriteString(marshal(req.Queue))
	}
	b.WriteByte(',')
	b.WriteString(marshal(idKey))
	b.WriteByte(':')
	b.WriteString(marshal(id))
	b.WriteByte('}')
	return b.String()
}

// activeJobData is a job as ActiveJob's Job#serialize writes it (Rails 7.1+).
type activeJobData struct {
	JobClass            string            `json:"job_class"`
	JobID               string            `json:"job_id"`
	ProviderJobID       *string           `json:"provider_job_id"`
	QueueName           string            `json:"queue_name"`
	Priority            *int              `json:"priority"`
	Arguments           []json.RawMessage `json:"arguments"`
	Executions          int               `json:"executions"`
	ExceptionExecutions map[string]int    `json:"exception_executions"`
	Locale              string            `json:"locale"`
	Timezone            string            `json:"timezone"`
	EnqueuedAt          string            `json:"enqueued_at"`
	ScheduledAt         *string           `json:"scheduled_at"`
}

// activeJobTime is Ruby's Time#utc.iso8601(9).
func activeJobTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// activeJobPayload is what Rails' Resque adapter pushes:
// {"class":JobWrapper,"args":[<serialized job>]}, with "queue" for a
// delayed job as resque-scheduler's enqueue_at_with_queue writes it.
func activeJobPayload(req EnqueueRequest, id string, now time.Time, delayed bool) string {
	job := activeJobData{JobClass: req.Class, JobID: id, QueueName: req.Queue, Arguments: nonNilArgs(req.Args),
		ExceptionExecutions: map[string]int{}, Locale: "en", Timezone: "UTC", EnqueuedAt: activeJobTime(now)}
	if delayed {
		at := activeJobTime(req.At)
		job.ScheduledAt = &at
	}
	w := struct {
		Class string          `json:"class"`
		Args  []activeJobData `json:"args"`
		Queue string          `json:"queue,omitempty"`
	}{Class: resque.ActiveJobWrapper, Args: []activeJobData{job}}
	if delayed {
		w.Queue = req.Queue
	}
	return marshal(w)
}

// ParseArg turns one command-line argument into a job argument: the JSON
// value it spells when it parses as JSON (42, true, null, "x", [1,2],
// {"a":1}), compacted; otherwise the argument as a JSON string.
func ParseArg(s string) json.RawMessage {
	if t := strings.TrimSpace(s); t != "" && json.Valid([]byte(t)) {
		var b bytes.Buffer
		if json.Compact(&b, []byte(t)) == nil {
			return b.Bytes()
		}
	}
	return json.RawMessage(marshal(s))
}

// ParseArgs applies ParseArg to each argument.
func ParseArgs(ss []string) []json.RawMessage {
	out := make([]json.RawMessage, len(ss))
	for i, s := range ss {
		out[i] = ParseArg(s)
	}
	return out
}

// NewJobID returns a random (version 4) UUID, as Ruby's SecureRandom.uuid.
func NewJobID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
