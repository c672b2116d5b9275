package sweep

import (
	"context"
	_ "embed"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/orphan"
	"github.com/resque-expire/resque-expire/internal/scripts"
)

// The Lua scripts, one per file; each file's header documents its KEYS,
// ARGV and return value. They are loaded once per run (LoadScripts) and
// called by SHA.
var (
	// luaScripts is every script the package runs; files that define more
	// scripts add theirs from a package-level var.
	luaScripts scripts.Set

	//go:embed remove_expired.lua
	removeExpiredSrc    string
	removeExpiredScript = luaScripts.Once(removeExpiredSrc)

	//go:embed lock_renew.lua
	lockRenewSrc    string
	lockRenewScript = luaScripts.Add(lockRenewSrc)

	//go:embed lock_release.lua
	lockReleaseSrc    string
	lockReleaseScript = luaScripts.Add(lockReleaseSrc)
)

// LoadScripts loads every script of the package into Redis's script cache,
// so that the calls that follow go by SHA.
func LoadScripts(ctx context.Context, rdb redis.Scripter) error {
	if err := luaScripts.Load(ctx, rdb); err != nil {
		return err
	}
	return orphan.Load(ctx, rdb)
}
