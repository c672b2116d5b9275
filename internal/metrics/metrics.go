// Package metrics owns resque-expire's Prometheus metrics: their names,
// help texts and labels (docs/metrics.md lists them), turning the results
// of inspect, sweep, audit and check into series, bounding the number of
// series that label values read from Redis can create, and writing them in
// the text exposition format, either served over HTTP (serve) or as a
// node_exporter textfile (--metrics-file). It reads nothing from Redis
// itself and never prints.
package metrics

import (
	"net/http"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/sweep"
)

// MaxQueues bounds the distinct queue label values of one metric; queues
// beyond the first MaxQueues (in name order) are counted together under
// queue="(other)", so a hostile keyspace cannot explode the series count.
const MaxQueues = 500

// MaxValues bounds the distinct state label values of one key family.
const MaxValues = 20

// Other is the label value of everything past a bound.
const Other = "(other)"

// DelayedQueue is the queue label of resque-scheduler's delayed jobs.
const DelayedQueue = sweep.DelayedQueue

// Run results, the result label of resque_expire_runs_total.
const (
	ResultOK       = "ok"
	ResultError    = "error"
	ResultLockHeld = "lock_held"
)

// Set is one process's metrics, in a registry of its own.
type Set struct {
	reg *prometheus.Registry

	jobs          *prometheus.GaugeVec
	oldestOverdue *prometheus.GaugeVec
	lastSuccess   *prometheus.GaugeVec
	lastDuration  *prometheus.GaugeVec
	runs          *prometheus.CounterVec
	lockHeld      *prometheus.GaugeVec
	idemKeys      *prometheus.GaugeVec
	idemNoTTL     *prometheus.GaugeVec
	idemStuck     *prometheus.GaugeVec
	orphaned      *prometheus.GaugeVec
	duplicates    *prometheus.GaugeVec
	redisUp       *prometheus.GaugeVec
	clockSkew     *prometheus.GaugeVec
	failedList    *prometheus.GaugeVec
	removed       *removedCollector
	withRuns      bool
	scanned       *prometheus.GaugeVec
	evictedKeys   *prometheus.GaugeVec
}

// Options choose what a Set exposes.
type Options struct {
	// Version is the build's version, for resque_expire_build_info.
	Version string
	// Runs exposes resque_expire_runs_total, which only means something
	// in a process that lives across runs (serve), not in a textfile.
	Runs bool
	// Command, for a textfile, labels the series every command writes
	// (build_info, redis_up, clock_skew_seconds, redis_evicted_keys) with
	// command="<Command>": node_exporter refuses a series found in two
	// files, and each command writes its own.
	Command string
	// Target, for a run over many Redis targets (--targets), labels every
	// series with target="<Target>", so that each target's file holds
	// series of its own.
	Target string
}

// New returns a Set with every metric registered; series appear as they
// are observed.
func New(o Options) *Set {
	s := &Set{reg: prometheus.NewRegistry(), withRuns: o.Runs}
	var shared prometheus.Labels
	if o.Command != "" {
		shared = prometheus.Labels{"command": o.Command}
	}
	s.jobs = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_jobs",
		Help: "Jobs per queue and state at the last scan (expired, live, missing, unidentified, invalid); delayed jobs as queue=\"(delayed)\"."},
		[]string{"queue", "state"})
	s.oldestOverdue = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_oldest_overdue_seconds",
		Help: "How long the most overdue expired job of the queue had been expired at the last scan (0 when none is)."},
		[]string{"queue"})
	s.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_last_success_timestamp_seconds",
		Help: "Unix time at which the last successful run of the command ended."}, []string{"command"})
	s.lastDuration = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_last_run_duration_seconds",
		Help: "How long the last run of the command took, successful or not."}, []string{"command"})
	s.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "resque_expire_runs_total",
		Help: "Runs of the command by this process, by result (ok, error, lock_held)."}, []string{"command", "result"})
	s.lockHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_lock_held",
		Help: "1 when the last sweep found the sweep lock held by another run, else 0."}, nil)
	s.idemKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_idempotency_keys",
		Help: "Idempotency keys of the family at the last audit, by value (state); values past the most frequent as state=\"(other)\"."},
		[]string{"family", "state"})
	s.idemNoTTL = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_idempotency_keys_without_ttl",
		Help: "Idempotency keys of the family without a TTL at the last audit."}, []string{"family"})
	s.idemStuck = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_idempotency_keys_stuck",
		Help: "Idempotency keys of the family stuck in their stuck value at the last audit."}, []string{"family"})
	s.orphaned = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_orphaned_keys",
		Help: "Orphaned keys at the last audit: kind=\"deadline\" (deadline keys of no job), kind=\"loner\" (resque-loner markers of no queued job)."},
		[]string{"kind"})
	s.duplicates = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_duplicate_jobs",
		Help: "Extra copies of jobs (same id or byte-identical payload) per queue at the last audit."}, []string{"queue"})
	s.redisUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_redis_up",
		Help: "1 when Redis answered at the last run, else 0.", ConstLabels: shared}, nil)
	s.clockSkew = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_clock_skew_seconds",
		Help: "How far Redis's clock runs ahead of this host's (negative: behind), measured at the last run.", ConstLabels: shared}, nil)
	s.failedList = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_failed_jobs",
		Help: "Entries of Resque's failed list at the last scan."}, nil)
	s.scanned = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_last_scan_jobs",
		Help: "Jobs the last run of the command read."}, []string{"command"})
	s.evictedKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_redis_evicted_keys",
		Help: "Redis's evicted_keys (INFO stats) at the last look: keys evicted under maxmemory since Redis started.", ConstLabels: shared}, nil)
	s.removed = &removedCollector{desc: prometheus.NewDesc("resque_expire_jobs_removed_total",
		"Jobs removed by resque-expire sweeps, by queue and action (deleted, archived, failed), counted in Redis by the removal script itself (<ns>:resque-expire:stats).",
		[]string{"queue", "action"}, nil)}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "resque_expire_build_info",
		Help: "Always 1; the labels say which build runs.", ConstLabels: shared}, []string{"version", "goversion"})
	build.WithLabelValues(o.Version, runtime.Version()).Set(1)

	reg := prometheus.Registerer(s.reg)
	if o.Target != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"target": o.Target}, s.reg)
	}
	reg.MustRegister(s.jobs, s.oldestOverdue, s.lastSuccess, s.lastDuration, s.lockHeld, s.idemKeys,
		s.idemNoTTL, s.idemStuck, s.orphaned, s.duplicates, s.redisUp, s.clockSkew, s.failedList, s.removed, build,
		s.scanned, s.evictedKeys)
	if o.Runs {
		reg.MustRegister(s.runs)
	}
	return s
}

