package inspect

import (
	"context"
	"sync"
	"time"

	"github.com/resque-expire/resque-expire/internal/parallel"
	"github.com/resque-expire/resque-expire/internal/tally"
)

// Counts holds the number of jobs in each state.
type Counts struct {
	Jobs         int64 `json:"jobs"`
	Expired      int64 `json:"expired"`
	Live         int64 `json:"live"`
	Missing      int64 `json:"missing"`
	Unidentified int64 `json:"unidentified"`
	Invalid      int64 `json:"invalid"`
	// Skipped counts jobs left out by the class filter (not in Jobs).
	Skipped int64 `json:"skipped,omitempty"`
}

// Add counts one job.
func (c *Counts) Add(j *Job) {
	if j.Skipped {
		c.Skipped++
		return
	}
	c.Jobs++
	if n := c.of(j.State); n != nil {
		*n++
	}
}

// Merge adds o to c.
func (c *Counts) Merge(o Counts) { tally.Add(c, o) }

// of is c's count of jobs in state s, nil for a state it does not count.
func (c *Counts) of(s State) *int64 {
	switch s {
	case StateExpired:
		return &c.Expired
	case StateLive:
		return &c.Live
	case StateMissing:
		return &c.Missing
	case StateUnidentified:
		return &c.Unidentified
	case StateInvalid:
		return &c.Invalid
	}
	return nil
}

// JobRef points at one job in a summary.
type JobRef struct {
	Queue    string        `json:"queue"`
	ID       string        `json:"id"`
	Class    string        `json:"class"`
	Deadline time.Time     `json:"expires_at"`
	Overdue  time.Duration `json:"-"`
	// OverdueSeconds is Overdue in seconds, for JSON.
	OverdueSeconds float64 `json:"overdue_seconds,omitempty"`
	// DueInSeconds is how far ahead a live deadline is, for JSON.
	DueInSeconds float64 `json:"due_in_seconds,omitempty"`
}

// QueueSummary is one row of the inspect table.
type QueueSummary struct {
	Queue string `json:"queue"`
	Counts
	// Type is the queue key's Redis type ("list", "none").
	Type string `json:"type,omitempty"`
	// Soonest is the nearest future deadline; MostOverdue the oldest past one.
	Soonest     *JobRef `json:"soonest,omitempty"`
	MostOverdue *JobRef `json:"most_overdue,omitempty"`
	Resyncs     int     `json:"resyncs,omitempty"`
}

// Add counts one job read at now, keeping the soonest and most overdue.
func (q *QueueSummary) Add(j *Job, now time.Time) {
	q.Counts.Add(j)
	if j.Skipped {
		return
	}
	switch j.State {
	case StateExpired:
		if q.MostOverdue == nil || j.Deadline.Before(q.MostOverdue.Deadline) {
			q.MostOverdue = ref(j, now)
		}
	case StateLive:
		if q.Soonest == nil || j.Deadline.Before(q.Soonest.Deadline) {
			q.Soonest = ref(j, now)
		}
	}
}

// Merge adds the counts of o to q.
func (q *QueueSummary) Merge(o *QueueSummary) {
	q.Counts.Merge(o.Counts)
	if o.MostOverdue != nil && (q.MostOverdue == nil || o.MostOverdue.Deadline.Before(q.MostOverdue.Deadline)) {
		q.MostOverdue = o.MostOverdue
	}
	if o.Soonest != nil && (q.Soonest == nil || o.Soonest.Deadline.Before(q.Soonest.Deadline)) {
		q.Soonest = o.Soonest
	}
}

func ref(j *Job, now time.Time) *JobRef {
	r := &JobRef{Queue: j.Queue, ID: j.ID, Class: j.Class, Deadline: j.Deadline, Overdue: now.Sub(j.Deadline)}
	if r.Overdue >= 0 {
		r.OverdueSeconds = r.Overdue.Seconds()
	} else {
		r.DueInSeconds = -r.Overdue.Seconds()
	}
	return r
}

// DelayedSummary summarises resque-scheduler's delayed jobs.
type DelayedSummary struct {
	QueueSummary
	Buckets int `json:"buckets"`
}

