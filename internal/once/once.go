// Package once runs Lua scripts that write to Redis so that a retry never
// runs them twice.
//
// go-redis retries a command whose reply did not arrive in time (a read
// timeout, a dropped connection), even when Redis already ran it. For a
// script that writes, a second run sees its own first run's effects and
// answers differently: a job it just enqueued looks like someone else's, a
// job it just removed looks taken by a worker. A Script wraps the script's
// body in an envelope (once_head.lua, once_tail.lua) that records the answer
// in the run's requests hash under a field unique to the call; a retry of the
// same call finds the record and returns that answer, so counts stay exact.
package once

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed once_head.lua
	head string
	//go:embed once_tail.lua
	tail string
)

// Keep is how long a call's answer is kept for its retries: far longer than
// go-redis's retries of one command take.
const Keep = 10 * time.Minute

// Script is a writing script run at most once per call.
type Script struct {
	s *redis.Script
}

// New wraps the body of a writing script (the text of its .lua file).
func New(body string) *Script {
	return &Script{s: redis.NewScript(Source(body))}
}

// Source is the full text Redis runs for body: the envelope around it.
func Source(body string) string { return head + body + "\n" + tail }

// Load loads the script into Redis's script cache.
func (s *Script) Load(ctx context.Context, c redis.Scripter) error {
	return s.s.Load(ctx, c).Err()
}

// Hash is the script's SHA1, by which Redis knows it.
func (s *Script) Hash() string { return s.s.Hash() }

// Requests records the answers of one run's calls in a hash of its own, so
// that a retry of any of them answers alike. Done deletes it at the end of
// the run; should the run die first, the hash expires Keep after its last
// call.
type Requests struct {
	key string
	seq atomic.Int64
}

// NewRequests returns the Requests of a run, recorded in the hash at key
// (unique to the run, see NewRunID, and in the keyspace the scripts may
// write).
func NewRequests(key string) *Requests { return &Requests{key: key} }

// Run runs s once for this call: go-redis may send it more than once; the
// script runs once and every attempt answers alike.
func (r *Requests) Run(ctx context.Context, c redis.Scripter, s *Script, keys []string, args ...any) *redis.Cmd {
	k := make([]string, 0, len(keys)+1)
	k = append(append(k, keys...), r.key)
	a := make([]any, 0, len(args)+2)
	a = append(append(a, args...), r.seq.Add(1), Keep.Milliseconds())
	return s.s.Run(ctx, c, k, a...)
}

// Done deletes the run's record once no call of it can be retried any more.
func (r *Requests) Done(ctx context.Context, c redis.Cmdable) error {
	return c.Del(ctx, r.key).Err()
}

// NewRunID returns a random id for a run's requests hash.
func NewRunID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
