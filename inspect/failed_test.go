package inspect

import (
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// TestParseFailedAt: every failed_at format Resque and its ports write,
// and the latest reading of a zone that cannot be placed, so an age is
// never overstated.
func TestParseFailedAt(t *testing.T) {
	utc := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	west := utc.Add(12 * time.Hour)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2024/05/01 12:00:00 UTC", utc},                                   // resque >= 1.20 (%Z) on a UTC host
		{"2024/05/01 12:00:00 GMT", utc},                                   // ditto
		{"2024/05/01 14:00:00 +0200", utc},                                 // %z
		{"2024-05-01 14:00:00 +0200", utc},                                 // Time#to_s (old resque)
		{"Wed, 01 May 2024 14:00:00 +0200", utc},                           // rfc2822
		{"Wed May 01 2024 05:00:00 GMT-0700 (Pacific Daylight Time)", utc}, // node-resque
		{"2024-05-01T12:00:00Z", utc},                                      // goworker
		{"2024/05/01 12:00:00 CEST", west},                                 // a zone abbreviation: latest reading
		{"2024/05/01 12:00:00", west},                                      // redis_multi_queue's retried_at, no zone
		{"", time.Time{}},
		{"yesterday", time.Time{}},
	} {
		if got := ParseFailedAt(tc.in); !got.Equal(tc.want) {
			t.Errorf("ParseFailedAt(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFailedListNames(t *testing.T) {
	for name, want := range map[string]bool{"failed": true, "mail_failed": true, "_failed": false, "queue:x_failed": false,
		"queues": false, "mail_failed_x": false, "a*_failed": false} {
		if got := resque.IsFailedListName(name); got != want {
			t.Errorf("IsFailedListName(%q) = %v, want %v", name, got, want)
		}
	}
}
