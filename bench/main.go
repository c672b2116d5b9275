// Command bench is `make bench`: it measures resque-expire against the least
// work any sweep must do (the floor) and against the naive ways, on data sets
// of the project's sample generator, on a throwaway loopback redis-server.
// It prints one table; docs/performance.md records a run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/sample"
)

var layout = resque.MustLayout("resque", "")

type config struct {
	bin        string
	sizes      []int
	reps       int
	refLimit   time.Duration
	sidekiqMax int
	naiveMax   int
	extremes   bool
	large      []largeCase
	layouts    []string
	detail     bool
	reads      bool
}

// largeCase is a data set of large payloads: jobs of size bytes each.
type largeCase struct{ size, jobs int }

func main() {
	var cfg config
	sizes := flag.String("sizes", envOr("BENCH_SIZES", "10000,100000,1000000"), "comma-separated data set sizes; \"none\" for only the large-payload sets (BENCH_SIZES)")
	flag.StringVar(&cfg.bin, "bin", "bin/resque-expire", "the resque-expire binary")
	flag.IntVar(&cfg.reps, "reps", atoiOr(os.Getenv("BENCH_REPS"), 3), "repetitions per measurement; medians are reported (BENCH_REPS)")
	flag.DurationVar(&cfg.refLimit, "ref-limit", durOr(os.Getenv("BENCH_REF_LIMIT"), 120*time.Second), "time limit of each naive reference run (BENCH_REF_LIMIT)")
	flag.IntVar(&cfg.sidekiqMax, "sidekiq-max", 100000, "largest size the Sidekiq-API way is run at")
	flag.IntVar(&cfg.naiveMax, "naive-max", 100000, "largest size the seed's naive way is run at")
	flag.BoolVar(&cfg.extremes, "extremes", true, "also sweep data sets where nothing and where everything is expired")
	layouts := flag.String("layouts", envOr("BENCH_LAYOUTS", "head,tail,twoclass"), "expiry layouts swept besides random, comma-separated: head, tail, twoclass; \"none\" for none (BENCH_LAYOUTS)")
	flag.BoolVar(&cfg.reads, "reads", true, "also measure inspect and sweep --dry-run (false: the floor and the sweeps only)")
	flag.BoolVar(&cfg.detail, "detail", false, "after each run of the tool, print to stderr what SLOWLOG recorded (≥ 200µs), summed by command and script")
	large := flag.String("large", envOr("BENCH_LARGE", "10240:4000,102400:1000"), "large-payload data sets, bytes:jobs, comma-separated; \"none\" for none (BENCH_LARGE)")
	flag.Parse()
	if *layouts != "none" {
		for _, l := range strings.Split(*layouts, ",") {
			if l = strings.TrimSpace(l); l != "head" && l != "tail" && l != "twoclass" {
				fmt.Fprintf(os.Stderr, "bench: unknown layout %q (want head, tail, twoclass)\n", l)
				os.Exit(2)
			}
			cfg.layouts = append(cfg.layouts, strings.TrimSpace(l))
		}
	}
	if *large != "none" {
		for _, s := range strings.Split(*large, ",") {
			var lc largeCase
			if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d:%d", &lc.size, &lc.jobs); err != nil || lc.size <= 0 || lc.jobs <= 0 {
				fmt.Fprintf(os.Stderr, "bench: bad large data set %q (want bytes:jobs)\n", s)
				os.Exit(2)
			}
			cfg.large = append(cfg.large, lc)
		}
	}
	for _, s := range strings.Split(*sizes, ",") {
		if *sizes == "none" {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: bad size %q\n", s)
			os.Exit(2)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	knownScripts = scriptNames(".")
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// row is one line of the result table.
type row struct {
	size      int
	name      string
	secs      []float64
	jobs      int
	worstCmd  time.Duration
	worstWhat string
	rssKB     int64
	// redisMem: the most Redis's used_memory rose above its level at the
	// start of a run (bytes, the largest over the runs).
	redisMem int64
	// redisCPU: Redis's CPU time (user + sys) during each run, seconds.
	redisCPU []float64
	// toolCPU: the tool's CPU time (user + sys) in each run, seconds.
	toolCPU []float64
	// steal: the CPU time the host took from this machine's cores during
	// each run (/proc/stat), seconds: the noise the wall times carry.
	steal []float64
	// paired: a floor pass on the same data just before each run (see
	// pairFloor), seconds; the ratio to the floor is then the median of
	// the runs' own ratios, each against a floor measured beside it.
	paired []float64
	// pairedWorst is the worst Redis command of those floor passes: the
	// noise reference of worstCmd.
	pairedWorst time.Duration
	// over counts the commands of the runs that took longTime or more
	// (SLOWLOG), pairedOver those of the floor passes beside them.
	over, pairedOver int
	check            string
	// isFloor marks the floor's own row, what the rows after it of its
	// size without a paired floor are compared with.
	isFloor bool
}

func (r row) median() float64 { return median(r.secs) }

// ratio is the row's wall time against the floor's: the median of its
// runs' ratios to their paired floor passes when it has them, else its
// median against floor (0 when there is neither).
func (r row) ratio(floor float64) float64 {
	if len(r.paired) == len(r.secs) && len(r.secs) > 0 {
		v := make([]float64, len(r.secs))
		for i := range r.secs {
			v[i] = r.secs[i] / r.paired[i]
		}
		return median(v)
	}
	if floor > 0 {
		return r.median() / floor
	}
	return 0
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func run(cfg config) error {
	ctx := context.Background()
	srv, err := redisserver.Start(ctx, redisserver.Options{ExtraArgs: []string{"--maxmemory", "0"}})
	if err != nil {
		return err
	}
	defer srv.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: 5 * time.Minute, PoolSize: 4})
	defer rdb.Close()
	version, _ := srv.Version(ctx)
	fmt.Fprintf(os.Stderr, "bench: redis-server %s at %s, %d CPUs, %s\n", version, srv.Addr(), runtime.NumCPU(), runtime.Version())

	b := &bench{ctx: ctx, cfg: cfg, srv: srv, rdb: rdb}
	var rows []row
	for _, n := range cfg.sizes {
		sr, err := b.sizeRows(n)
		if err != nil {
			return err
		}
		rows = append(rows, sr...)
	}
	for _, lc := range cfg.large {
		lr, err := largeRows(ctx, cfg, srv, rdb, lc)
		if err != nil {
			return err
		}
		rows = append(rows, lr...)
	}
	printTable(rows, cfg)
	return nil
}

// bench is one run's Redis and settings.
type bench struct {
	ctx context.Context
	cfg config
	srv *redisserver.Server
	rdb *redis.Client
}

// fill empties Redis and writes the data set s as of now: its deadlines
// are set relative to s.Now, which fill sets first. (A spec kept from the
// start of a slow bench once made live jobs due by the time a late layout
// was swept: their deadlines start 10 minutes after s.Now.)
func (b *bench) fill(s *sample.Spec) error {
	if err := b.rdb.FlushAll(b.ctx).Err(); err != nil {
		return err
	}
	s.Now = time.Now()
	_, err := sample.Fill(b.ctx, b.rdb, layout, *s)
	return err
}

// say reports progress on the data set of n jobs.
func (b *bench) say(n int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %d jobs: "+format+"\n", append([]any{n}, args...)...)
}

// sizeRows measures every way on the sample data set of n jobs: the floor,
// the read-only commands, sweeps of every layout, and the naive references.
func (b *bench) sizeRows(n int) ([]row, error) {
	spec := sample.Bench(n, time.Now())
	b.say(n, "filling")
	if err := b.fill(&spec); err != nil {
		return nil, err
	}
	floor, err := b.floorRow(n, spec.Queues, "floor (LRANGE pages + MGET deadlines)", floorPass)
	if err != nil {
		return nil, err
	}
	floor.isFloor = true
	// How much of the floor its decoder is.
	jsonFloor, err := b.floorRow(n, spec.Queues, "floor decoding into a map with encoding/json", jsonFloorPass)
	if err != nil {
		return nil, err
	}
	rows := []row{floor, jsonFloor}
	reads := []struct {
		name string
		args []string
	}{
		{"resque-expire inspect", []string{"inspect"}},
		{"resque-expire sweep --dry-run", []string{"sweep", "--dry-run"}},
	}
	if !b.cfg.reads {
		reads = nil
	}
	for _, tc := range reads {
		r := row{size: n, name: tc.name, jobs: n, check: "read-only"}
		for i := 0; i < b.cfg.reps; i++ {
			if err := b.pairFloor(n, spec.Queues, &r); err != nil {
				return nil, err
			}
			if err := measureBinary(b.ctx, b.cfg, b.srv, b.rdb, tc.args, &r); err != nil {
				return nil, err
			}
		}
		b.say(n, "%s %.2fs", tc.name, r.median())
		rows = append(rows, r)
	}
	sweeps, err := b.sweepRows(n, spec)
	if err != nil {
		return nil, err
	}
	refs, err := b.refRows(n, spec)
	if err != nil {
		return nil, err
	}
	return append(append(rows, sweeps...), refs...), nil
}

// floorFunc is a floor pass (floorPass, jsonFloorPass): it reads every
// job of queues and returns how many it read.
type floorFunc func(context.Context, *redis.Client, resque.Layout, []string, int) (int64, error)

// floorRow measures pass, a floor, on the data set filled in.
func (b *bench) floorRow(n int, queues []string, name string, pass floorFunc) (row, error) {
	floor := row{size: n, name: name, jobs: n, check: "read-only"}
	for i := 0; i < b.cfg.reps; i++ {
		p, err := b.timeFloor(n, queues, pass)
		if err != nil {
			return floor, err
		}
		floor.secs = append(floor.secs, p.secs)
		floor.over += p.over
		if p.worst > floor.worstCmd || floor.worstWhat == "" {
			floor.worstCmd, floor.worstWhat = p.worst, p.what
		}
	}
	b.say(n, "%s %.2fs", name, floor.median())
	return floor, nil
}

// floorTiming is one floor pass: its wall time, Redis's worst command
// during it and how many commands took longTime or more.
type floorTiming struct {
	secs  float64
	worst time.Duration
	what  string
	over  int
}

// timeFloor times one pass over the n jobs of queues.
func (b *bench) timeFloor(n int, queues []string, pass floorFunc) (floorTiming, error) {
	resetStats(b.ctx, b.rdb)
	t0 := time.Now()
	got, err := pass(b.ctx, b.rdb, layout, queues, 1000)
	ft := floorTiming{secs: time.Since(t0).Seconds()}
	if err != nil {
		return ft, err
	}
	if got != int64(n) {
		return ft, fmt.Errorf("a floor pass read %d jobs, want %d", got, n)
	}
	logs, err := slowLog(b.ctx, b.rdb)
	ft.worst, ft.what = worstOf(logs, err)
	ft.over = countOver(logs, longTime)
	return ft, nil
}

// pairFloor measures a floor pass on the data as it is, just before a run
// of r: the host's noise changes over minutes, so each run is compared with
// a floor measured beside it rather than with the floor row's, measured
// minutes before.
func (b *bench) pairFloor(n int, queues []string, r *row) error {
	p, err := b.timeFloor(n, queues, floorPass)
	if err != nil {
		return err
	}
	r.paired = append(r.paired, p.secs)
	r.pairedWorst = max(r.pairedWorst, p.worst)
	r.pairedOver += p.over
	return nil
}

// sweepRows measures sweeps of spec with the random layout, each other
// layout asked for, and (with extremes) nothing and everything expired.
func (b *bench) sweepRows(n int, spec sample.Spec) ([]row, error) {
	type variant struct {
		name string
		spec sample.Spec
	}
	variants := []variant{{"resque-expire sweep", spec}}
	for _, l := range b.cfg.layouts {
		ls := spec
		ls.Layout = l
		variants = append(variants, variant{"sweep, " + l + " layout", ls})
	}
	if b.cfg.extremes {
		none, all := spec, spec
		none.Expired, none.Missing = 0, 0.1
		all.Expired, all.Missing = 1, 0
		variants = append(variants, variant{"sweep, nothing expired", none}, variant{"sweep, everything expired", all})
	}
	var rows []row
	for _, v := range variants {
		r, err := b.sweepRow(n, v.name, v.spec)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// sweepRow measures `sweep --yes` on freshly filled data sets s and checks
// that each sweep removed exactly the expired jobs.
func (b *bench) sweepRow(n int, name string, s sample.Spec) (row, error) {
	r := row{size: n, name: name, jobs: n}
	for i := 0; i < b.cfg.reps; i++ {
		if err := b.fill(&s); err != nil {
			return r, err
		}
		if err := b.pairFloor(n, s.Queues, &r); err != nil {
			return r, err
		}
		if err := measureBinary(b.ctx, b.cfg, b.srv, b.rdb, []string{"sweep", "--yes"}, &r); err != nil {
			return r, err
		}
		if err := checkSwept(b.ctx, b.rdb, s); err != nil {
			r.check = "FAILED: " + err.Error()
			return r, err
		}
		r.check = "exact"
	}
	b.say(n, "%s %.2fs", name, r.median())
	return r, nil
}

// refRows runs the naive reference ways, up to their size limits, once
// each within cfg.refLimit.
func (b *bench) refRows(n int, spec sample.Spec) ([]row, error) {
	expired := 0
	sample.Generate(spec, func(j sample.Job) {
		if j.State == "expired" {
			expired++
		}
	})
	refs := []struct {
		name string
		max  int
		fn   func(context.Context, *redis.Client, resque.Layout, []string, time.Duration) (progress, error)
	}{
		{"seed's naive way (SCAN keys, LRANGE 0 -1, LREM)", b.cfg.naiveMax, naiveSeed},
		{"Sidekiq-API way (pages of 50, LREM each)", b.cfg.sidekiqMax, sidekiqWay},
	}
	var rows []row
	for _, ref := range refs {
		if n > ref.max {
			continue
		}
		if err := b.fill(&spec); err != nil {
			return nil, err
		}
		b.say(n, "%s (limit %s)", ref.name, b.cfg.refLimit)
		resetStats(b.ctx, b.rdb)
		t0 := time.Now()
		pr, err := ref.fn(b.ctx, b.rdb, layout, spec.Queues, b.cfg.refLimit)
		if err != nil {
			return nil, err
		}
		r := row{size: n, name: ref.name, jobs: n, secs: []float64{time.Since(t0).Seconds()}}
		r.worstCmd, r.worstWhat = worstCommand(b.ctx, b.rdb)
		if pr.Finished {
			r.check = "finished"
		} else {
			r.check = fmt.Sprintf("> %s: removed %d of %d expired", b.cfg.refLimit, pr.Removed, expired)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// largeRows measures the read-only floor and a sweep on payloads of
// lc.size bytes, half of them expired: whether every command, the removal
// scripts above all, stays short when payloads are large.
func largeRows(ctx context.Context, cfg config, srv *redisserver.Server, rdb *redis.Client, lc largeCase) ([]row, error) {
	spec := sample.Bench(lc.jobs, time.Now())
	spec.Missing, spec.ActiveJob, spec.MinPayload, spec.MaxPayload = 0, 0, lc.size, lc.size
	label := fmt.Sprintf("%d KB payloads", lc.size>>10)
	fill := func() error {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			return err
		}
		_, err := sample.Fill(ctx, rdb, layout, spec)
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: %d jobs of %s\n", lc.jobs, label)
	if err := fill(); err != nil {
		return nil, err
	}
	insp := row{size: lc.jobs, name: "inspect, " + label, jobs: lc.jobs, check: "read-only"}
	sw := row{size: lc.jobs, name: "sweep, " + label + ", 50% expired", jobs: lc.jobs}
	for i := 0; i < cfg.reps; i++ {
		if err := measureBinary(ctx, cfg, srv, rdb, []string{"inspect"}, &insp); err != nil {
			return nil, err
		}
		if err := fill(); err != nil {
			return nil, err
		}
		if err := measureBinary(ctx, cfg, srv, rdb, []string{"sweep", "--yes"}, &sw); err != nil {
			return nil, err
		}
		if err := checkSwept(ctx, rdb, spec); err != nil {
			sw.check = "FAILED: " + err.Error()
			return []row{insp, sw}, err
		}
		sw.check = "exact"
		if err := fill(); err != nil {
			return nil, err
		}
	}
	return []row{insp, sw}, nil
}

// measureBinary runs the tool once and records wall time, Redis's worst
// command during the run and the tool's peak RSS.
func measureBinary(ctx context.Context, cfg config, srv *redisserver.Server, rdb *redis.Client, args []string, r *row) error {
	resetStats(ctx, rdb)
	cmd := exec.CommandContext(ctx, cfg.bin, append([]string{"--redis", srv.URL(), "--no-progress"}, args...)...)
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	cmd.Stdout, cmd.Stderr = devnull, devnull // logs of every removed job included, as a cron run writes them
	cmd.Env = append(os.Environ(), "REDIS_URL=")
	cpu0 := redisCPU(ctx, rdb)
	steal0 := hostSteal()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s %s: %w", cfg.bin, strings.Join(args, " "), err)
	}
	// Peak RSS from the kernel's high-water mark, polled while the tool
	// runs. (wait4's ru_maxrss would do, but Linux carries the parent's
	// high-water mark over fork and exec into it, and this process holds
	// the expected data set.)
	peak := make(chan int64)
	memPeak := make(chan int64)
	stop := make(chan struct{})
	go func() { peak <- pollHWM(cmd.Process.Pid, stop) }()
	go func() { memPeak <- pollRedisMemory(ctx, srv, stop) }()
	err := cmd.Wait()
	close(stop)
	hwm := <-peak
	if m := <-memPeak; m > r.redisMem {
		r.redisMem = m
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", cfg.bin, strings.Join(args, " "), err)
	}
	r.secs = append(r.secs, time.Since(t0).Seconds())
	if steal0 >= 0 {
		r.steal = append(r.steal, hostSteal()-steal0)
	}
	r.toolCPU = append(r.toolCPU, (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds())
	if cpu0 >= 0 {
		r.redisCPU = append(r.redisCPU, redisCPU(ctx, rdb)-cpu0)
	}
	if hwm > r.rssKB {
		r.rssKB = hwm
	}
	logs, err := slowLog(ctx, rdb)
	if cfg.detail && err == nil {
		printDetail(logs, args)
	}
	r.over += countOver(logs, longTime)
	w, what := worstOf(logs, err)
	if w > r.worstCmd {
		r.worstCmd, r.worstWhat = w, what
	}
	return nil
}

// pollHWM reads VmHWM (peak resident set, kB) of pid every 20ms until stop,
// and returns the last value read: the mark only grows.
func pollHWM(pid int, stop <-chan struct{}) int64 {
	var last int64
	path := fmt.Sprintf("/proc/%d/status", pid)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64); err == nil && kb > last {
						last = kb
					}
				}
			}
		}
		select {
		case <-stop:
			return last
		case <-t.C:
		}
	}
}

// pollRedisMemory reads Redis's used_memory every 20ms until stop, on a
// connection of its own, and returns the most it rose above the first read.
func pollRedisMemory(ctx context.Context, srv *redisserver.Server, stop <-chan struct{}) int64 {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	used := func() int64 {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return -1
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		return -1
	}
	base, most := used(), int64(0)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if u := used(); base >= 0 && u-base > most {
			most = u - base
		}
		select {
		case <-stop:
			return most
		case <-t.C:
		}
	}
}

