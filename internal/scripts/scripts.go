// Package scripts holds the mechanism every package that runs Lua scripts
// shares: a Set of the scripts a package registers from its embedded .lua
// files, loaded into Redis's script cache once per run, and ErrReadOnly,
// what every writer answers when Redis refuses writes as a replica.
//
// Each domain package (sweep, backfill, enqueue, audit) keeps its own Set
// and its own typed wrapper per script; this package knows nothing of them.
package scripts

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/once"
)

// ErrReadOnly is returned when Redis refuses writes because it is a replica.
//
//lint:ignore ST1005 the message starts with a name, Redis
var ErrReadOnly = errors.New("Redis is a read-only replica; point --redis at the master to change anything")

// ReadOnly returns ErrReadOnly for Redis's READONLY reply, else err.
func ReadOnly(err error) error {
	if redis.IsReadOnlyError(err) {
		return ErrReadOnly
	}
	return err
}

// Set is the scripts one package runs. Its calls go by SHA after Load;
// go-redis falls back to EVAL if Redis answers NOSCRIPT (after a restart or
// SCRIPT FLUSH).
type Set struct {
	plain []*redis.Script
	once  []*once.Script
}

// Add registers a script that is safe to run twice (it reads, or its
// effect is idempotent); files call it from a package-level var.
func (s *Set) Add(src string) *redis.Script {
	sc := redis.NewScript(src)
	s.plain = append(s.plain, sc)
	return sc
}

// Once registers a writing script run through internal/once.
func (s *Set) Once(body string) *once.Script {
	sc := once.New(body)
	s.once = append(s.once, sc)
	return sc
}

// Load loads every script of the set into Redis's script cache, so that
// the calls that follow go by SHA.
func (s *Set) Load(ctx context.Context, rdb redis.Scripter) error {
	for _, sc := range s.plain {
		if err := sc.Load(ctx, rdb).Err(); err != nil {
			return fmt.Errorf("load Lua scripts: %w", err)
		}
	}
	for _, sc := range s.once {
		if err := sc.Load(ctx, rdb); err != nil {
			return fmt.Errorf("load Lua scripts: %w", err)
		}
	}
	return nil
}

// Call is one call of one script, its KEYS and ARGV assembled by the
// script's typed wrapper beside its .lua file, so that the positional
// contract is written down once.
type Call struct {
	Script *redis.Script
	Keys   []string
	Args   []any
}

// Run runs the call by SHA, loading the script if Redis lacks it.
func (c Call) Run(ctx context.Context, rdb redis.Scripter) *redis.Cmd {
	return c.Script.Run(ctx, rdb, c.Keys, c.Args...)
}

// EvalSha queues the call by SHA, for a pipeline; a NOSCRIPT answer
// (redis.HasErrorPrefix(err, "NOSCRIPT")) is the caller's to retry with Run.
func (c Call) EvalSha(ctx context.Context, pipe redis.Scripter) *redis.Cmd {
	return c.Script.EvalSha(ctx, pipe, c.Keys, c.Args...)
}
