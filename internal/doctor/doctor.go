// Package doctor is the read-only pre-flight of a Redis before resque-expire
// sweeps it: what server and mode it is, whether its eviction policy or
// lack of persistence can lose deadline keys, whether the clocks agree,
// whether the connected user may run what a sweep runs, and whether the
// namespace holds Resque data at all. It reads INFO rather than CONFIG
// (managed services forbid CONFIG) and says what it could not see. It
// writes no data (loading the scripts into the script cache is the one
// thing it asks of Redis besides reads) and never prints.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/backfill"
	"github.com/resque-expire/resque-expire/enqueue"
	"github.com/resque-expire/resque-expire/internal/preflight"
	"github.com/resque-expire/resque-expire/internal/redisconn"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/sweep"
)

// Check statuses.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "fail"
)

// Check is one finding.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// Report is every check, in order.
type Report struct {
	Checks []Check `json:"checks"`
	// Failed is true when a check failed.
	Failed bool `json:"failed"`
}

func (r *Report) add(name, status, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
	if status == Fail {
		r.Failed = true
	}
}

// Options say what to check.
type Options struct {
	Layout resque.Layout
	// Sentinel says the connection went through Sentinel.
	Sentinel bool
	// Host is the host's clock (time.Now when nil).
	Host func() time.Time
	// MaxSkew is the clock skew past which the clock check warns (1s when 0).
	MaxSkew time.Duration
	// Sample bounds the keys the namespace check reads (SCAN COUNT, and
	// the keys examined): default 1000.
	Sample int64
}

// Run runs every check against rdb.
func Run(ctx context.Context, rdb redis.UniversalClient, o Options) *Report {
	if o.Host == nil {
		o.Host = time.Now
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = time.Second
	}
	if o.Sample <= 0 {
		o.Sample = 1000
	}
	r := &Report{Checks: []Check{}}
	info, infoErr := readInfo(ctx, rdb)
	server(r, info, infoErr)
	if !mode(r, info, infoErr, o) {
		return r
	}
	memory(ctx, r, rdb, info, infoErr)
	persistence(ctx, r, rdb, info, infoErr)
	clock(ctx, r, rdb, o)
	permissions(ctx, r, rdb, o.Layout, info)
	scripts(ctx, r, rdb, info)
	namespace(ctx, r, rdb, o)
	return r
}

// info is INFO's fields, by name.
type info map[string]string

func readInfo(ctx context.Context, rdb redis.UniversalClient) (info, error) {
	text, err := rdb.Info(ctx, "server", "replication", "memory", "persistence", "stats").Result()
	if err != nil {
		// Redis before 7 takes one section at a time.
		if text, err = rdb.Info(ctx, "all").Result(); err != nil {
			return nil, err
		}
	}
	out := info{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out, nil
}

func cannotSee(err error) string {
	return "could not read INFO (" + err.Error() + "); grant +info to see this"
}

func server(r *Report, in info, err error) {
	if err != nil {
		r.add("server", Warn, "%s", cannotSee(err))
		return
	}
	version := in["redis_version"]
	flavour := "Redis"
	switch {
	case in["valkey_version"] != "" || in["server_name"] == "valkey":
		flavour, version = "Valkey", orDefault(in["valkey_version"], version)
	case in["dragonfly_version"] != "":
		flavour, version = "Dragonfly", in["dragonfly_version"]
	case in["server_name"] != "" && in["server_name"] != "redis":
		flavour = in["server_name"]
	}
	major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	switch {
	case flavour == "Dragonfly":
		r.add("server", Warn, "Dragonfly %s: not tested; Dragonfly refuses scripts that touch keys they do not declare unless configured to allow it", version)
	case flavour != "Redis" && flavour != "Valkey":
		r.add("server", Warn, "%s %s (redis_version %s): not tested with resque-expire", flavour, version, in["redis_version"])
	case flavour == "Redis" && major > 0 && major < 7:
		r.add("server", Warn, "%s %s: works, but before 7 a run cannot ask Redis whether its user may run every command before it writes", flavour, version)
	default:
		r.add("server", OK, "%s %s", flavour, version)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// mode reports the mode; it returns false when the rest is pointless
// (Redis Cluster, a Sentinel itself).
func mode(r *Report, in info, err error, o Options) bool {
	if err != nil {
		r.add("mode", Warn, "%s", cannotSee(err))
		return true
	}
	switch in["redis_mode"] {
	case "cluster":
		r.add("mode", Fail, "Redis Cluster: refused. Resque itself does not run on Cluster (its multi-key commands and resque-scheduler's transactions cross hash slots), and resque-expire's scripts touch a queue, its deadline keys and the failed list at once; point it at the standalone or Sentinel-managed Redis Resque uses")
		return false
	case "sentinel":
		r.add("mode", Fail, "this is a Sentinel, not a data server: give --sentinel-master and --sentinel-addrs so resque-expire asks it for the master")
		return false
	}
	via := ""
	if o.Sentinel {
		via = ", found through Sentinel"
	}
	if in["role"] == "slave" {
		r.add("mode", Warn, "replica of %s:%s%s: inspect, list, check, audit and dry runs work; sweep and every write need the master",
			in["master_host"], in["master_port"], via)
		return true
	}
	r.add("mode", OK, "standalone master%s (%s connected replicas)", via, orDefault(in["connected_slaves"], "0"))
	return true
}

func memory(ctx context.Context, r *Report, rdb redis.UniversalClient, in info, err error) {
	policy, maxmem := "", ""
	if err == nil {
		policy, maxmem = in["maxmemory_policy"], in["maxmemory"]
	}
	if policy == "" {
		// INFO of old servers has no maxmemory_policy; try CONFIG.
		if kv, cerr := rdb.ConfigGet(ctx, "maxmemory-policy").Result(); cerr == nil {
			policy = kv["maxmemory-policy"]
		}
	}
	if policy == "" {
		r.add("maxmemory-policy", Warn, "could not see the eviction policy (neither INFO memory nor CONFIG GET answered it)")
		return
	}
	evicted := in["evicted_keys"]
	switch {
	case strings.HasPrefix(policy, "volatile-") || strings.HasPrefix(policy, "allkeys-"):
		limit := "maxmemory " + orDefault(maxmem, "?")
		if maxmem == "0" {
			limit = "no maxmemory set yet"
		}
		r.add("maxmemory-policy", Warn, "%s (%s): under memory pressure Redis evicts keys with TTLs (volatile-*) or any key (allkeys-*), which includes the deadline keys and the idempotency keys: jobs lose their deadline without a trace; use noeviction. evicted_keys: %s",
			policy, limit, orDefault(evicted, "unknown"))
	default:
		r.add("maxmemory-policy", OK, "%s (evicted_keys: %s)", policy, orDefault(evicted, "unknown"))
	}
}

func persistence(ctx context.Context, r *Report, rdb redis.UniversalClient, in info, err error) {
	if err != nil {
		r.add("persistence", Warn, "%s", cannotSee(err))
		return
	}
	aof := in["aof_enabled"] == "1"
	save := ""
	kv, cerr := rdb.ConfigGet(ctx, "save").Result()
	if cerr == nil {
		save = strings.TrimSpace(kv["save"])
	}
	switch {
	case aof && cerr == nil && save != "":
		r.add("persistence", OK, "AOF on, RDB snapshots %q", save)
	case aof:
		r.add("persistence", OK, "AOF on")
	case cerr == nil && save != "":
		r.add("persistence", OK, "RDB snapshots %q (AOF off: a restart loses the writes since the last snapshot)", save)
	case cerr == nil:
		r.add("persistence", Warn, "off (no AOF, no RDB snapshots): a restart loses every deadline key, and jobs come back without deadlines, if they come back")
	default:
		last := in["rdb_last_save_time"]
		r.add("persistence", Warn, "AOF off; could not see the RDB snapshot schedule (CONFIG GET refused: %s); rdb_last_save_time %s, rdb_changes_since_last_save %s",
			firstLine(cerr.Error()), orDefault(last, "?"), orDefault(in["rdb_changes_since_last_save"], "?"))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func clock(ctx context.Context, r *Report, rdb redis.UniversalClient, o Options) {
	skew, err := redisconn.ClockSkew(ctx, rdb, o.Host)
	switch {
	case err != nil:
		r.add("clock", Fail, "%v", err)
	case skew.Abs() > o.MaxSkew:
		r.add("clock", Warn, "this host's clock is %s %s Redis's; resque-expire judges jobs by Redis's clock, but producers that compute deadlines on this host set them off by as much",
			skew.Abs().Round(time.Millisecond), map[bool]string{true: "behind", false: "ahead of"}[skew > 0])
	default:
		r.add("clock", OK, "within %s of Redis's (%s)", o.MaxSkew, skew.Round(time.Microsecond))
	}
}

func permissions(ctx context.Context, r *Report, rdb redis.UniversalClient, l resque.Layout, in info) {
	// Everything any sweep may run: queues, delayed jobs, the failed list,
	// the archive journal, orphans.
	needs := sweep.Needs(l, sweep.Options{Delayed: true, ToFailed: true, Archive: &sweep.Archive{}, Orphans: true})
	err := sweep.CheckPermissions(ctx, rdb, needs)
	var pe *preflight.PermissionError
	switch {
	case errors.As(err, &pe):
		r.add("permissions", Fail, "%v", err)
	case err != nil:
		r.add("permissions", Fail, "%v", err)
	case in != nil && majorOf(in["redis_version"]) > 0 && majorOf(in["redis_version"]) < 7:
		r.add("permissions", Warn, "could not check: Redis %s cannot say whether a user may run a command (ACL checks in scripts need 7)", in["redis_version"])
	default:
		r.add("permissions", OK, "the user may run every command a sweep runs (%d checked, with --to-failed, --archive and --orphans)", len(needs))
	}
}

func majorOf(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	return n
}

func scripts(ctx context.Context, r *Report, rdb redis.UniversalClient, in info) {
	if err := loadScripts(ctx, rdb); err != nil {
		if in["role"] == "slave" && redis.IsReadOnlyError(err) {
			r.add("scripts", Warn, "not loadable on a replica: %v", err)
			return
		}
		r.add("scripts", Fail, "%v", err)
		return
	}
	r.add("scripts", OK, "every Lua script loads (SCRIPT LOAD)")
}

// loadScripts loads the scripts of every package that writes.
func loadScripts(ctx context.Context, rdb redis.Scripter) error {
	for _, load := range []func(context.Context, redis.Scripter) error{
		sweep.LoadScripts, backfill.LoadScripts, enqueue.LoadScripts, audit.LoadScripts,
	} {
		if err := load(ctx, rdb); err != nil {
			return err
		}
	}
	return nil
}

func namespace(ctx context.Context, r *Report, rdb redis.UniversalClient, o Options) {
	l := o.Layout
	queues, err := rdb.SMembers(ctx, l.Queues()).Result()
	if err != nil {
		r.add("namespace", Fail, "could not read %s: %v", l.Queues(), err)
		return
	}
	sort.Strings(queues)
	var jobs int64
	for i, q := range queues {
		if i == 100 {
			break
		}
		n, err := rdb.LLen(ctx, l.Queue(q)).Result()
		if err == nil {
			jobs += n
		}
	}
	delayed, _ := rdb.ZCard(ctx, l.DelayedSchedule()).Result()
	// A bounded sample of the keyspace for deadline keys.
	var deadlines, seen int64
	var cursor uint64
	for seen < o.Sample {
		keys, next, err := rdb.Scan(ctx, cursor, l.ExpirationPattern(), o.Sample).Result()
		if err != nil {
			break
		}
		deadlines += int64(len(keys))
		seen += o.Sample
		if cursor = next; cursor == 0 {
			break
		}
	}
	scope := "in a sample of the keyspace"
	if cursor == 0 {
		scope = "in the whole keyspace"
	}
	names := ""
	if len(queues) > 0 {
		names = " (" + strings.Join(queues[:min(len(queues), 5)], ", ")
		if len(queues) > 5 {
			names += ", …"
		}
		names += ")"
	}
	detail := fmt.Sprintf("namespace %q: %d queues%s, %d jobs in the first %d, %d delayed timestamps, %d deadline keys %s",
		l.Namespace(), len(queues), names, jobs, min(len(queues), 100), delayed, deadlines, scope)
	switch {
	case len(queues) == 0 && delayed == 0:
		r.add("namespace", Warn, "%s: nothing found; is --namespace right?", detail)
	case deadlines == 0 && jobs > 0:
		r.add("namespace", Warn, "%s: no deadline key seen; is --expiration-key right?", detail)
	default:
		r.add("namespace", OK, "%s", detail)
	}
}
