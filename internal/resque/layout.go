package resque

import (
	"errors"
	"strconv"
	"strings"
)

// DefaultExpirationTemplate is where a job's deadline lives by convention.
const DefaultExpirationTemplate = "{ns}:job:{id}:expiration"

// Layout builds every Redis key name the tool reads or writes. The zero value
// is not usable; build one with NewLayout.
type Layout struct {
	ns       string
	template string
	// The template with its namespace filled in, around its first {id}:
	// a key is expPrefix + id + expSuffix.
	expPrefix, expSuffix string
}

// NewLayout returns the key layout for namespace ns (without a trailing
// colon; "" means keys carry no namespace) and an expiration-key template
// holding the placeholder {id} and optionally {ns}.
func NewLayout(ns, expirationTemplate string) (Layout, error) {
	ns = strings.TrimSuffix(ns, ":")
	if expirationTemplate == "" {
		expirationTemplate = DefaultExpirationTemplate
	}
	if strings.Count(expirationTemplate, "{id}") != 1 {
		return Layout{}, errors.New("expiration key template must contain {id} exactly once")
	}
	t := strings.ReplaceAll(expirationTemplate, "{ns}", ns)
	i := strings.Index(t, "{id}")
	return Layout{ns: ns, template: expirationTemplate, expPrefix: t[:i], expSuffix: t[i+len("{id}"):]}, nil
}

// MustLayout is NewLayout for constant arguments; it panics on error.
func MustLayout(ns, expirationTemplate string) Layout {
	l, err := NewLayout(ns, expirationTemplate)
	if err != nil {
		panic(err)
	}
	return l
}

// Namespace returns the namespace without its trailing colon.
func (l Layout) Namespace() string { return l.ns }

func (l Layout) key(rest string) string {
	if l.ns == "" {
		return rest
	}
	return l.ns + ":" + rest
}

// Queues is the SET of queue names Resque keeps (<ns>:queues).
func (l Layout) Queues() string { return l.key("queues") }

// Queue is the LIST holding queue name's jobs (<ns>:queue:<name>).
func (l Layout) Queue(name string) string { return l.key("queue:" + name) }

// QueuePrefix is the prefix of every queue list key.
func (l Layout) QueuePrefix() string { return l.key("queue:") }

// QueuePattern is a SCAN MATCH pattern for every queue list key, with the
// namespace's glob characters escaped.
func (l Layout) QueuePattern() string { return EscapeGlob(l.QueuePrefix()) + "*" }

// QueueName returns the queue name of a queue list key, and false when key
// is not a queue key of this layout.
func (l Layout) QueueName(key string) (string, bool) {
	p := l.QueuePrefix()
	if !strings.HasPrefix(key, p) || len(key) == len(p) {
		return "", false
	}
	return key[len(p):], true
}

// Failed is Resque's LIST of failure entries.
func (l Layout) Failed() string { return l.key("failed") }

// DelayedSchedule is resque-scheduler's ZSET of timestamps with delayed jobs.
func (l Layout) DelayedSchedule() string { return l.key("delayed_queue_schedule") }

// Delayed is resque-scheduler's LIST of jobs due at Unix second ts.
func (l Layout) Delayed(ts int64) string { return l.key("delayed:" + strconv.FormatInt(ts, 10)) }

// DelayedMember is the member resque-scheduler stores in a timestamps set for
// bucket ts. It is not namespaced (resque-scheduler adds it through the
// namespaced client as a value, not a key).
func DelayedMember(ts int64) string { return "delayed:" + strconv.FormatInt(ts, 10) }

// Timestamps is resque-scheduler's SET of the delayed buckets a payload sits in.
func (l Layout) Timestamps(payload string) string { return l.key("timestamps:" + payload) }

// Lock is the key a sweep holds while it runs.
func (l Layout) Lock() string { return l.key("resque-expire:lock") }

// Journal is the list where a sweep that archives stages the records of the
// jobs it removed, written in the same script as the removal and drained to
// the archive file after each batch.
func (l Layout) Journal() string { return l.key("resque-expire:journal") }

// Requests is the hash where a run's writing scripts record their answers
// (internal/once), so that a retried call is not run twice.
func (l Layout) Requests(runID string) string { return l.key("resque-expire:requests:" + runID) }

// Stats is the hash where the removal script counts the jobs it removed,
// one field per action and queue ("<action>:<queue>"), the way Resque keeps
// stat:processed: exact and monotonic across runs, hosts and restarts.
func (l Layout) Stats() string { return l.key("resque-expire:stats") }

// RestoredMarker is the key restore sets for an archive record it has put
// back, so that restoring the same file twice enqueues nothing twice.
func (l Layout) RestoredMarker(digest string) string {
	return l.key("resque-expire:restored:" + digest)
}

// Reserved reports whether key is one of the keys Resque, resque-scheduler,
// resque-loner or this tool keep under the namespace. A permissive
// expiration-key template such as "{ns}:{id}" can make a job id name one of
// them; such a key must never be taken for a deadline key (read as one,
// deleted with a job, or deleted as an orphan).
func (l Layout) Reserved(key string) bool {
	rest := key
	if l.ns != "" {
		var ok bool
		if rest, ok = strings.CutPrefix(key, l.ns+":"); !ok {
			return false
		}
	}
	switch rest {
	case "queues", "failed", "workers", "stat", "delayed_queue_schedule":
		return true
	}
	for _, p := range []string{"queue:", "failed:", "stat:", "worker:", "workers:", "delayed:", "timestamps:", "loners:", "resque-expire:"} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// Expiration is the key holding the deadline of job id.
func (l Layout) Expiration(id string) string {
	return l.expPrefix + id + l.expSuffix
}

// ExpirationPattern is a SCAN MATCH pattern for every expiration key.
func (l Layout) ExpirationPattern() string {
	t := EscapeGlob(strings.ReplaceAll(l.template, "{ns}", l.ns))
	// EscapeGlob leaves braces alone, so the placeholder survives escaping.
	return strings.Replace(t, "{id}", "*", 1)
}

// ExpirationID returns the job id held in an expiration key, and false when
// key does not follow the template.
func (l Layout) ExpirationID(key string) (string, bool) {
	prefix, suffix := l.expPrefix, l.expSuffix
	if len(key) <= len(prefix)+len(suffix) || !strings.HasPrefix(key, prefix) || !strings.HasSuffix(key, suffix) {
		return "", false
	}
	return key[len(prefix) : len(key)-len(suffix)], true
}

// LonerPattern is a SCAN MATCH pattern for resque-loner's markers.
func (l Layout) LonerPattern() string { return EscapeGlob(l.key("loners:queue:")) + "*" }

// EscapeGlob escapes the characters that SCAN MATCH and KEYS treat as glob
// syntax, so s matches only itself.
func EscapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
