// Package orphan owns the one write sweep --orphans and audit --fix-orphans
// share: giving an orphaned deadline key (its id was in no list the run
// read) a TTL instead of deleting it, with orphan_expire.lua.
package orphan

import (
	"context"
	_ "embed"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/scripts"
)

var luaScripts scripts.Set

//go:embed orphan_expire.lua
var expireSrc string

var expireScript = luaScripts.Add(expireSrc)

// Load loads the package's script into Redis's script cache.
func Load(ctx context.Context, rdb redis.Scripter) error { return luaScripts.Load(ctx, rdb) }

// Expire is orphan_expire.lua's call for the deadline key key, judged to
// hold value: KEYS [key], ARGV [value, ttl in milliseconds, at least 1].
// It answers 1 when the key now expires within ttl, 0 when it changed
// since it was judged (left alone), -1 when it is gone.
func Expire(key, value string, ttl time.Duration) scripts.Call {
	return scripts.Call{Script: expireScript, Keys: []string{key}, Args: []any{value, max(ttl.Milliseconds(), 1)}}
}
