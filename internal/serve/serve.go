// Package serve runs resque-expire as a service: a sweep every interval
// (and an audit every audit interval), sharing the sweep lock with cron
// runs, surviving Redis outages, and serving /metrics, /healthz and
// /readyz over HTTP. It owns the cycle loop, its backoff and the
// readiness state; the metrics themselves are internal/metrics', the work
// sweep's and inspect's. It logs through the logger it is given and never
// prints.
package serve

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/sweep"
)

// Options configure a service.
type Options struct {
	// Client is the Redis connection, kept across cycles (go-redis
	// reconnects after an outage by itself).
	Client redis.UniversalClient
	Layout resque.Layout
	// Scanner builds a cycle's scanner, and measures how far Redis's clock
	// runs ahead of the host's; it is called every cycle.
	Scanner func(ctx context.Context) (*inspect.Scanner, time.Duration, error)
	// Sweep is every cycle's sweep (its Delayed also chooses whether the
	// job gauges count delayed jobs).
	Sweep sweep.Options
	// Interval between the starts of two cycles; Jitter, a fraction of it
	// (0.1 = ±10%), spreads the cycles of several instances.
	Interval time.Duration
	Jitter   float64
	// Audit, when set, runs every AuditInterval, after that cycle's sweep.
	Audit         func(ctx context.Context, s *inspect.Scanner) (*audit.Report, error)
	AuditInterval time.Duration
	// Listen is the HTTP address of /metrics, /healthz and /readyz;
	// Listener, when set, is used instead (tests).
	Listen   string
	Listener net.Listener
	Metrics  *metrics.Set
	Log      zerolog.Logger
	// PingTimeout bounds the PING that opens each cycle (go-redis would
	// otherwise retry dialing a Redis that is down for seconds); default 5s.
	PingTimeout time.Duration
	// Scrub removes credentials from error texts shown on /readyz.
	Scrub func(string) string
}

// Service is a running service; build it with Start.
type Service struct {
	o    Options
	ln   net.Listener
	http *http.Server

	// warned holds the problems already logged (key and kind), so that a
	// registered queue without a list is not warned about every cycle.
	warned map[[2]string]bool

	mu       sync.Mutex
	redisErr error
	lastEnd  time.Time
	cycles   int
}

// Start listens on Options.Listen (failing at once if it cannot) and
// returns the service, which Run then runs.
func Start(o Options) (*Service, error) {
	if o.Interval <= 0 {
		return nil, errors.New("the interval must be positive")
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 5 * time.Second
	}
	if o.Scrub == nil {
		o.Scrub = func(s string) string { return s }
	}
	s := &Service{o: o, ln: o.Listener, warned: map[[2]string]bool{}}
	if s.ln == nil {
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
		}
		s.ln = ln
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", o.Metrics.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", s.readyz)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// Addr is the address the HTTP server listens on.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Ready says whether the service is ready, and why not: Redis answered at
// the last cycle and a cycle ended less than two intervals ago.
func (s *Service) Ready(now time.Time) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.redisErr != nil:
		return false, "redis did not answer: " + s.o.Scrub(s.redisErr.Error())
	case s.lastEnd.IsZero():
		return false, "no cycle has ended yet"
	case now.Sub(s.lastEnd) >= 2*s.o.Interval:
		return false, fmt.Sprintf("the last cycle ended %s ago, more than two intervals (%s)",
			now.Sub(s.lastEnd).Round(time.Millisecond), 2*s.o.Interval)
	}
	return true, "ok"
}

func (s *Service) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.Ready(time.Now())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, why)
}