// Handler serves the metrics in the Prometheus text format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// ObserveRun records the end of a run of command: its result, how long it
// took, and, for a success, when it ended.
func (s *Set) ObserveRun(command, result string, took time.Duration, end time.Time) {
	s.lastDuration.WithLabelValues(command).Set(took.Seconds())
	if result == ResultOK {
		s.lastSuccess.WithLabelValues(command).Set(float64(end.UnixNano()) / 1e9)
	}
	if s.withRuns {
		s.runs.WithLabelValues(command, result).Inc()
	}
	// A sweep that ran (or failed to reach Redis) did not find the lock held.
	if command == "sweep" {
		if result == ResultLockHeld {
			s.lockHeld.WithLabelValues().Set(1)
		} else {
			s.lockHeld.WithLabelValues().Set(0)
		}
	}
}

// SetLastSuccess sets the last success of command to t (a textfile written
// after a failed run keeps the previous file's success).
func (s *Set) SetLastSuccess(command string, t float64) {
	s.lastSuccess.WithLabelValues(command).Set(t)
}

// SetRedisUp records whether Redis answered.
func (s *Set) SetRedisUp(up bool) {
	if up {
		s.redisUp.WithLabelValues().Set(1)
	} else {
		s.redisUp.WithLabelValues().Set(0)
	}
}

// SetClockSkew records how far Redis's clock runs ahead of the host's.
func (s *Set) SetClockSkew(d time.Duration) { s.clockSkew.WithLabelValues().Set(d.Seconds()) }

// SetEvictedKeys records Redis's evicted_keys.
func (s *Set) SetEvictedKeys(n int64) { s.evictedKeys.WithLabelValues().Set(float64(n)) }

// SetScanned records how many jobs the last run of command read.
func (s *Set) SetScanned(command string, n int64) { s.scanned.WithLabelValues(command).Set(float64(n)) }

// SetRemoved replaces the removal counters with the stats hash's (read
// with sweep.RemovedTotals). Queues past MaxQueues are summed into
// queue="(other)".
func (s *Set) SetRemoved(counts []sweep.RemovedCount) {
	queues := map[string]bool{}
	for _, c := range counts {
		queues[c.Queue] = true
	}
	keep := capQueues(queues)
	sums := map[[2]string]float64{}
	for _, c := range counts {
		if c.Count < 0 {
			continue
		}
		sums[[2]string{keep(c.Queue), c.Action}] += float64(c.Count)
	}
	s.removed.set(sums)
}

// queueStates are the states of resque_expire_jobs, in order.
var queueStates = []string{"expired", "live", "missing", "unidentified", "invalid"}

// ObserveSummary replaces the job gauges with an inspection's counts.
func (s *Set) ObserveSummary(sum *inspect.Summary) {
	s.jobs.Reset()
	s.oldestOverdue.Reset()
	rows := append([]inspect.QueueSummary{}, sum.Queues...)
	d := sum.Delayed.QueueSummary
	d.Queue = DelayedQueue
	rows = append(rows, d)
	s.observeQueues(rows, sum.At)
	s.failedList.WithLabelValues().Set(float64(sum.Failed))
}

