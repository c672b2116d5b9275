package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/stop"
)

// Audit defaults and bounds.
const (
	// DefaultScanCount is the COUNT hint of the audit's SCAN calls.
	DefaultScanCount = 1000
	// DefaultExamples is how many example keys or jobs are kept per finding.
	DefaultExamples = 5
	// ttlSampleSize bounds the reservoir of TTLs the percentiles come from.
	ttlSampleSize = 10000
	// valueCap bounds the distinct values counted per family; further
	// distinct values are counted together as otherValue.
	valueCap = 1000
	// valueDisplayLen truncates values kept for counting and examples.
	valueDisplayLen = 100
	// topValuesShown is how many of the most frequent values a report lists.
	topValuesShown = 10
	// dupGroupCap bounds the (queue, class) groups of duplicate jobs.
	dupGroupCap = 1000
)

// otherValue stands for the values beyond the distinct-value cap.
const otherValue = "(other)"

// Family kinds.
const (
	// KindKeys is a family of application keys, such as idempotency keys.
	KindKeys = "keys"
	// KindDeadlines is the family of job expiration (deadline) keys.
	KindDeadlines = "deadlines"
	// KindLoners is the family of resque-loner unique-job markers.
	KindLoners = "loners"
)

// Family describes one family of keys to audit.
type Family struct {
	// Name labels the family in reports; "" means Pattern.
	Name string
	// Pattern is a SCAN MATCH glob, passed to Redis as it is.
	Pattern string
	// Type is the Redis type every key should have; "" means "string".
	Type string
	// TTL is the TTL the keys are expected to be given when written; 0
	// means unknown. It lets the audit tell a key's age from its remaining
	// TTL (age = TTL - remaining).
	TTL time.Duration
	// Values, when not empty, are the only values expected.
	Values []string
	// StuckValue marks a key as stuck (e.g. "in_progress") when it is
	// older than StuckAfter or has no TTL at all.
	StuckValue string
	StuckAfter time.Duration
}

func (f Family) label() string {
	if f.Name != "" {
		return f.Name
	}
	return f.Pattern
}

func (f Family) wantType() string {
	if f.Type == "" {
		return "string"
	}
	return f.Type
}

// validate reports what is wrong with a family definition.
func (f Family) validate() error {
	switch {
	case f.Pattern == "":
		return fmt.Errorf("family %q: pattern is required", f.Name)
	case f.TTL < 0:
		return fmt.Errorf("family %q: ttl must not be negative", f.label())
	case f.StuckAfter < 0:
		return fmt.Errorf("family %q: stuck_after must not be negative", f.label())
	case f.StuckAfter > 0 && f.StuckValue == "":
		return fmt.Errorf("family %q: stuck_after needs stuck_value", f.label())
	}
	switch f.wantType() {
	case "string", "list", "set", "zset", "hash", "stream":
	default:
		return fmt.Errorf("family %q: unknown type %q (want string, list, set, zset, hash or stream)", f.label(), f.Type)
	}
	return nil
}

// DefaultFamilies are the idempotency key families of the design note:
// "email_sent:<user>:<type>" flags set to "true" for a week, and
// "payment:<id>" transaction keys (in_progress, then completed or failed for
// a week). An in_progress payment key older than an hour, or with no TTL,
// is stuck.
func DefaultFamilies() []Family {
	week := 7 * 24 * time.Hour
	return []Family{
		{Name: "email_sent", Pattern: "email_sent:*", TTL: week, Values: []string{"true"}},
		{Name: "payment", Pattern: "payment:*", TTL: week, Values: []string{"in_progress", "completed", "failed"},
			StuckValue: "in_progress", StuckAfter: time.Hour},
	}
}

