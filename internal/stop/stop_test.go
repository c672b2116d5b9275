package stop

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestReason(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		err     error
		reason  string
		wantErr error
	}{
		{"finished", live, nil, "", nil},
		{"limit", live, fmt.Errorf("queue a: %w", ErrLimit), Limit, nil},
		{"max duration", live, ErrMaxDuration, MaxDuration, nil},
		{"interrupted step", cancelled, ErrInterrupted, Interrupted, context.Canceled},
		{"cancelled call", cancelled, fmt.Errorf("scan: %w", context.Canceled), Interrupted, context.Canceled},
		{"interrupted, context still live", live, ErrInterrupted, Interrupted, nil},
		{"error", live, boom, Error, boom},
		{"error after a cancel", cancelled, boom, Error, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, err := Reason(tc.ctx, tc.err)
			if reason != tc.reason || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("Reason(%v) = %q, %v; want %q, %v", tc.err, reason, err, tc.reason, tc.wantErr)
			}
		})
	}
}