// slowThreshold: commands slower than this are logged by SLOWLOG during a run.
const slowThreshold = 200 * time.Microsecond

func resetStats(ctx context.Context, rdb *redis.Client) {
	rdb.ConfigSet(ctx, "slowlog-log-slower-than", strconv.FormatInt(slowThreshold.Microseconds(), 10))
	rdb.ConfigSet(ctx, "slowlog-max-len", "100000")
	rdb.ConfigSet(ctx, "latency-monitor-threshold", "1")
	rdb.Do(ctx, "SLOWLOG", "RESET")
	rdb.Do(ctx, "LATENCY", "RESET")
}

// slowLog returns what SLOWLOG recorded since the reset, without the
// bench's own SLOWLOG calls.
func slowLog(ctx context.Context, rdb *redis.Client) ([]redis.SlowLog, error) {
	logs, err := rdb.SlowLogGet(ctx, 100000).Result()
	if err != nil {
		return nil, err
	}
	out := logs[:0]
	for _, l := range logs {
		if len(l.Args) == 0 || !strings.EqualFold(l.Args[0], "slowlog") {
			out = append(out, l)
		}
	}
	return out, nil
}

// longTime is the bound on one Redis command: the table counts the
// commands that took at least this long.
const longTime = 5 * time.Millisecond