// Run serves HTTP and runs cycles until ctx ends; then it lets the cycle
// in progress stop at its next batch (the sweep releases its lock, the
// caller closes the archive), stops the HTTP server and returns nil.
func (s *Service) Run(ctx context.Context) error {
	httpErr := make(chan error, 1)
	go func() { httpErr <- s.http.Serve(s.ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.http.Shutdown(sctx)
	}()
	s.o.Log.Info().Str("listen", s.Addr()).Dur("interval", s.o.Interval).Msg("serving /metrics, /healthz, /readyz")
	var nextAudit time.Time
	fails := 0
	for {
		ok := s.cycle(ctx, &nextAudit)
		if ctx.Err() != nil {
			return nil
		}
		wait := s.jittered()
		if ok {
			fails = 0
		} else {
			fails++
			wait = Backoff(s.o.Interval, fails)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case err := <-httpErr:
			t.Stop()
			return fmt.Errorf("http server: %w", err)
		case <-t.C:
		}
	}
}

// Backoff is the wait after the fails-th failed cycle in a row: an eighth
// of the interval (at least 100ms), doubling, at most the interval.
func Backoff(interval time.Duration, fails int) time.Duration {
	d := max(interval/8, 100*time.Millisecond)
	for i := 1; i < fails && d < interval; i++ {
		d *= 2
	}
	return min(d, interval)
}

func (s *Service) jittered() time.Duration {
	if s.o.Jitter <= 0 {
		return s.o.Interval
	}
	f := 1 + s.o.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(s.o.Interval) * f)
}

// cycle runs one sweep (and, when due, an audit) and updates the metrics.
// It reports whether Redis answered: a cycle that found the lock held
// succeeded as a cycle.
func (s *Service) cycle(ctx context.Context, nextAudit *time.Time) bool {
	start := time.Now()
	sc, stage, err := s.prepare(ctx)
	if err != nil {
		if stage == "ping" && ctx.Err() != nil {
			return true
		}
		return s.fail(stage, err, start)
	}
	result, ev, interrupted := s.runSweep(ctx, sc, start)
	if interrupted {
		return true
	}
	if interrupted = s.countJobs(ctx, sc, ev); interrupted {
		return true
	}
	if s.o.Audit != nil && !time.Now().Before(*nextAudit) {
		if interrupted = s.audit(ctx, sc, nextAudit, ev); interrupted {
			return true
		}
	}
	ev.Str("result", result).Float64("seconds", time.Since(start).Seconds()).Msg("cycle")

	s.mu.Lock()
	s.redisErr = nil
	if result != metrics.ResultError {
		s.lastEnd = time.Now()
	}
	s.cycles++
	s.mu.Unlock()
	return result != metrics.ResultError
}

// prepare opens a cycle: a PING within PingTimeout, the eviction gauge,
// and the cycle's scanner with its clock skew. On an error it names the
// stage that failed.
func (s *Service) prepare(ctx context.Context) (sc *inspect.Scanner, stage string, err error) {
	m := s.o.Metrics
	pctx, cancel := context.WithTimeout(ctx, s.o.PingTimeout)
	err = s.o.Client.Ping(pctx).Err()
	cancel()
	if err != nil {
		return nil, "ping", err
	}
	m.SetRedisUp(true)
	if n, ok := evictedKeys(ctx, s.o.Client); ok {
		m.SetEvictedKeys(n)
	}
	sc, skew, err := s.o.Scanner(ctx)
	if err != nil {
		return nil, "clock", err
	}
	m.SetClockSkew(skew)
	return sc, "", nil
}

// fail records a cycle that Redis did not let run, at stage, and returns
// false.
func (s *Service) fail(stage string, err error, start time.Time) bool {
	s.o.Metrics.SetRedisUp(false)
	s.o.Metrics.ObserveRun("sweep", metrics.ResultError, time.Since(start), time.Now())
	s.mu.Lock()
	s.redisErr = err
	s.mu.Unlock()
	s.o.Log.Error().Str("stage", stage).Str("error", s.o.Scrub(err.Error())).
		Msg("cycle failed; retrying with backoff")
	return false
}

