package enqueue

import (
	"context"
	_ "embed"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/scripts"
)

// luaScripts is the script the package runs.
var luaScripts scripts.Set

//go:embed enqueue.lua
var enqueueSrc string

var enqueueScript = luaScripts.Once(enqueueSrc)

// LoadScripts loads the package's script into Redis's script cache (doctor
// checks that it loads).
func LoadScripts(ctx context.Context, rdb redis.Scripter) error { return luaScripts.Load(ctx, rdb) }

// pushWithDeadline runs enqueue.lua for the job res describes. On a queue:
// KEYS [queue, <ns>:queues, deadline key], ARGV [payload, queue, deadline,
// key expiry, ""]; on the delayed schedule: KEYS [bucket, the payload's
// timestamps set, deadline key, schedule], ARGV [payload, "delayed:<ts>",
// deadline, key expiry, ts]. It answers 1 when it wrote the job, 0 when the
// deadline key existed (and it wrote nothing).
func pushWithDeadline(ctx context.Context, req *once.Requests, rdb redis.Scripter, layout resque.Layout, res Result) (int, error) {
	deadline, keyAt := resque.FormatDeadline(res.Deadline), res.KeyExpiresAt.Unix()
	keys := []string{res.List, layout.Queues(), res.ExpirationKey}
	args := []any{res.Payload, res.Queue, deadline, keyAt, ""}
	if res.DelayedAt != 0 {
		keys = []string{res.List, layout.Timestamps(res.Payload), res.ExpirationKey, layout.DelayedSchedule()}
		args = []any{res.Payload, resque.DelayedMember(res.DelayedAt), deadline, keyAt, res.DelayedAt}
	}
	return req.Run(ctx, rdb, enqueueScript, keys, args...).Int()
}