// Summary is the result of Inspect.
type Summary struct {
	At      time.Time      `json:"at"`
	Queues  []QueueSummary `json:"queues"`
	Delayed DelayedSummary `json:"delayed"`
	Totals  QueueSummary   `json:"totals"`
	// Failed is the length of <ns>:failed; FailedEntries (JSON "failed")
	// counts every failed list's entries by state.
	Failed        int64          `json:"-"`
	FailedEntries *FailedSummary `json:"failed"`
	Problems      []Problem      `json:"problems"`
}

// Options says what Inspect and List look at.
type Options struct {
	// Delayed includes resque-scheduler's delayed buckets.
	Delayed bool
	// Progress, when set, is told how many jobs there are and each page read.
	Progress Progress
}

// Progress receives progress reports. Implementations must be cheap.
type Progress interface {
	SetTotal(n int64)
	Add(n int)
}

// Inspect counts every job of every queue (and the delayed schedule) by
// state, without changing anything.
func (s *Scanner) Inspect(ctx context.Context, opts Options) (*Summary, error) {
	sum := &Summary{At: s.now().UTC(), Queues: []QueueSummary{}, Problems: []Problem{}}
	sum.Totals.Queue = "total"
	sum.Delayed.Queue = "(delayed)"
	qc := &queueCounter{s: s, progress: opts.Progress}
	queues, problems, err := ScanQueues(ctx, s, func(qs []QueueInfo) ([]QueueSummary, error) {
		return qc.count(ctx, qs)
	}, func(q *QueueSummary) string { return q.Queue })
	if err != nil {
		return nil, err
	}
	sum.Queues = append(sum.Queues, queues...)
	sum.Problems = append(append(sum.Problems, problems...), qc.problems...)
	for i := range sum.Queues {
		sum.Totals.Merge(&sum.Queues[i])
	}
	if opts.Delayed {
		if err := s.countDelayed(ctx, sum); err != nil {
			return nil, err
		}
	}
	if err := s.countFailed(ctx, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// queueCounter counts the jobs of queues by state for Inspect,
// Concurrency queues at a time.
type queueCounter struct {
	s        *Scanner
	progress Progress
	mu       sync.Mutex // guards progress and problems
	total    int64
	// problems: queues whose key changed type under the scan (skipped).
	problems []Problem
}

// count returns a row for each of queues, but none for one that turned out
// not to be a list.
func (qc *queueCounter) count(ctx context.Context, queues []QueueInfo) ([]QueueSummary, error) {
	if qc.progress != nil {
		for _, q := range queues {
			qc.total += q.Length
		}
		qc.mu.Lock()
		qc.progress.SetTotal(qc.total)
		qc.mu.Unlock()
	}
	rows := make([]QueueSummary, len(queues))
	gone := make([]bool, len(queues))
	errs := parallel.Each(len(queues), Concurrency, func(i int) error {
		var err error
		gone[i], err = qc.countOne(ctx, queues[i], &rows[i])
		return err
	})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	kept := rows[:0]
	for i := range rows {
		if !gone[i] {
			kept = append(kept, rows[i])
		}
	}
	return kept, nil
}

// countOne counts the jobs of q into qs; gone says q's key changed type
// under the scan, which is reported, not an error.
func (qc *queueCounter) countOne(ctx context.Context, q QueueInfo, qs *QueueSummary) (gone bool, err error) {
	qs.Queue, qs.Type = q.Name, q.Type
	st, err := qc.s.ScanList(ctx, ListRef{Key: q.Key, Queue: q.Name}, func(_ context.Context, c *Chunk) error {
		for k := range c.Jobs {
			qs.Add(&c.Jobs[k], c.Now)
		}
		if qc.progress != nil {
			qc.mu.Lock()
			qc.progress.Add(len(c.Jobs))
			qc.mu.Unlock()
		}
		return nil
	})
	if IsWrongType(err) {
		qc.mu.Lock()
		qc.problems = append(qc.problems, WrongTypeProblem(q.Key, err))
		qc.mu.Unlock()
		return true, nil
	}
	qs.Resyncs = st.Resyncs
	return false, err
}

// countDelayed counts resque-scheduler's delayed jobs into sum.
func (s *Scanner) countDelayed(ctx context.Context, sum *Summary) error {
	ds := &sum.Delayed
	problems, err := s.ScanDelayed(ctx, func(_ context.Context, c *Chunk) error {
		for i := range c.Jobs {
			ds.Add(&c.Jobs[i], c.Now)
		}
		return nil
	}, func(Bucket) { ds.Buckets++ })
	sum.Problems = append(sum.Problems, problems...)
	if err != nil {
		return err
	}
	sum.Totals.Merge(&ds.QueueSummary)
	return nil
}

// countFailed fills in the failed lists' lengths and entries.
func (s *Scanner) countFailed(ctx context.Context, sum *Summary) error {
	n, p, err := s.FailedLength(ctx)
	if err != nil {
		return err
	}
	sum.Failed = n
	if p != nil {
		sum.Problems = append(sum.Problems, *p)
	}
	fs, fp, err := s.InspectFailed(ctx)
	if err != nil {
		return err
	}
	sum.FailedEntries = fs
	sum.Problems = append(sum.Problems, dropWrongType(fp, s.layout.Failed(), p != nil)...)
	return nil
}

// Concurrency is how many queues Inspect (and a sweep) reads at once: two
// keep both Redis and this process busy, one decoding while the other waits.
const Concurrency = 2

// ListOptions says which jobs List emits.
type ListOptions struct {
	Options
	// States to emit; empty means all.
	States []State
	// Limit stops after this many jobs (0 = no limit).
	Limit int64
}

// Listed is one job as List reports it.
type Listed struct {
	Job
	// List names the list the job was read from.
	List ListRef
	Now  time.Time
}

// errListLimit stops a scan when a listing reached its limit.
const errListLimit = errorString("limit reached")

// lister is the visitor of every listing (List, ListDelayed, ListFailed):
// it hands emit the jobs opts wants, counts the progress, and stops the
// scan with errListLimit at opts.Limit.
type lister struct {
	opts ListOptions
	want map[State]bool
	emit func(Listed) error
	n    int64
}

func newLister(opts ListOptions, emit func(Listed) error) *lister {
	l := &lister{opts: opts, want: map[State]bool{}, emit: emit}
	for _, st := range opts.States {
		l.want[st] = true
	}
	return l
}

func (l *lister) visit(_ context.Context, c *Chunk) error {
	for i := range c.Jobs {
		j := &c.Jobs[i]
		if j.Skipped || (len(l.want) > 0 && !l.want[j.State]) {
			continue
		}
		if err := l.emit(Listed{Job: *j, List: c.List, Now: c.Now}); err != nil {
			return err
		}
		if l.n++; l.opts.Limit > 0 && l.n >= l.opts.Limit {
			return errListLimit
		}
	}
	if l.opts.Progress != nil {
		l.opts.Progress.Add(len(c.Jobs))
	}
	return nil
}

// List streams every job matching opts to emit, queue by queue (delayed
// buckets last), in list order. It stops early at opts.Limit.
func (s *Scanner) List(ctx context.Context, opts ListOptions, emit func(Listed) error) ([]Problem, error) {
	visit := newLister(opts, emit).visit
	queues, problems, err := s.DiscoverQueues(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Progress != nil {
		var total int64
		for _, q := range queues {
			total += q.Length
		}
		opts.Progress.SetTotal(total)
	}
	for _, q := range queues {
		if !q.Readable() {
			continue
		}
		if _, err := s.ScanList(ctx, ListRef{Key: q.Key, Queue: q.Name}, visit); err != nil {
			if err == errListLimit {
				return problems, nil
			}
			if IsWrongType(err) {
				problems = append(problems, WrongTypeProblem(q.Key, err))
				continue
			}
			return problems, err
		}
	}
	if opts.Delayed {
		more, err := s.ScanDelayed(ctx, visit, nil)
		problems = append(problems, more...)
		if err != nil && err != errListLimit {
			return problems, err
		}
	}
	return problems, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }
