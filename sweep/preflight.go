package sweep

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/preflight"
)

// Need is one command a sweep needs, on one key ("" for commands without a
// key, such as "scan" or "script|load").
type Need preflight.Need

// CheckPermissions asks Redis, before a sweep writes anything, whether the
// connected user may run every command in needs (see preflight.Check): a
// *preflight.PermissionError names those it may not.
func CheckPermissions(ctx context.Context, rdb redis.Scripter, needs []Need) error {
	asked := make([]preflight.Need, len(needs))
	for i, n := range needs {
		asked[i] = preflight.Need(n)
	}
	return preflight.Check(ctx, rdb, asked)
}

// sweepNeeds lists every command a sweep with these options runs, each on
// a key of the family it runs on.
func (r *run) sweepNeeds() []Need {
	l := r.s.layout
	queue, exp := l.Queue("resque-expire-probe"), l.Expiration("resque-expire-probe")
	needs := []Need{
		{"scan", ""}, {"sscan", l.Queues()}, {"type", queue}, {"llen", queue}, {"lindex", queue}, {"lrange", queue},
		{"lset", queue}, {"lrem", queue}, {"lpos", queue}, {"ltrim", queue}, {"mget", exp}, {"exists", exp}, {"pttl", exp}, {"del", exp},
		{"set", l.Lock()}, {"get", l.Lock()}, {"pexpire", l.Lock()}, {"del", l.Lock()},
		{"evalsha", ""}, {"script|load", ""},
		{"hget", l.Requests("probe")}, {"hset", l.Requests("probe")}, {"pexpire", l.Requests("probe")}, {"del", l.Requests("probe")},
		{"type", l.Stats()}, {"hincrby", l.Stats()},
	}
	if r.opts.Delayed {
		bucket, ts := l.Delayed(0), l.Timestamps("probe")
		needs = append(needs, Need{"zrange", l.DelayedSchedule()}, Need{"zrem", l.DelayedSchedule()},
			Need{"llen", bucket}, Need{"lrange", bucket}, Need{"lset", bucket}, Need{"lrem", bucket},
			Need{"exists", bucket}, Need{"type", ts}, Need{"srem", ts})
	}
	if r.opts.ToFailed {
		needs = append(needs, Need{"type", l.Failed()}, Need{"rpush", l.Failed()}, Need{"ltrim", l.Failed()})
	}
	if r.opts.Archive != nil {
		j := l.Journal()
		needs = append(needs, Need{"type", j}, Need{"rpush", j}, Need{"ltrim", j}, Need{"llen", j}, Need{"lrange", j})
	}
	needs = append(needs, r.failedNeeds()...)
	if r.opts.Orphans {
		needs = append(needs, Need{"get", exp}, Need{"pttl", exp}, Need{"pexpire", exp})
	}
	return needs
}