func (s *Set) observeQueues(rows []inspect.QueueSummary, now time.Time) {
	names := map[string]bool{}
	for _, q := range rows {
		if q.Queue != DelayedQueue {
			names[q.Queue] = true
		}
	}
	keep := capQueues(names)
	type acc struct {
		counts  [5]int64
		overdue float64
	}
	byQueue := map[string]*acc{}
	for _, q := range rows {
		name := q.Queue
		if name != DelayedQueue {
			name = keep(name)
		}
		a := byQueue[name]
		if a == nil {
			a = &acc{}
			byQueue[name] = a
		}
		for i, n := range []int64{q.Expired, q.Live, q.Missing, q.Unidentified, q.Invalid} {
			a.counts[i] += n
		}
		if q.MostOverdue != nil {
			o := q.MostOverdue.Overdue.Seconds()
			if o == 0 && !q.MostOverdue.Deadline.IsZero() {
				o = now.Sub(q.MostOverdue.Deadline).Seconds()
			}
			a.overdue = max(a.overdue, o)
		}
	}
	for name, a := range byQueue {
		for i, st := range queueStates {
			s.jobs.WithLabelValues(name, st).Set(float64(a.counts[i]))
		}
		s.oldestOverdue.WithLabelValues(name).Set(a.overdue)
	}
}

// ObserveAudit replaces the audit gauges with an audit's findings.
func (s *Set) ObserveAudit(rep *audit.Report) {
	s.idemKeys.Reset()
	s.idemNoTTL.Reset()
	s.idemStuck.Reset()
	s.orphaned.Reset()
	s.duplicates.Reset()
	for _, f := range rep.Families {
		name := f.Name
		if name == "" {
			name = f.Pattern
		}
		var counted int64
		for i, v := range f.TopValues {
			state := v.Value
			if i >= MaxValues {
				state = Other
			}
			s.idemKeys.WithLabelValues(name, state).Add(float64(v.Count))
			counted += v.Count
		}
		if rest := f.Keys - counted; rest > 0 {
			// Keys of other types, or values not sampled.
			s.idemKeys.WithLabelValues(name, Other).Add(float64(rest))
		}
		s.idemNoTTL.WithLabelValues(name).Set(float64(f.NoTTL))
		s.idemStuck.WithLabelValues(name).Set(float64(f.Stuck))
	}
	if d := rep.Deadlines; d != nil && d.Orphans != nil {
		s.orphaned.WithLabelValues("deadline").Set(float64(d.Orphans.Orphans))
	}
	if l := rep.Loners; l != nil && l.Orphans != nil {
		s.orphaned.WithLabelValues("loner").Set(float64(l.Orphans.Orphans))
	}
	if j := rep.Jobs; j != nil {
		names := map[string]bool{}
		for _, g := range j.Groups {
			if !g.Delayed {
				names[g.Queue] = true
			}
		}
		keep := capQueues(names)
		perQueue := map[string]int64{}
		for _, g := range j.Groups {
			q := keep(g.Queue)
			if g.Delayed {
				q = DelayedQueue
			}
			perQueue[q] += max(g.DuplicateIDs, g.IdenticalPayloads)
		}
		for q, n := range perQueue {
			s.duplicates.WithLabelValues(q).Set(float64(n))
		}
	}
}

// capQueues returns the function mapping a queue name to its label value:
// itself for the first MaxQueues names in name order, Other for the rest.
func capQueues(names map[string]bool) func(string) string {
	if len(names) <= MaxQueues {
		return func(q string) string { return q }
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	kept := make(map[string]bool, MaxQueues)
	for _, n := range sorted[:MaxQueues] {
		kept[n] = true
	}
	return func(q string) string {
		if kept[q] {
			return q
		}
		return Other
	}
}

// removedCollector exposes the counters kept in Redis as they were last
// read: Redis keeps the count, this process only reports it.
type removedCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	sums map[[2]string]float64
}

func (c *removedCollector) set(sums map[[2]string]float64) {
	c.mu.Lock()
	c.sums = sums
	c.mu.Unlock()
}

func (c *removedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *removedCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.sums {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, v, k[0], k[1])
	}
}

// Names lists the name of every metric a Set can expose.
func Names() []string {
	s := New(Options{Runs: true})
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range []prometheus.Collector{s.jobs, s.oldestOverdue, s.lastSuccess, s.lastDuration, s.runs, s.lockHeld,
			s.idemKeys, s.idemNoTTL, s.idemStuck, s.orphaned, s.duplicates, s.redisUp, s.clockSkew, s.failedList,
			s.removed, s.scanned, s.evictedKeys} {
			c.Describe(ch)
		}
		close(ch)
	}()
	var out []string
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := re.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	return append(out, "resque_expire_build_info")
}