// runSweep runs the cycle's sweep, records it in the metrics and logs its new
// problems. It returns the run's result and the cycle's log line so far,
// or interrupted when ctx ended during the sweep.
func (s *Service) runSweep(ctx context.Context, sc *inspect.Scanner, start time.Time) (result string, ev *zerolog.Event, interrupted bool) {
	m := s.o.Metrics
	res, err := sweep.New(sc).Run(ctx, s.o.Sweep)
	result = metrics.ResultOK
	var held *sweep.LockHeldError
	switch {
	case ctx.Err() != nil:
		// Interrupted: the sweep stopped at a batch; nothing to count.
		s.o.Log.Info().Int64("removed", res.Removed).Msg("stopping: the sweep stopped at the end of a batch")
		return "", nil, true
	case errors.As(err, &held):
		result = metrics.ResultLockHeld
	case err != nil:
		result = metrics.ResultError
	}
	m.ObserveRun("sweep", result, time.Since(start), time.Now())
	if counts, rerr := sweep.RemovedTotals(ctx, s.o.Client, s.o.Layout); rerr == nil {
		m.SetRemoved(counts)
	}
	ev = s.o.Log.Info()
	if result == metrics.ResultError {
		ev = s.o.Log.Error().Str("error", s.o.Scrub(err.Error()))
	}
	if result != metrics.ResultLockHeld {
		m.SetScanned("sweep", res.Scanned)
		ev = ev.Int64("scanned", res.Scanned).Int64("expired", res.Expired).Int64("removed", res.Removed).
			Int64("already_gone", res.AlreadyGone).Int64("changed", res.Changed)
		if res.Stopped != "" {
			ev = ev.Str("stopped", res.Stopped)
		}
	}
	s.warnOnce(res.Problems)
	return result, ev, false
}

// warnOnce logs each problem the first time a cycle finds it.
func (s *Service) warnOnce(problems []inspect.Problem) {
	for _, p := range problems {
		k := [2]string{p.Key, p.Kind}
		if s.warned[k] {
			continue
		}
		if len(s.warned) < maxWarned {
			s.warned[k] = true
		}
		s.o.Log.Warn().Str("key", p.Key).Str("kind", p.Kind).Msg(p.Detail + " (logged once)")
	}
}

// countJobs sets the job gauges: what the sweep left (live jobs, jobs
// within the grace, jobs it may not remove), read by the same scanner. It
// adds to the cycle's log line ev, and reports whether ctx ended.
func (s *Service) countJobs(ctx context.Context, sc *inspect.Scanner, ev *zerolog.Event) (interrupted bool) {
	m := s.o.Metrics
	istart := time.Now()
	sum, ierr := sc.Inspect(ctx, inspect.Options{Delayed: s.o.Sweep.Delayed})
	switch {
	case ctx.Err() != nil:
		return true
	case ierr != nil:
		m.ObserveRun("inspect", metrics.ResultError, time.Since(istart), time.Now())
		s.o.Log.Warn().Str("error", s.o.Scrub(ierr.Error())).Msg("could not count the jobs after the sweep")
	default:
		m.ObserveSummary(sum)
		m.SetScanned("inspect", sum.Totals.Jobs)
		m.ObserveRun("inspect", metrics.ResultOK, time.Since(istart), time.Now())
		ev.Int64("left_expired", sum.Totals.Expired)
	}
	return false
}

// audit runs the audit that is due, records it, and schedules the next one
// after a success. It adds to the cycle's log line ev, and reports whether
// ctx ended.
func (s *Service) audit(ctx context.Context, sc *inspect.Scanner, nextAudit *time.Time, ev *zerolog.Event) (interrupted bool) {
	astart := time.Now()
	rep, aerr := s.o.Audit(ctx, sc)
	if ctx.Err() != nil {
		return true
	}
	ares := metrics.ResultOK
	if aerr != nil {
		ares = metrics.ResultError
		s.o.Log.Error().Str("error", s.o.Scrub(aerr.Error())).Msg("audit failed")
	} else {
		*nextAudit = astart.Add(s.o.AuditInterval)
	}
	if rep != nil {
		s.o.Metrics.ObserveAudit(rep)
		ev.Int64("idempotency_keys_without_ttl", rep.NoTTL()).Int64("idempotency_keys_stuck", rep.Stuck())
	}
	s.o.Metrics.ObserveRun("audit", ares, time.Since(astart), time.Now())
	return false
}

// maxWarned bounds the problems remembered as logged.
const maxWarned = 10000

// evictedKeys reads evicted_keys from INFO stats (false when INFO is not
// allowed).
func evictedKeys(ctx context.Context, rdb redis.UniversalClient) (int64, bool) {
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "evicted_keys:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
