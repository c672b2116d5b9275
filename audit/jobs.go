package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"sort"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/stop"
)

// JobsReport is what the audit found in the queues and delayed buckets.
type JobsReport struct {
	Queues  int   `json:"queues"`
	Jobs    int64 `json:"jobs"`
	Delayed int64 `json:"delayed_jobs"`
	Buckets int   `json:"delayed_buckets"`
	// States counts every job by state (as inspect does); MostOverdue is
	// the job whose deadline passed longest ago.
	States      inspect.Counts  `json:"states"`
	MostOverdue *inspect.JobRef `json:"most_overdue,omitempty"`
	// LongestQueue is the queue with the most jobs when the audit began.
	LongestQueue       string `json:"longest_queue,omitempty"`
	LongestQueueLength int64  `json:"longest_queue_length"`

	// DuplicateIDs counts the jobs whose id was already seen in another
	// job (the extra copies); DuplicatedIDs the ids seen more than once.
	DuplicateIDs  int64 `json:"duplicate_ids"`
	DuplicatedIDs int64 `json:"duplicated_ids"`
	// IdenticalPayloads counts the jobs whose payload is byte-identical to
	// one already seen (the extra copies); DuplicatedPayloads the payloads
	// seen more than once.
	IdenticalPayloads  int64 `json:"identical_payloads"`
	DuplicatedPayloads int64 `json:"duplicated_payloads"`
	// DuplicateJobs counts the jobs that are an extra copy by id, by
	// payload, or both (each job once).
	DuplicateJobs int64 `json:"duplicate_jobs"`
	// Groups splits the extra copies by queue and class, most first (at
	// most 1000 groups; the rest are counted in one (other) group).
	Groups []DuplicateGroup `json:"groups"`
	// Examples of extra copies: the first few found of each kind.
	IDExamples      []DuplicateExample `json:"id_examples"`
	PayloadExamples []DuplicateExample `json:"payload_examples"`
	Resyncs         int                `json:"resyncs,omitempty"`
	Partial         bool               `json:"partial"`
	Stopped         string             `json:"stopped,omitempty"`
}

// DuplicateGroup counts the extra copies of one queue and class.
type DuplicateGroup struct {
	Queue             string `json:"queue"`
	Delayed           bool   `json:"delayed,omitempty"`
	Class             string `json:"class"`
	DuplicateIDs      int64  `json:"duplicate_ids"`
	IdenticalPayloads int64  `json:"identical_payloads"`
}

// DuplicateExample is one extra copy of a job.
type DuplicateExample struct {
	Queue     string `json:"queue"`
	DelayedAt int64  `json:"delayed_at,omitempty"`
	Class     string `json:"class"`
	ID        string `json:"id,omitempty"`
	// Payload is the payload, truncated to 100 bytes.
	Payload string `json:"payload"`
}

// jobSets is what the job scan remembers for orphan judgement, as 64-bit
// hashes: a collision can only make an orphan look owned, never the
// reverse. With the duplicate counts' own sets, a job costs 30 to 60 bytes
// (see hashSet): 1M jobs take some tens of MB.
type jobSets struct {
	ids hashSet
	// loners holds lonerHash(queue, digest) of every queued job; nil
	// when loner markers are not audited.
	loners *hashSet
	// queues holds the name of every queue found.
	queues map[string]bool
}

func (j *jobSets) hasID(id string) bool { return j.ids.has(idHash(id)) }

type groupKey struct {
	queue, class string
	delayed      bool
}

// jobAcc accumulates the duplicate counts of the job scan.
type jobAcc struct {
	a        *auditRun
	rep      *JobsReport
	sets     *jobSets
	payloads hashSet
	// dupIDs and dupPayloads hold the hashes seen more than once, to
	// count each duplicated id or payload once.
	dupIDs, dupPayloads hashSet
	groups              map[groupKey]*DuplicateGroup
	digester            lonerDigester
}

func (acc *jobAcc) add(j *inspect.Job, ref inspect.ListRef) {
	var dupID, dupPayload bool
	if j.ID != "" {
		if h := idHash(j.ID); !acc.sets.ids.add(h) {
			dupID = true
			acc.dupIDs.add(h)
		}
	}
	if h := payloadHash(j.Raw); !acc.payloads.add(h) {
		dupPayload = true
		acc.dupPayloads.add(h)
	}
	if acc.sets.loners != nil && !ref.Delayed() && acc.a.wantDigests(ref.Queue) {
		for _, d := range acc.digester.digests([]byte(j.Raw)) {
			acc.sets.loners.add(lonerHash(ref.Queue, d))
		}
	}
	if j.Skipped || (!dupID && !dupPayload) {
		return
	}
	r := acc.rep
	r.DuplicateJobs++
	g := acc.group(groupKey{queue: j.Queue, class: j.Class, delayed: ref.Delayed()})
	ex := DuplicateExample{Queue: j.Queue, DelayedAt: ref.DelayedAt, Class: j.Class, ID: j.ID, Payload: truncateValue(j.Raw)}
	if dupID {
		r.DuplicateIDs++
		g.DuplicateIDs++
		if len(r.IDExamples) < acc.a.opts.Examples {
			r.IDExamples = append(r.IDExamples, ex)
		}
	}
	if dupPayload {
		r.IdenticalPayloads++
		g.IdenticalPayloads++
		if len(r.PayloadExamples) < acc.a.opts.Examples {
			r.PayloadExamples = append(r.PayloadExamples, ex)
		}
	}
}

