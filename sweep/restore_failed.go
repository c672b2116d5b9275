package sweep

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

//go:embed restore_failed.lua
var restoreFailedSrc string

var restoreFailedScript = luaScripts.Add(restoreFailedSrc)

// restoreFailed puts an archived failure entry back on the failed list it
// was removed from (restore_failed.lua). It answers 1 when it pushed the
// entry, 0 when the record was restored before.
func restoreFailed(ctx context.Context, rdb redis.UniversalClient, layout resque.Layout, rec *ArchiveRecord, marker string, markerTTLms int64, token string) (int, error) {
	if !resque.IsFailedListName(rec.Failed) {
		return 0, fmt.Errorf("%q is not a failed list name", rec.Failed)
	}
	member := rec.Failed
	if member == "failed" {
		member = ""
	}
	keys := []string{layout.FailedList(rec.Failed), layout.FailedQueues(), marker}
	return restoreFailedScript.Run(ctx, rdb, keys, rec.Payload, member, markerTTLms, token).Int()
}
