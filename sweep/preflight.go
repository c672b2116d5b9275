package sweep

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

//go:embed acl_probe.lua
var aclProbeSrc string

var aclProbeScript = redis.NewScript(aclProbeSrc)

// Need is one command a run needs, on one key ("" for commands without a
// key, such as "scan" or "script|load").
type Need struct {
	Command string
	Key     string
}

// PermissionError says which commands the connected user may not run.
type PermissionError struct {
	Denied []Need
}

func (e *PermissionError) Error() string {
	parts := make([]string, len(e.Denied))
	for i, d := range e.Denied {
		parts[i] = strings.ToUpper(strings.ReplaceAll(d.Command, "|", " "))
		if d.Key != "" {
			parts[i] += " on " + d.Key
		}
	}
	return "the Redis user may not run " + strings.Join(parts, ", ") + "; nothing was changed (see docs/security.md for the ACL a run needs)"
}

// CheckPermissions asks Redis, before a run writes anything, whether the
// connected user may run every command in needs. It returns a
// *PermissionError naming those it may not, nil when it may run them all
// or when Redis cannot tell (before Redis 7).
func CheckPermissions(ctx context.Context, rdb redis.Scripter, needs []Need) error {
	var keys []string
	index := map[string]int{}
	args := make([]any, 0, 2*len(needs))
	for _, n := range needs {
		if n.Key != "" && index[n.Key] == 0 {
			keys = append(keys, n.Key)
			index[n.Key] = len(keys)
		}
		args = append(args, n.Command, index[n.Key])
	}
	denied, err := aclProbeScript.Eval(ctx, rdb, keys, args...).Int64Slice()
	switch {
	case errors.Is(err, redis.Nil):
		return nil
	case err != nil && redis.HasErrorPrefix(err, "NOPERM") && strings.Contains(err.Error(), "'eval'"):
		return &PermissionError{Denied: []Need{{Command: "eval"}}}
	case err != nil && redis.HasErrorPrefix(err, "NOPERM"):
		return fmt.Errorf("the Redis user may not use the keys a run needs (%s); nothing was changed: %w", strings.Join(keys, ", "), err)
	case err != nil:
		return fmt.Errorf("check the Redis user's permissions: %w", err)
	case len(denied) == 0:
		return nil
	}
	pe := &PermissionError{}
	for _, i := range denied {
		pe.Denied = append(pe.Denied, needs[i-1])
	}
	return pe
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

// backfillNeeds lists the commands a backfill that writes runs.
func backfillNeeds(l resque.Layout) []Need {
	exp, req := l.Expiration("resque-expire-probe"), l.Requests("probe")
	return []Need{{"set", exp}, {"get", exp}, {"expireat", exp}, {"evalsha", ""}, {"script|load", ""},
		{"hget", req}, {"hset", req}, {"pexpire", req}, {"del", req}}
}
