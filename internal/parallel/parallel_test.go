package parallel

import (
	"errors"
	"sync/atomic"
	"testing"
)

func TestEachRunsEveryIndexOnce(t *testing.T) {
	for _, tc := range []struct{ n, workers int }{{0, 2}, {1, 2}, {5, 1}, {100, 2}, {7, 0}} {
		var calls [100]atomic.Int32
		var inFlight, peak atomic.Int32
		errs := Each(tc.n, tc.workers, func(i int) error {
			if cur := inFlight.Add(1); cur > peak.Load() {
				peak.Store(cur)
			}
			calls[i].Add(1)
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
		if limit := int32(max(tc.workers, 1)); peak.Load() > limit {
			t.Errorf("n=%d: %d calls at once, want at most %d", tc.n, peak.Load(), limit)
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