// Options says what Run looks at.
type Options struct {
	// Families are the key families to audit (see DefaultFamilies).
	Families []Family
	// Jobs reads every queue and delayed bucket: job states, duplicate jobs,
	// and the ids and digests that orphan judgement needs.
	Jobs bool
	// Deadlines audits the expiration keys; their orphans are judged only
	// when Jobs is set and the job scan completes.
	Deadlines bool
	// Loners audits resque-loner markers; orphans as for Deadlines.
	Loners bool
	// ScanCount is the COUNT hint of SCAN (default DefaultScanCount).
	ScanCount int64
	// MaxKeys stops each key scan after this many keys (0 = no limit).
	MaxKeys int64
	// MaxDuration stops the audit after this long (0 = no limit); what is
	// left is reported as partial or skipped.
	MaxDuration time.Duration
	// Examples is how many examples are kept per finding (default
	// DefaultExamples; negative means none).
	Examples int
	// OnFindings, when set, receives the findings of each page as they are
	// made: every key with no TTL, stuck, orphaned, of the wrong type or
	// with an unexpected value. It is how sweep.Fix acts on exactly the
	// keys the audit reports without the audit holding them. An error
	// stops the audit.
	OnFindings func(ctx context.Context, fs []Finding) error
	// Progress, when set, is told the number of jobs and each page read.
	Progress inspect.Progress
}

// Finding is one key that the audit found something wrong with.
type Finding struct {
	// Kind is the family kind: KindKeys, KindDeadlines or KindLoners.
	Kind   string
	Family string
	Key    string
	// Type is the key's Redis type when it was read.
	Type string
	// Value is the key's value when it is a string (HasValue).
	Value    string
	HasValue bool
	// TTL is the remaining TTL; NoTTL is set when the key has none.
	TTL   time.Duration
	NoTTL bool

	WrongType  bool
	Unexpected bool
	Stuck      bool
	// Orphan: a deadline key whose job is in no queue or delayed bucket,
	// or a loner marker whose job is not in its queue.
	Orphan bool
	// Expired: for deadline keys, the deadline has passed. Held: and the
	// key already vanishes within OrphanHold (nothing to fix).
	Expired bool
	Held    bool
}

// Report is the result of Run.
type Report struct {
	At      time.Time `json:"at"`
	Elapsed float64   `json:"elapsed_seconds"`
	// Partial is set when a bound or an interrupt stopped a section early;
	// Stopped says which.
	Partial   bool              `json:"partial"`
	Stopped   string            `json:"stopped,omitempty"`
	Families  []*FamilyReport   `json:"families"`
	Deadlines *FamilyReport     `json:"deadline_keys,omitempty"`
	Loners    *FamilyReport     `json:"loner_markers,omitempty"`
	Jobs      *JobsReport       `json:"jobs,omitempty"`
	Problems  []inspect.Problem `json:"problems"`
}

// NoTTL sums the keys without TTL of the key families (not deadlines or
// loner markers, whose TTL is optional).
func (r *Report) NoTTL() int64 {
	var n int64
	for _, f := range r.Families {
		n += f.NoTTL
	}
	return n
}

// Stuck sums the stuck keys of the key families.
func (r *Report) Stuck() int64 {
	var n int64
	for _, f := range r.Families {
		n += f.Stuck
	}
	return n
}

// Orphans counts the orphans that are rot beyond doubt, which are those
// --fix-orphans acts on: loner markers with no TTL whose job is not in
// their queue, and deadline keys of no job whose deadline has passed and
// that are not yet set to vanish within OrphanHold.
func (r *Report) Orphans() int64 {
	var n int64
	for _, f := range []*FamilyReport{r.Deadlines, r.Loners} {
		if f != nil && f.Orphans != nil {
			n += f.Orphans.Fixable
		}
	}
	return n
}

