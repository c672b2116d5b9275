package resque

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  string // part of the error, "" for none
	}{
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "3d", want: 3 * day},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "2w", want: 14 * day},
		{in: "1w2d3h", want: 9*day + 3*time.Hour},
		{in: " 7d ", want: 7 * day},
		{in: "-1d", want: -day},
		{in: "+1h", want: time.Hour},
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "1µs", want: time.Microsecond},
		{in: "2562047h", want: 2562047 * time.Hour},
		{in: "", bad: "want numbers"},
		{in: "3", bad: "want numbers"},
		{in: "3600", bad: "want numbers"},
		{in: "3x", bad: "want numbers"},
		{in: "d", bad: "want numbers"},
		{in: "3dd", bad: "want numbers"},
		{in: "1d2", bad: "want numbers"},
		{in: "h1", bad: "want numbers"},
		{in: "1..5h", bad: "want numbers"},
		{in: ".h", bad: "want numbers"},
		{in: "99999999999d", bad: "too long"},
		{in: "9999999999999999w", bad: "too long"},
		{in: "2562048h", bad: "too long"},
	} {
		got, err := ParseDuration(tc.in)
		switch {
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("ParseDuration(%q) = %s, %v; want an error saying %q", tc.in, got, err, tc.bad)
		case tc.bad == "" && (err != nil || got != tc.want):
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90m", "1.5d", "2w", "-1d", "0", "9999999999999999w", "1w2d3h4m5s6ms7us8ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		// Whatever parses agrees with Go's parser where Go's grammar
		// applies, and never wraps around.
		if g, gerr := time.ParseDuration(strings.TrimSpace(s)); gerr == nil && g != d && !strings.Contains(s, ".") {
			t.Errorf("ParseDuration(%q) = %s, Go says %s", s, d, g)
		}
		if strings.HasPrefix(strings.TrimSpace(s), "-") != (d < 0) && d != 0 {
			t.Errorf("ParseDuration(%q) = %s: the sign flipped", s, d)
		}
	})
}
