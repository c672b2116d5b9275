package sweep

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// fenceCounts are the server-wide calls of the commands that change the
// middle of a list without changing its length or ends in a way the
// cutover's checks would see: LSET above all, and LINSERT and LREM.
type fenceCounts struct{ lset, linsert, lrem int64 }

func (a fenceCounts) plus(b fenceCounts) fenceCounts {
	return fenceCounts{a.lset + b.lset, a.linsert + b.linsert, a.lrem + b.lrem}
}

func (a fenceCounts) minus(b fenceCounts) fenceCounts {
	return fenceCounts{a.lset - b.lset, a.linsert - b.linsert, a.lrem - b.lrem}
}

// fence keeps the tool's own LSET and LREM calls (remove_expired.lua on the
// other lists of the run) apart from everyone else's: a removal script runs
// under the read lock and adds what it called before releasing it; reading
// the counts for a copy's start or cutover takes the write lock, so that no
// own script is half counted.
type fence struct {
	mu    sync.RWMutex
	ownMu sync.Mutex
	own   fenceCounts
}

// removalRan adds what remove_expired.lua called for codes: an LSET per job
// removed and one LREM when any was.
func (f *fence) removalRan(codes []int64) {
	var n int64
	for _, c := range codes {
		if c == 1 {
			n++
		}
	}
	if n == 0 {
		return
	}
	f.ownMu.Lock()
	f.own.lset += n
	f.own.lrem++
	f.ownMu.Unlock()
}

func (f *fence) ownCounts() fenceCounts {
	f.ownMu.Lock()
	defer f.ownMu.Unlock()
	return f.own
}

// readFence reads the fence's counts from INFO commandstats.
func readFence(ctx context.Context, rdb redis.UniversalClient) (fenceCounts, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return fenceCounts{}, fmt.Errorf("read INFO commandstats: %w", err)
	}
	return fenceCounts{lset: cmdCalls(info, "lset"), linsert: cmdCalls(info, "linsert"), lrem: cmdCalls(info, "lrem")}, nil
}

// cmdCalls is the calls= of cmdstat_<cmd> in INFO commandstats (0 when the
// command never ran).
func cmdCalls(info, cmd string) int64 {
	_, rest, ok := strings.Cut(info, "cmdstat_"+cmd+":calls=")
	if !ok {
		return 0
	}
	end := strings.IndexAny(rest, ",\r\n")
	if end < 0 {
		end = len(rest)
	}
	n, _ := strconv.ParseInt(rest[:end], 10, 64)
	return n
}

// memoryInfo is what INFO memory says of Redis's memory.
type memoryInfo struct{ used, max int64 }

func readMemory(ctx context.Context, rdb redis.UniversalClient) (memoryInfo, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return memoryInfo{}, fmt.Errorf("read INFO memory: %w", err)
	}
	return memoryInfo{used: infoInt(info, "used_memory"), max: infoInt(info, "maxmemory")}, nil
}

func infoInt(info, field string) int64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