// FamilyReport is what the audit found in one family of keys.
type FamilyReport struct {
	Name    string `json:"name"`
	Pattern string `json:"pattern"`
	Kind    string `json:"kind"`
	// The expectations the keys were judged against.
	ExpectedType       string   `json:"expected_type"`
	ExpectedTTLSeconds float64  `json:"expected_ttl_seconds,omitempty"`
	ExpectedValues     []string `json:"expected_values,omitempty"`
	StuckValue         string   `json:"stuck_value,omitempty"`
	StuckAfterSeconds  float64  `json:"stuck_after_seconds,omitempty"`

	// Keys found (and still there when read); Gone: returned by SCAN but
	// deleted before they could be read.
	Keys  int64 `json:"keys"`
	Gone  int64 `json:"gone"`
	NoTTL int64 `json:"no_ttl"`
	// TTL describes the remaining TTLs of the keys that have one.
	TTL   TTLStats         `json:"ttl"`
	Types map[string]int64 `json:"types"`
	// WrongType counts keys of another type than expected.
	WrongType int64 `json:"wrong_type"`
	// TopValues are the most frequent values (strings only, truncated to
	// 100 bytes); DistinctValues is how many were told apart, at most 1000,
	// after which further values count as otherValue.
	TopValues      []ValueCount `json:"top_values,omitempty"`
	DistinctValues int          `json:"distinct_values"`
	// Unexpected counts values not among ExpectedValues.
	Unexpected int64 `json:"unexpected_values"`
	// Stuck counts keys holding StuckValue that are older than StuckAfter
	// or have no TTL; StuckUnknownAge those holding it with a TTL but no
	// expected TTL to tell their age from (not counted as stuck).
	Stuck           int64 `json:"stuck"`
	StuckUnknownAge int64 `json:"stuck_value_unknown_age"`
	// Unreadable counts deadline keys whose value is not a deadline, and
	// loner markers whose name cannot be parsed.
	Unreadable int64 `json:"unreadable,omitempty"`
	// Orphans is set for deadline keys and loner markers.
	Orphans *OrphanReport `json:"orphans,omitempty"`
	// Examples holds a few keys per finding: no_ttl, wrong_type,
	// unexpected_value, stuck, unreadable.
	Examples map[string][]KeyExample `json:"examples"`
	Partial  bool                    `json:"partial"`
	Stopped  string                  `json:"stopped,omitempty"`
	// Skipped is set when the family was not scanned at all (the audit ran
	// out of time first).
	Skipped bool `json:"skipped,omitempty"`
}

// Example kinds.
const (
	ExampleNoTTL      = "no_ttl"
	ExampleWrongType  = "wrong_type"
	ExampleUnexpected = "unexpected_value"
	ExampleStuck      = "stuck"
	ExampleUnreadable = "unreadable"
)

// KeyExample is one key shown as an example of a finding.
type KeyExample struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value string `json:"value,omitempty"`
	// TTLSeconds is the remaining TTL, -1 for none.
	TTLSeconds float64 `json:"ttl_seconds"`
	Detail     string  `json:"detail,omitempty"`
}

// ValueCount is one value and how many keys hold it.
type ValueCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// OrphanReport says which deadline keys or loner markers belong to no job.
type OrphanReport struct {
	// Judged is false when orphans could not be told (NotJudged says why):
	// every job must have been read first.
	Judged    bool   `json:"judged"`
	NotJudged string `json:"not_judged,omitempty"`
	// Checked keys, of which Orphans belong to no job.
	Checked int64 `json:"checked"`
	Orphans int64 `json:"orphans"`
	// Deadline keys: Expired (deadline passed), Live (deadline ahead: the
	// job may be running right now), Unreadable (not a deadline). Held: of
	// the expired ones, those already set to vanish within OrphanHold (by a
	// sweep --orphans or --fix-orphans, or their own TTL); not fixable.
	Expired    int64 `json:"expired,omitempty"`
	Held       int64 `json:"held,omitempty"`
	Live       int64 `json:"live,omitempty"`
	Unreadable int64 `json:"unreadable,omitempty"`
	// Loner markers: NoTTL block re-enqueue forever; the others clear
	// themselves when their TTL runs out. UnknownQueue: the marker names a
	// queue that does not exist.
	NoTTL        int64 `json:"no_ttl,omitempty"`
	UnknownQueue int64 `json:"unknown_queue,omitempty"`
	// Fixable is what --fix-orphans acts on: expired deadline keys not
	// held yet (it gives them a TTL of OrphanHold), loner markers without
	// TTL (it deletes them).
	Fixable  int64        `json:"fixable"`
	Examples []KeyExample `json:"examples"`
}

// Run reads the key families, the jobs, the deadline keys and the loner
// markers that opts selects, and reports what is rotten. It never writes;
// opts.OnFindings may. Memory stays bounded whatever the number of keys:
// families are counted and sampled, and jobs are remembered as 64-bit
// hashes (see docs/audit.md). On an error it returns the partial report with
// the error.
func Run(ctx context.Context, s *inspect.Scanner, opts Options) (*Report, error) {
	for _, f := range opts.Families {
		if err := f.validate(); err != nil {
			return nil, err
		}
	}
	if opts.ScanCount <= 0 {
		opts.ScanCount = DefaultScanCount
	}
	if opts.Examples == 0 {
		opts.Examples = DefaultExamples
	} else if opts.Examples < 0 {
		opts.Examples = 0
	}
	start := time.Now()
	a := &auditRun{s: s, opts: opts, rep: &Report{At: s.Now().UTC(), Families: []*FamilyReport{}, Problems: []inspect.Problem{}}}
	if opts.MaxDuration > 0 {
		a.deadline = start.Add(opts.MaxDuration)
	}
	err := a.run(ctx)
	a.rep.Elapsed = time.Since(start).Seconds()
	if err != nil {
		a.stop(stop.Error)
		if ctx.Err() != nil {
			a.rep.Stopped = stop.Interrupted
			err = ctx.Err()
		}
	}
	return a.rep, err
}

