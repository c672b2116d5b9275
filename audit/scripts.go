package audit

import (
	"context"
	_ "embed"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/orphan"
	"github.com/resque-expire/resque-expire/internal/scripts"
)

// luaScripts is every script Fix runs but orphan_expire.lua, which
// internal/orphan owns (sweep --orphans runs it too).
var luaScripts scripts.Set

var (
	//go:embed fix_delete.lua
	fixDeleteSrc    string
	fixDeleteScript = luaScripts.Add(fixDeleteSrc)

	//go:embed fix_ttl.lua
	fixTTLSrc    string
	fixTTLScript = luaScripts.Add(fixTTLSrc)
)

// LoadScripts loads every script Fix runs into Redis's script cache.
func LoadScripts(ctx context.Context, rdb redis.Scripter) error {
	if err := luaScripts.Load(ctx, rdb); err != nil {
		return err
	}
	return orphan.Load(ctx, rdb)
}

// fixDelete is fix_delete.lua's call for key, judged to hold value with
// the TTL ttl: KEYS [key], ARGV [value, ttl] where ttl is "none" (no TTL),
// "any", or the milliseconds it had at most. It answers 1 deleted, 0
// changed since it was judged (kept), -1 gone.
func fixDelete(key, value, ttl string) scripts.Call {
	return scripts.Call{Script: fixDeleteScript, Keys: []string{key}, Args: []any{value, ttl}}
}

// fixTTL is fix_ttl.lua's call giving key, which has no TTL, the TTL ttl:
// KEYS [key], ARGV [ttl in milliseconds]. It answers 1 set, 0 the key has a
// TTL by now (kept), -1 gone.
func fixTTL(key string, ttl time.Duration) scripts.Call {
	return scripts.Call{Script: fixTTLScript, Keys: []string{key}, Args: []any{ttl.Milliseconds()}}
}
