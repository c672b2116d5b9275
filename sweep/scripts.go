package sweep

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/once"
)

// The Lua scripts, one per file; each file's header documents its KEYS,
// ARGV and return value. They are loaded once per run (LoadScripts) and
// called by SHA; go-redis falls back to EVAL if Redis answers NOSCRIPT (after
// a restart or SCRIPT FLUSH).
var (
	//go:embed remove_expired.lua
	removeExpiredSrc    string
	removeExpiredScript = registerOnce(once.New(removeExpiredSrc))

	//go:embed lock_renew.lua
	lockRenewSrc    string
	lockRenewScript = redis.NewScript(lockRenewSrc)

	//go:embed lock_release.lua
	lockReleaseSrc    string
	lockReleaseScript = redis.NewScript(lockReleaseSrc)
)

// scripts lists every script the package runs, for LoadScripts.
var scripts = []*redis.Script{lockRenewScript, lockReleaseScript}

// onceScripts lists the writing scripts run through internal/once.
var onceScripts []*once.Script

// registerOnce adds a writing script to the set LoadScripts loads.
func registerOnce(s *once.Script) *once.Script {
	onceScripts = append(onceScripts, s)
	return s
}

// registerScript adds a script to the set LoadScripts loads; files that
// define more scripts call it from a package-level var.
func registerScript(s *redis.Script) *redis.Script {
	scripts = append(scripts, s)
	return s
}

// LoadScripts loads every script into Redis's script cache, so that the
// calls that follow go by SHA.
func LoadScripts(ctx context.Context, rdb redis.Scripter) error {
	for _, s := range scripts {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return fmt.Errorf("load Lua scripts: %w", err)
		}
	}
	for _, s := range onceScripts {
		if err := s.Load(ctx, rdb); err != nil {
			return fmt.Errorf("load Lua scripts: %w", err)
		}
	}
	return nil
}
