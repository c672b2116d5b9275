package enqueue

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/resque-expire/resque-expire/internal/resque"
)

func nonNilArgs(a []json.RawMessage) []json.RawMessage {
	if a == nil {
		return []json.RawMessage{}
	}
	return a
}

// plainPayload is Resque's {"class":...,"args":[...]} (plus "queue" for a
// delayed job, as resque-scheduler writes it), then the id at idKey.
func plainPayload(req Job, idKey, id string, delayed bool) string {
	var b strings.Builder
	b.WriteString(`{"class":`)
	b.WriteString(resque.Marshal(req.Class))
	b.WriteString(`,"args":`)
	b.WriteString(resque.Marshal(nonNilArgs(req.Args)))
	if delayed {
		b.WriteString(`,"queue":`)
		b.WriteString(resque.Marshal(req.Queue))
	}
	b.WriteByte(',')
	b.WriteString(resque.Marshal(idKey))
	b.WriteByte(':')
	b.WriteString(resque.Marshal(id))
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
func activeJobPayload(req Job, id string, now time.Time, delayed bool) string {
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
	return resque.Marshal(w)
}

// parseArg turns one command-line argument into a job argument: the JSON
// value it spells when it parses as JSON (42, true, null, "x", [1,2],
// {"a":1}), compacted; otherwise the argument as a JSON string.
func parseArg(s string) json.RawMessage {
	if t := strings.TrimSpace(s); t != "" && json.Valid([]byte(t)) {
		var b bytes.Buffer
		if json.Compact(&b, []byte(t)) == nil {
			return b.Bytes()
		}
	}
	return json.RawMessage(resque.Marshal(s))
}

// ParseArgs applies parseArg to each argument.
func ParseArgs(ss []string) []json.RawMessage {
	out := make([]json.RawMessage, len(ss))
	for i, s := range ss {
		out[i] = parseArg(s)
	}
	return out
}

// newJobID returns a random (version 4) UUID, as Ruby's SecureRandom.uuid.
func newJobID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
