package inspect

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// State is what the tool concludes about one job. Every job has exactly one.
type State string

// The job states.
const (
	// StateExpired: the deadline is at or before now.
	StateExpired State = "expired"
	// StateLive: the deadline is in the future.
	StateLive State = "live"
	// StateMissing: the job has an id but no expiration key.
	StateMissing State = "missing"
	// StateUnidentified: no id at any of the id paths.
	StateUnidentified State = "unidentified"
	// StateInvalid: the payload is not a JSON object, or the deadline
	// cannot be parsed (or the expiration key is not a string).
	StateInvalid State = "invalid"
)

// States lists every state in report order.
var States = []State{StateExpired, StateLive, StateMissing, StateUnidentified, StateInvalid}

// ParseState parses a state name.
func ParseState(s string) (State, bool) {
	for _, st := range States {
		if string(st) == s {
			return st, true
		}
	}
	return "", false
}

// ListRef names one Redis list of jobs: a queue or a delayed bucket.
type ListRef struct {
	// Key is the list's Redis key.
	Key string
	// Queue is the queue name. For delayed buckets it is the queue the job
	// will be enqueued to, which comes from each payload, so it is "".
	Queue string
	// DelayedAt is the bucket's Unix second for delayed buckets, 0 for queues.
	DelayedAt int64
	// Failed is the failed list's name ("failed", "<queue>_failed") for a
	// list of failure entries, "" otherwise (see failed.go).
	Failed string
}

// Delayed reports whether the list is a resque-scheduler bucket.
func (r ListRef) Delayed() bool { return r.DelayedAt != 0 }

// Job is one payload as the scanner read and judged it.
type Job struct {
	// Index is the job's position in its list when the page was read.
	Index int64
	// Raw is the payload exactly as stored.
	Raw string
	// Queue is the queue it belongs to: the list's queue, or for delayed
	// jobs the payload's "queue" field.
	Queue string
	ID    string
	// Class is the class doing the work (ActiveJob's job_class when wrapped).
	Class string
	State State
	// Reason says why the job is invalid or unidentified.
	Reason string
	// ExpirationKey is where the deadline is kept ("" without an id).
	ExpirationKey string
	// DeadlineRaw is the expiration key's value as read; HasDeadline says
	// whether the key existed.
	DeadlineRaw string
	HasDeadline bool
	Deadline    time.Time
	// EnqueuedAt is the payload's own enqueue time, when it has one.
	EnqueuedAt time.Time
	// Skipped is set when the job does not match the class filter; it is
	// counted as skipped and otherwise ignored.
	Skipped bool
	// Failure is set for a failure entry (Raw is then the whole entry).
	Failure *Failure
	// Known: the job was left unjudged (Scanner.WithKnown); it has no
	// State, ID or deadline.
	Known bool
}

// OverdueBy is how long ago the deadline passed (negative when it is still
// ahead, zero without a deadline).
func (j *Job) OverdueBy(now time.Time) time.Duration {
	if j.Deadline.IsZero() {
		return 0
	}
	return now.Sub(j.Deadline)
}

// judge decodes a payload and fills in everything but the deadline.
// p is decoded into (one for every job of a page).
func (s *Scanner) judge(raw string, ref ListRef, p *resque.Payload) Job {
	if ref.Failed != "" {
		return s.judgeFailure(raw, ref, p)
	}
	return s.judgePayload(raw, ref, s.detailsOf == nil, p)
}

// judgePayload is judge for a job's payload. Without details the job's
// EnqueuedAt is not read: fillDetails adds it once the state is known.
func (s *Scanner) judgePayload(raw string, ref ListRef, details bool, p *resque.Payload) Job {
	j := Job{Raw: raw, Queue: ref.Queue}
	// The payload only reads raw's bytes: no copy of them.
	err := p.Decode(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	if err == nil && !utf8.ValidString(raw) {
		// JSON is UTF-8 (RFC 8259). Such a payload could be removed, but
		// not archived, logged or failed as it is: JSON output replaces
		// the bytes with U+FFFD, and restore would enqueue another job.
		err = errors.New("payload is not valid UTF-8")
	}
	if err != nil {
		j.State, j.Reason = StateInvalid, err.Error()
		j.Skipped = len(s.classes) > 0 || (ref.Delayed() && len(s.queues) > 0)
		return j
	}
	class := p.Class()
	j.Class = p.JobClassOf(class)
	if details {
		j.EnqueuedAt, _ = p.EnqueuedAt()
	}
	if ref.Delayed() {
		j.Queue, _ = p.String(resque.Path{"queue"})
	}
	// The queue first, so that a class only counts as matched in view.
	j.Skipped = (ref.Delayed() && !s.queueHits.match(j.Queue)) || !s.classHits.match(j.Class, class)
	id, ok := p.ID(s.idPaths)
	if !ok {
		j.State, j.Reason = StateUnidentified, "no id at any id path"
		return j
	}
	j.ID = id
	key := s.layout.Expiration(id)
	if s.layout.Reserved(key) {
		// A permissive --expiration-key ('{ns}:{id}') lets the id name one
		// of Resque's own keys: never take that for a deadline.
		j.State, j.Reason = StateInvalid, fmt.Sprintf("deadline key %q would be one of Resque's own keys", key)
		return j
	}
	j.ExpirationKey = key
	return j
}

// fillDetails reads the details d of a job judgePayload judged without
// details (its payload is valid JSON), decoding it into p.
func fillDetails(j *Job, p *resque.Payload, d Details) {
	p.DecodeChecked(unsafe.Slice(unsafe.StringData(j.Raw), len(j.Raw)))
	if d&DetailEnqueuedAt != 0 {
		j.EnqueuedAt, _ = p.EnqueuedAt()
	}
}

// classify sets the state of a job that has an id, from its deadline value.
func classify(j *Job, value any, now time.Time) {
	switch v := value.(type) {
	case nil:
		j.State = StateMissing
	case string:
		j.HasDeadline, j.DeadlineRaw = true, v
		t, err := resque.ParseDeadline(v)
		if err != nil {
			j.State, j.Reason = StateInvalid, err.Error()
			return
		}
		j.Deadline = t
		if !t.After(now) {
			j.State = StateExpired
		} else {
			j.State = StateLive
		}
	default:
		j.State, j.Reason = StateInvalid, "expiration key holds an unexpected value"
	}
}

// OrphanHold is the least time an orphaned deadline key whose deadline has
// passed is kept before it vanishes: sweep --orphans and audit --fix-orphans
// never delete one, they give it a TTL of at least this, because its job may
// only have been between two lists (a delayed job resque-scheduler was moving
// to a queue) while the jobs were read. A sweep within the hold finds the job
// with its deadline.
const OrphanHold = time.Hour
