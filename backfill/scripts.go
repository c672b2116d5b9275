package backfill

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/preflight"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/scripts"
)

// luaScripts is every script the package runs, loaded before a run writes.
var luaScripts scripts.Set

//go:embed backfill_page.lua
var backfillPageSrc string

var backfillPageScript = luaScripts.Once(backfillPageSrc)

// LoadScripts loads the package's script into Redis's script cache (doctor
// checks that it loads).
func LoadScripts(ctx context.Context, rdb redis.Scripter) error { return luaScripts.Load(ctx, rdb) }

// backfillPage runs backfill_page.lua for one page of list: KEYS are the
// expiration keys of sets, then of fixes; ARGV three per key, ("set",
// deadline, key expiry) or ("fix", the value read, key expiry). It returns
// one code per key, in that order (see the script's header).
func backfillPage(ctx context.Context, req *once.Requests, rdb redis.Scripter, list string, sets []setOp, fixes []fixOp) ([]int64, error) {
	keys := make([]string, 0, len(sets)+len(fixes))
	args := make([]any, 0, 3*(len(sets)+len(fixes)))
	for _, op := range sets {
		keys = append(keys, op.job.ExpirationKey)
		args = append(args, "set", resque.FormatDeadline(op.deadline), op.keyAt.Unix())
	}
	for _, f := range fixes {
		keys = append(keys, f.job.ExpirationKey)
		args = append(args, "fix", f.job.DeadlineRaw, f.keyAt.Unix())
	}
	codes, err := req.Run(ctx, rdb, backfillPageScript, keys, args...).Int64Slice()
	if err != nil {
		return nil, scriptError(err, list)
	}
	if len(codes) != len(keys) {
		return nil, fmt.Errorf("backfill %s: script answered %d codes for %d keys", list, len(codes), len(keys))
	}
	return codes, nil
}

func scriptError(err error, list string) error {
	if redis.IsReadOnlyError(err) {
		return scripts.ErrReadOnly
	}
	msg := err.Error()
	if strings.Contains(msg, "syntax error") || strings.Contains(msg, "wrong number of arguments") {
		return fmt.Errorf("backfill %s: %w (backfill needs Redis 6.2 or later, 7.0 or later for --fix-key-ttl)", list, err)
	}
	return fmt.Errorf("backfill %s: %w", list, err)
}

// needs lists the commands a backfill that writes runs, for
// preflight.Check.
func needs(l resque.Layout) []preflight.Need {
	exp, req := l.Expiration("resque-expire-probe"), l.Requests("probe")
	return []preflight.Need{{Command: "set", Key: exp}, {Command: "get", Key: exp}, {Command: "expireat", Key: exp},
		{Command: "evalsha"}, {Command: "script|load"},
		{Command: "hget", Key: req}, {Command: "hset", Key: req}, {Command: "pexpire", Key: req}, {Command: "del", Key: req}}
}
