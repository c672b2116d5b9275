package parallel

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachRunsEveryIndexOnce(t *testing.T) {
	for _, tc := range []struct{ n, workers int }{{0, 2}, {1, 2}, {5, 1}, {100, 2}, {7, 0}} {
		var calls [100]atomic.Int32
		var inFlight, peak atomic.Int32
		errs := Each(tc.n, tc.workers, func(i int) error {
			raisePeak(&peak, inFlight.Add(1))
			calls[i].Add(1)
			time.Sleep(time.Millisecond) // long enough for the calls to overlap
			inFlight.Add(-1)
			return nil
		})
		if len(errs) != 0 {
			t.Fatalf("n=%d: errors %v", tc.n, errs)
		}
		for i := 0; i < tc.n; i++ {
			if got := calls[i].Load(); got != 1 {
				t.Errorf("n=%d: index %d called %d times", tc.n, i, got)
			}
		}
		limit := int32(max(tc.workers, 1))
		if peak.Load() > limit {
			t.Errorf("n=%d: %d calls at once, want at most %d", tc.n, peak.Load(), limit)
		}
		if tc.n >= 10*int(limit) && peak.Load() < limit {
			t.Errorf("n=%d: at most %d calls at once, want %d workers busy", tc.n, peak.Load(), limit)
		}
	}
}

// raisePeak makes peak at least cur. A compare-and-swap loop, so that of
// two calls raising it at once neither undoes the other's higher value.
func raisePeak(peak *atomic.Int32, cur int32) {
	for {
		p := peak.Load()
		if cur <= p || peak.CompareAndSwap(p, cur) {
			return
		}
	}
}

func TestEachStopsStartingAfterAnError(t *testing.T) {
	boom := errors.New("boom")
	var started atomic.Int32
	errs := Each(1000, 1, func(i int) error {
		started.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if len(errs) != 1 || !errors.Is(errs[0], boom) {
		t.Fatalf("errors = %v, want [boom]", errs)
	}
	if started.Load() > 5 {
		t.Errorf("%d calls started after the failure at index 3", started.Load())
	}
}
