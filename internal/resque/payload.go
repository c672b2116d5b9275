package resque

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ActiveJobWrapper is the class Rails' Resque adapter enqueues every job as.
const ActiveJobWrapper = "ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper"

// DefaultIDPaths are where job ids are looked for when none are configured:
// a top-level "id", Sidekiq-style "jid", and ActiveJob's wrapped job_id.
var DefaultIDPaths = []string{"id", "jid", "args.0.job_id"}

// ErrNotObject is returned by DecodePayload for JSON that is not an object.
var ErrNotObject = errors.New("payload is not a JSON object")

// Payload is a decoded job payload. Only the top level is decoded eagerly;
// deeper values are decoded on demand along the paths that are asked for,
// which keeps scanning millions of jobs cheap.
type Payload struct {
	top map[string]json.RawMessage
}

// DecodePayload decodes a job payload. It fails for anything that is not a
// JSON object.
func DecodePayload(raw []byte) (*Payload, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if json.Valid(raw) {
			return nil, ErrNotObject
		}
		return nil, errors.New("payload is not valid JSON")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("payload is not valid JSON: %w", err)
	}
	if top == nil {
		return nil, ErrNotObject
	}
	return &Payload{top: top}, nil
}

// Path is a parsed dotted path into a payload, such as args.0.job_id.
// Numeric segments index arrays (and are plain keys in objects).
type Path []string

// ParsePath parses a dotted path. Empty segments are rejected.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return nil, errors.New("empty id path")
	}
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("id path %q has an empty segment", s)
		}
	}
	return Path(parts), nil
}

// ParsePaths parses several dotted paths.
func ParsePaths(ss []string) ([]Path, error) {
	out := make([]Path, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePath(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (p Path) String() string { return strings.Join(p, ".") }

// Lookup returns the raw JSON value at path, and false when the path does
// not lead anywhere.
func (p *Payload) Lookup(path Path) (json.RawMessage, bool) {
	if p == nil || len(path) == 0 {
		return nil, false
	}
	cur, ok := p.top[path[0]]
	if !ok {
		return nil, false
	}
	for _, seg := range path[1:] {
		cur = bytes.TrimLeft(cur, " \t\r\n")
		if len(cur) == 0 {
			return nil, false
		}
		switch cur[0] {
		case '{':
			var m map[string]json.RawMessage
			if json.Unmarshal(cur, &m) != nil {
				return nil, false
			}
			if cur, ok = m[seg]; !ok {
				return nil, false
			}
		case '[':
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 {
				return nil, false
			}
			var a []json.RawMessage
			if json.Unmarshal(cur, &a) != nil || i >= len(a) {
				return nil, false
			}
			cur = a[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// String returns the string at path; numbers are returned as their literal
// text. Empty strings, objects, arrays, booleans and null give false.
func (p *Payload) String(path Path) (string, bool) {
	raw, ok := p.Lookup(path)
	if !ok {
		return "", false
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return "", false
		}
		return s, true
	case c == '-' || (c >= '0' && c <= '9'):
		return string(raw), true
	}
	return "", false
}

// ID returns the job id found at the first of paths that holds one.
func (p *Payload) ID(paths []Path) (string, bool) {
	for _, path := range paths {
		if id, ok := p.String(path); ok {
			return id, true
		}
	}
	return "", false
}

var (
	classPath          = Path{"class"}
	activeJobClassPath = Path{"args", "0", "job_class"}
	activeJobEnqueued  = Path{"args", "0", "enqueued_at"}
	enqueuedAtPath     = Path{"enqueued_at"}
	createdAtPath      = Path{"created_at"}
)

// Class returns the job's class as Resque stores it ("" when absent).
func (p *Payload) Class() string {
	s, _ := p.String(classPath)
	return s
}

// JobClass returns the class that does the work: for ActiveJob's wrapper the
// wrapped job_class, otherwise Class.
func (p *Payload) JobClass() string {
	c := p.Class()
	if c == ActiveJobWrapper {
		if jc, ok := p.String(activeJobClassPath); ok {
			return jc
		}
	}
	return c
}

// EnqueuedAt returns when the job was enqueued, when the payload says so:
// ActiveJob's args.0.enqueued_at (RFC 3339), or a top-level enqueued_at or
// created_at (Unix seconds or milliseconds, or RFC 3339).
func (p *Payload) EnqueuedAt() (time.Time, bool) {
	for _, path := range []Path{activeJobEnqueued, enqueuedAtPath, createdAtPath} {
		if s, ok := p.String(path); ok {
			if t, err := ParseTime(s); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}
