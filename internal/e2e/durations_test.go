package e2e

import (
	"strings"
	"testing"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// TestOneDurationGrammar: every duration flag takes days, weeks and
// decimals (--max-age 3d was a parse error), refuses a bare number and an
// overflow, and names the flag with two dashes.
func TestOneDurationGrammar(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	for _, args := range [][]string{
		{"sweep", "--dry-run", "--max-age", "3d", "--grace", "1.5h"},
		{"sweep", "--dry-run", "--max-duration", "1w", "--lock-ttl", "2m"},
		{"audit", "--max-duration", "0.5d"},
		{"check", "--max-overdue", "2w"},
		{"--timeout", "1.5s", "inspect"},
	} {
		run(t, srv, args...).expect(t, 0)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "--dry-run", "--max-age", "7"}, "--max-age"},
		{[]string{"sweep", "--dry-run", "--grace", "9999999999999999w"}, "too long"},
		{[]string{"backfill", "--dry-run", "--ttl", "3x"}, "not a duration"},
	} {
		r := run(t, srv, tc.args...)
		r.expect(t, 2)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: stderr does not say %q:\n%s", tc.args, tc.want, r.stderr)
		}
	}
}
