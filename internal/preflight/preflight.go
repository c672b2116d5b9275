// Package preflight asks Redis, before a run writes anything, whether the
// connected user may run every command the run needs. Each domain package
// (sweep, backfill) lists its own needs; this package only asks.
package preflight

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
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

// Check asks Redis whether the connected user may run every command in
// needs (acl_probe.lua: KEYS are the distinct keys of needs, ARGV a
// command and the 1-based index of its key, 0 for none, per need). It
// returns a *PermissionError naming those it may not, nil when it may run
// them all or when Redis cannot tell (before Redis 7).
func Check(ctx context.Context, rdb redis.Scripter, needs []Need) error {
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