type auditRun struct {
	s        *inspect.Scanner
	opts     Options
	rep      *Report
	deadline time.Time
	// jobs holds the hash sets of the job scan; nil until it completed.
	jobs *jobSets
	// lonersBefore holds the markers seen before the job scan (see
	// readLoners); nil when they were not read for judging.
	lonersBefore *hashSet
	// lonerQueues names the queues those markers are for: only their jobs
	// need a digest. Past lonerQueueCap names, every queue does.
	lonerQueues    map[string]struct{}
	lonerAllQueues bool
}

const lonerQueueCap = 10000

func (a *auditRun) run(ctx context.Context) error {
	for _, f := range a.opts.Families {
		fr := newFamilyReport(f, KindKeys)
		a.rep.Families = append(a.rep.Families, fr)
		if a.outOfTime() {
			fr.Skipped = true
			a.partial(fr, stop.MaxDuration)
			continue
		}
		if err := a.scanFamily(ctx, f, fr); err != nil {
			return err
		}
	}
	var loners *FamilyReport
	if a.opts.Loners {
		f := Family{Name: "loner markers", Pattern: a.s.Layout().LonerPattern(), Values: []string{"1"}}
		loners = newFamilyReport(f, KindLoners)
		loners.Orphans = &OrphanReport{Examples: []KeyExample{}}
		a.rep.Loners = loners
		// Markers are read before the jobs, so that only markers that
		// existed when the jobs were read are judged: a job enqueued
		// meanwhile, marker and all, is never taken for an orphan.
		if err := a.readLoners(ctx, f, loners); err != nil {
			return err
		}
	}
	if a.opts.Jobs {
		if err := a.scanJobs(ctx); err != nil {
			return err
		}
	}
	if a.opts.Deadlines {
		f := Family{Name: "deadline keys", Pattern: a.s.Layout().ExpirationPattern()}
		fr := newFamilyReport(f, KindDeadlines)
		fr.Orphans = &OrphanReport{Examples: []KeyExample{}}
		a.rep.Deadlines = fr
		a.judgeable(fr)
		if a.outOfTime() {
			fr.Skipped = true
			fr.Orphans.Judged, fr.Orphans.NotJudged = false, "out of time"
			a.partial(fr, stop.MaxDuration)
		} else if err := a.scanFamily(ctx, f, fr); err != nil {
			return err
		}
	}
	if loners != nil {
		a.judgeable(loners)
		if loners.Orphans.Judged {
			if err := a.judgeLoners(ctx, loners); err != nil {
				return err
			}
		}
	}
	return nil
}

// judgeable decides whether the orphans of fr can be told.
func (a *auditRun) judgeable(fr *FamilyReport) {
	o := fr.Orphans
	switch {
	case !a.opts.Jobs:
		o.NotJudged = "jobs were not read"
	case a.jobs == nil:
		o.NotJudged = "the job scan did not complete"
	case a.s.QueueFiltered():
		o.NotJudged = "only some queues were read"
	case fr.Kind == KindLoners && a.lonersBefore == nil:
		o.NotJudged = "the marker scan did not complete"
	default:
		o.Judged = true
	}
}

func newFamilyReport(f Family, kind string) *FamilyReport {
	return &FamilyReport{
		Name: f.label(), Pattern: f.Pattern, Kind: kind, ExpectedType: f.wantType(),
		ExpectedTTLSeconds: f.TTL.Seconds(), ExpectedValues: f.Values,
		StuckValue: f.StuckValue, StuckAfterSeconds: f.StuckAfter.Seconds(),
		Types: map[string]int64{}, Examples: map[string][]KeyExample{},
		TTL: TTLStats{Histogram: []HistogramBucket{}},
	}
}

func (a *auditRun) outOfTime() bool {
	return !a.deadline.IsZero() && !time.Now().Before(a.deadline)
}

