package redisconn

import (
	"context"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// busyRetry waits out another client's long script. While one runs past
// Redis's busy-reply threshold, Redis answers every other command with BUSY
// without running it, so retrying is safe for writes too. go-redis does not
// retry BUSY; this hook does, with backoff, for up to within per command,
// then gives up with the BUSY error.
type busyRetry struct{ within time.Duration }

const (
	busyFirstWait = 10 * time.Millisecond
	busyMaxWait   = 500 * time.Millisecond
)

func (h busyRetry) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

func (h busyRetry) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return h.retry(ctx, func() error { return next(ctx, cmd) })
	}
}

// ProcessPipelineHook retries a whole pipeline: BUSY refuses every command
// of it, so none of them ran.
func (h busyRetry) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		return h.retry(ctx, func() error {
			err := next(ctx, cmds)
			if err == nil {
				for _, c := range cmds {
					if isBusy(c.Err()) {
						return c.Err()
					}
				}
			}
			return err
		})
	}
}

func (h busyRetry) retry(ctx context.Context, call func() error) error {
	give := time.Now().Add(h.within)
	wait := busyFirstWait
	for {
		err := call()
		if !isBusy(err) || !time.Now().Add(wait).Before(give) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, busyMaxWait)
	}
}

func isBusy(err error) bool { return err != nil && redis.HasErrorPrefix(err, "BUSY") }