func (acc *jobAcc) group(k groupKey) *DuplicateGroup {
	if g, ok := acc.groups[k]; ok {
		return g
	}
	if len(acc.groups) >= dupGroupCap {
		k = groupKey{queue: otherValue, class: otherValue}
		if g, ok := acc.groups[k]; ok {
			return g
		}
	}
	g := &DuplicateGroup{Queue: k.queue, Class: k.class, Delayed: k.delayed}
	acc.groups[k] = g
	return g
}

func (acc *jobAcc) finish() {
	r := acc.rep
	r.DuplicatedIDs, r.DuplicatedPayloads = int64(acc.dupIDs.len()), int64(acc.dupPayloads.len())
	for _, g := range acc.groups {
		r.Groups = append(r.Groups, *g)
	}
	sort.Slice(r.Groups, func(i, j int) bool {
		a, b := r.Groups[i], r.Groups[j]
		if na, nb := a.DuplicateIDs+a.IdenticalPayloads, b.DuplicateIDs+b.IdenticalPayloads; na != nb {
			return na > nb
		}
		if a.Queue != b.Queue {
			return a.Queue < b.Queue
		}
		if a.Delayed != b.Delayed {
			return !a.Delayed
		}
		return a.Class < b.Class
	})
}

// scanJobs reads every queue, then the delayed buckets: job states,
// duplicates, and the hash sets orphan judgement needs (a.jobs, set only
// when the scan went through).
func (a *auditRun) scanJobs(ctx context.Context) error {
	r := &JobsReport{Groups: []DuplicateGroup{}, IDExamples: []DuplicateExample{}, PayloadExamples: []DuplicateExample{}}
	a.rep.Jobs = r
	sets := &jobSets{queues: map[string]bool{}}
	if a.lonersBefore != nil && a.lonersBefore.len() > 0 {
		sets.loners = &hashSet{}
	}
	acc := &jobAcc{a: a, rep: r, sets: sets, groups: map[groupKey]*DuplicateGroup{}}
	defer acc.finish()
	var totals inspect.QueueSummary
	defer func() { r.States, r.MostOverdue = totals.Counts, totals.MostOverdue }()

	stopped := func(reason string) error {
		r.Partial, r.Stopped = true, reason
		a.stop(reason)
		return nil
	}
	if a.outOfTime() {
		return stopped(stop.MaxDuration)
	}
	queues, problems, err := a.s.DiscoverQueues(ctx)
	if err != nil {
		return err
	}
	a.rep.Problems = append(a.rep.Problems, problems...)
	a.discovered(queues, r, sets)
	visit := a.jobVisitor(acc)
	for _, q := range queues {
		if !q.Readable() {
			continue
		}
		r.Queues++
		qs := inspect.QueueSummary{Queue: q.Name}
		st, err := a.s.ScanList(ctx, inspect.ListRef{Key: q.Key, Queue: q.Name}, visit(&qs, &r.Jobs))
		r.Resyncs += st.Resyncs
		totals.Merge(&qs)
		switch {
		case err == errAuditTime:
			return stopped(stop.MaxDuration)
		case inspect.IsWrongType(err): // the key changed type under us
			a.rep.Problems = append(a.rep.Problems, inspect.WrongTypeProblem(q.Key, err))
		case err != nil:
			return err
		}
	}
	var ds inspect.QueueSummary
	problems, err = a.s.ScanDelayed(ctx, visit(&ds, &r.Delayed), func(inspect.Bucket) { r.Buckets++ })
	a.rep.Problems = append(a.rep.Problems, problems...)
	totals.Merge(&ds)
	r.Jobs += r.Delayed
	switch {
	case err == errAuditTime:
		return stopped(stop.MaxDuration)
	case err != nil:
		return err
	}
	a.jobs = sets
	return nil
}

// discovered notes the queues discovery found: their names for orphan
// judgement, the longest, and the work ahead for the progress bar.
func (a *auditRun) discovered(queues []inspect.QueueInfo, r *JobsReport, sets *jobSets) {
	var total int64
	for _, q := range queues {
		sets.queues[q.Name] = true
		total += q.Length
		if q.Type == "list" && q.Length > r.LongestQueueLength {
			r.LongestQueue, r.LongestQueueLength = q.Name, q.Length
		}
	}
	if a.opts.Progress != nil {
		a.opts.Progress.SetTotal(total)
	}
}

// jobVisitor returns the visitor of one list's pages: it counts the jobs
// into sum and n and hands them to acc, and stops the scan when the audit
// runs out of time.
func (a *auditRun) jobVisitor(acc *jobAcc) func(sum *inspect.QueueSummary, n *int64) inspect.Visitor {
	return func(sum *inspect.QueueSummary, n *int64) inspect.Visitor {
		return func(_ context.Context, c *inspect.Chunk) error {
			if a.outOfTime() {
				return errAuditTime
			}
			for i := range c.Jobs {
				sum.Add(&c.Jobs[i], c.Now)
				acc.add(&c.Jobs[i], c.List)
			}
			*n += int64(len(c.Jobs))
			if a.opts.Progress != nil {
				a.opts.Progress.Add(len(c.Jobs))
			}
			return nil
		}
	}
}

// wantDigests reports whether the jobs of queue need their loner digest:
// when a marker read before the job scan names the queue.
func (a *auditRun) wantDigests(queue string) bool {
	if a.lonerAllQueues {
		return true
	}
	_, ok := a.lonerQueues[queue]
	return ok
}

var errAuditTime = errors.New("audit ran out of time")

func idHash(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}

func keyHash(key string) uint64 { return idHash(key) }

func payloadHash(raw string) uint64 {
	sum := sha256.Sum256([]byte(raw))
	return binary.BigEndian.Uint64(sum[:8])
}
