package redisconn

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClockSkew measures how far Redis's clock (TIME) runs ahead of host's
// (negative: behind), taking host's reading at the middle of the call.
// Redis's is the one clock every producer, worker and sweeper shares, so
// the tool judges expiry by it: host().Add(skew).
func ClockSkew(ctx context.Context, rdb redis.Cmdable, host func() time.Time) (time.Duration, error) {
	before := host()
	t, err := rdb.Time(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("read Redis's clock (TIME): %w", err)
	}
	after := host()
	mid := before.Add(after.Sub(before) / 2)
	return t.Sub(mid), nil
}