// countOver counts the commands of logs that took at least d, those a
// script called excepted: SLOWLOG lists them too, and their time is inside
// their script's.
func countOver(logs []redis.SlowLog, d time.Duration) int {
	n := 0
	for _, l := range logs {
		if l.Duration >= d && !calledByScript(l) {
			n++
		}
	}
	return n
}

// calledByScript says whether a SLOWLOG entry is a command a script called:
// Redis logs those with the address "?:0" (its Lua client's).
func calledByScript(l redis.SlowLog) bool {
	return l.ClientAddr == "?:0"
}

// worstCommand returns the slowest command SLOWLOG recorded since the reset.
func worstCommand(ctx context.Context, rdb *redis.Client) (time.Duration, string) {
	return worstOf(slowLog(ctx, rdb))
}

// worstOf returns the slowest of logs, named ("?" when SLOWLOG could not be
// read).
func worstOf(logs []redis.SlowLog, err error) (time.Duration, string) {
	if err != nil {
		return 0, "?"
	}
	var worst time.Duration
	what := fmt.Sprintf("< %s", slowThreshold)
	for _, l := range logs {
		if l.Duration > worst {
			worst, what = l.Duration, commandName(l.Args, knownScripts)
		}
	}
	return worst, what
}

func printTable(rows []row, cfg config) {
	fmt.Printf("| jobs | run | wall s (median of %d) | wall s per run | floor beside each run | jobs/s | × floor | worst Redis command (floor beside it) | commands ≥ 5 ms (floor beside) | Redis CPU s | tool CPU s | host steal s | tool peak RSS | Redis memory peak rise | result |\n", cfg.reps)
	fmt.Println("|---:|---|---:|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
	var floor float64
	floorSize := 0
	for _, r := range rows {
		m := r.median()
		if r.isFloor {
			floor, floorSize = m, r.size
		}
		ratio := "-"
		if f := r.ratio(floor); f > 0 && (len(r.paired) > 0 || r.size == floorSize) {
			ratio = fmt.Sprintf("%.2f", f)
		}
		secs := fmt.Sprintf("%.2f", m)
		if strings.HasPrefix(r.check, ">") {
			secs = "> " + secs
		}
		paired := "-"
		if len(r.paired) > 0 {
			paired = joinSecs(r.paired)
		}
		fmt.Printf("| %d | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.size, r.name, secs, joinSecs(r.secs), paired, float64(r.jobs)/m,
			ratio, r.worstCell(), r.overCell(), medianCell(r.redisCPU), medianCell(r.toolCPU), medianCell(r.steal), sizeCell(r.rssKB<<10), sizeCell(r.redisMem), r.check)
	}
}

// worstCell is the row's worst Redis command, with that of the floor
// passes beside its runs when it has them.
func (r row) worstCell() string {
	if r.worstCmd == 0 {
		return r.worstWhat
	}
	s := fmt.Sprintf("%.2f ms %s", float64(r.worstCmd.Microseconds())/1000, r.worstWhat)
	if len(r.paired) > 0 {
		s += fmt.Sprintf(" (%.2f ms)", float64(r.pairedWorst.Microseconds())/1000)
	}
	return s
}

// overCell counts the row's commands of longTime or more over its runs,
// with those of the floor passes beside them.
func (r row) overCell() string {
	if len(r.secs) == 0 || strings.HasPrefix(r.check, ">") || r.check == "finished" {
		return "-"
	}
	if len(r.paired) > 0 {
		return fmt.Sprintf("%d (%d)", r.over, r.pairedOver)
	}
	return strconv.Itoa(r.over)
}

func joinSecs(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = fmt.Sprintf("%.2f", f)
	}
	return strings.Join(s, " / ")
}

func medianCell(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", median(v))
}

func sizeCell(bytes int64) string {
	if bytes <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MB", float64(bytes)/(1<<20))
}

// hostSteal returns the CPU time the hypervisor has taken from this
// machine's cores since boot (the steal column of /proc/stat, seconds), or
// -1 when it cannot be read.
func hostSteal() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	ticks, err := strconv.ParseFloat(f[8], 64)
	if err != nil {
		return -1
	}
	return ticks / 100 // USER_HZ
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n
	}
	return def
}

func durOr(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}
