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

// Payload is a job payload that has been checked to be a JSON object.
// Values are found on demand along the paths asked for, by skipping over the
// text rather than decoding it, which keeps scanning millions of jobs cheap.
type Payload struct {
	raw []byte
	// objs indexes the fields of the objects looked into so far (the
	// payload itself, args.0), so that looking up several fields (class,
	// ids, enqueue times) walks each object once rather than once a field.
	objs []objIndex
	// bufs back the first indexes, saving allocations per payload.
	objBuf   [2]objIndex
	fieldBuf [16]fieldRef
	used     int
}

// objIndex is the fields of the object starting at raw[start], in order.
type objIndex struct {
	start  int
	fields []fieldRef
}

// fieldRef is one field of an object: its key's text between the quotes,
// raw[ks:ke], and where its value starts.
type fieldRef struct{ ks, ke, val int }

// DecodePayload checks a job payload. It fails for anything that is not a
// JSON object. The payload keeps a reference to raw.
func DecodePayload(raw []byte) (*Payload, error) {
	p := &Payload{}
	if err := p.Decode(raw); err != nil {
		return nil, err
	}
	return p, nil
}

// Decode is DecodePayload into p, which it resets: a loop over many
// payloads can decode them all into one. p keeps a reference to raw.
func (p *Payload) Decode(raw []byte) error {
	p.raw, p.objs, p.used = nil, nil, 0
	i := skipSpace(raw, 0)
	if !json.Valid(raw) {
		return errors.New("payload is not valid JSON")
	}
	if i >= len(raw) || raw[i] != '{' {
		return ErrNotObject
	}
	p.raw = raw[i:]
	return nil
}

// DecodeChecked is Decode for raw that Decode accepted before: it skips
// the validation, the most of decoding's cost.
func (p *Payload) DecodeChecked(raw []byte) {
	p.raw, p.objs, p.used = raw[skipSpace(raw, 0):], nil, 0
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
	b, i := p.raw, 0
	for _, seg := range path {
		if i < 0 || i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case '{':
			i = p.field(i, seg)
		case '[':
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 {
				return nil, false
			}
			i = arrayElement(b, i, n)
		default:
			return nil, false
		}
	}
	if i < 0 || i >= len(b) {
		return nil, false
	}
	return json.RawMessage(b[i:skipValue(b, i)]), true
}

// field returns the start of the value of key in the object at p.raw[i],
// or -1, from the object's index (built on its first lookup). With
// duplicate keys the last one wins, as in Ruby's JSON and Go's
// encoding/json: the tool must see the id a worker will see.
func (p *Payload) field(i int, key string) int {
	var fields []fieldRef
	for k := range p.objs {
		if p.objs[k].start == i {
			fields = p.objs[k].fields
			break
		}
	}
	if fields == nil {
		fields = indexObject(p.fieldBuf[p.used:p.used:len(p.fieldBuf)], p.raw, i)
		if len(fields) <= len(p.fieldBuf)-p.used {
			p.used += len(fields)
		} else {
			p.used = len(p.fieldBuf) // the object outgrew the buffer: the rest is its own
		}
		if p.objs == nil {
			p.objs = p.objBuf[:0]
		}
		if len(p.objs) < maxIndexed {
			p.objs = append(p.objs, objIndex{start: i, fields: fields})
		}
	}
	for k := len(fields) - 1; k >= 0; k-- {
		f := fields[k]
		if keyEquals(p.raw[f.ks:f.ke], key) {
			return f.val
		}
	}
	return -1
}

// maxIndexed bounds the objects a payload keeps an index of.
const maxIndexed = 4

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
		s, err := unquote(raw)
		if err != nil || s == "" {
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
func (p *Payload) JobClass() string { return p.JobClassOf(p.Class()) }

// JobClassOf is JobClass for a payload whose Class is c.
func (p *Payload) JobClassOf(c string) string {
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

// Marshal is v as JSON the way Ruby's JSON writes a payload: without
// escaping <, > and & (encoding/json's default) and without a newline.
func Marshal(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}