// partial marks a section as stopped early.
func (a *auditRun) partial(fr *FamilyReport, reason string) {
	fr.Partial, fr.Stopped = true, reason
	a.stop(reason)
}

func (a *auditRun) stop(reason string) {
	a.rep.Partial = true
	if a.rep.Stopped == "" {
		a.rep.Stopped = reason
	}
}

func (a *auditRun) emit(ctx context.Context, fs []Finding) error {
	if a.opts.OnFindings == nil || len(fs) == 0 {
		return nil
	}
	return a.opts.OnFindings(ctx, fs)
}

func (a *auditRun) example(fr *FamilyReport, kind string, ex KeyExample) {
	if len(fr.Examples[kind]) < a.opts.Examples {
		fr.Examples[kind] = append(fr.Examples[kind], ex)
	}
}

// scanKeys runs SCAN MATCH pattern and hands each page to page, until the
// end, MaxKeys keys (when limited), or the audit's deadline. It returns
// why it stopped early ("" when it went through).
func (a *auditRun) scanKeys(ctx context.Context, pattern string, limited bool, page func(ctx context.Context, keys []string) error) (string, error) {
	var cursor uint64
	var seen int64
	for {
		if a.outOfTime() {
			return stop.MaxDuration, nil
		}
		if err := ctx.Err(); err != nil {
			return stop.Interrupted, err
		}
		keys, next, err := a.s.Client().Scan(ctx, cursor, pattern, a.opts.ScanCount).Result()
		if err != nil {
			return stop.Error, fmt.Errorf("scan %s: %w", pattern, err)
		}
		// capped: keys were left unread, in this page or after it.
		capped := false
		if limited && a.opts.MaxKeys > 0 && seen+int64(len(keys)) >= a.opts.MaxKeys {
			room := a.opts.MaxKeys - seen
			capped = next != 0 || int64(len(keys)) > room
			keys = keys[:room]
		}
		seen += int64(len(keys))
		if len(keys) > 0 {
			if err := page(ctx, keys); err != nil {
				return stop.Error, err
			}
		}
		if capped {
			return stop.MaxKeys, nil
		}
		if cursor = next; cursor == 0 {
			return "", nil
		}
	}
}

// keyState is what one pipelined TYPE/PTTL/GET read of a key says.
type keyState struct {
	typ      string
	ttl      time.Duration // remaining; -1 none
	value    string
	hasValue bool
}

func (k keyState) noTTL() bool { return k.ttl < 0 }

func (k keyState) example(key, detail string) KeyExample {
	ex := KeyExample{Key: key, Type: k.typ, TTLSeconds: -1, Detail: detail}
	if k.hasValue {
		ex.Value = truncateValue(k.value)
	}
	if !k.noTTL() {
		ex.TTLSeconds = k.ttl.Seconds()
	}
	return ex
}

// readKeys reads the type, remaining TTL and (for strings) value of keys
// with one pipeline. A key of type "none" is gone.
func (a *auditRun) readKeys(ctx context.Context, keys []string) ([]keyState, error) {
	pipe := a.s.Client().Pipeline()
	types := make([]*redis.StatusCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	gets := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		types[i] = pipe.Type(ctx, k)
		ttls[i] = pipe.PTTL(ctx, k)
		// GET answers WRONGTYPE for other types: cheap, and ignored.
		gets[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isReply(err) {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	out := make([]keyState, len(keys))
	for i := range keys {
		if err := types[i].Err(); err != nil {
			return nil, fmt.Errorf("type of %s: %w", keys[i], err)
		}
		st := keyState{typ: types[i].Val(), ttl: -1}
		if d, err := ttls[i].Result(); err == nil && d >= 0 {
			st.ttl = d
		} else if err == nil && d == -2 {
			st.typ = "none" // gone between TYPE and PTTL
		}
		if v, err := gets[i].Result(); err == nil {
			st.value, st.hasValue = v, true
		}
		out[i] = st
	}
	return out, nil
}

// isReply reports whether err is a reply of Redis to one command (nil,
// WRONGTYPE, ...) rather than a failure to talk to it. go-redis exports no
// such test (its isRedisError is unexported; HasErrorPrefix needs a prefix).
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

func truncateValue(v string) string {
	if len(v) <= valueDisplayLen {
		return v
	}
	cut := valueDisplayLen
	for cut > 0 && (v[cut]&0xC0) == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return v[:cut] + "…"
}
