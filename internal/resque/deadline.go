package resque

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// DefaultRetention is how long a deadline key outlives its deadline by
// default (backfill, enqueue, restore): long enough for any sweep schedule
// to see an expired job, short enough that keys of jobs workers already ran
// do not pile up.
const DefaultRetention = 7 * 24 * time.Hour

// Bounds of a believable deadline. Values outside are reported as invalid
// rather than guessed at: a deadline of 0 or -5 is a bug in the writer, not a
// reason to delete a job.
var (
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	// minTime: no job is enqueued with a deadline before 2000; a value that
	// small is a relative TTL written as a deadline ("3600" for an hour).
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	// MillisThreshold: integers at or above it are Unix milliseconds.
	MillisThreshold int64 = 1_000_000_000_000
)

// ParseDeadline parses a deadline value as stored in an expiration key:
// integer Unix seconds, integer Unix milliseconds (values >= 10^12), decimal
// seconds such as 1700000000.25, or an RFC 3339 time. Anything else — empty,
// zero, negative, NaN, exponents, hex, times past the year 9999 — is an error.
func ParseDeadline(s string) (time.Time, error) {
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("unparseable deadline %q: %w", truncate(s, 64), err)
	}
	return t, nil
}

// ParseTime is ParseDeadline without the value in the error message.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, errors.New("empty value")
	case isDigits(s) || (s[0] == '-' && isDigits(s[1:])):
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, errors.New("integer out of range")
		}
		if n <= 0 {
			return time.Time{}, errors.New("not a positive Unix time")
		}
		var t time.Time
		if n >= MillisThreshold {
			t = time.UnixMilli(n)
		} else {
			t = time.Unix(n, 0)
		}
		return checkRange(t)
	case isDecimal(s):
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return time.Time{}, errors.New("not a finite number")
		}
		if f < 1 {
			return time.Time{}, errors.New("not a positive Unix time")
		}
		if f >= float64(MillisThreshold) {
			return time.Time{}, errors.New("decimal value too large for Unix seconds")
		}
		sec, frac := math.Modf(f)
		return checkRange(time.Unix(int64(sec), int64(math.Round(frac*1e9))))
	default:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, errors.New("neither Unix seconds, Unix milliseconds nor RFC 3339")
		}
		if t.Unix() <= 0 {
			return time.Time{}, errors.New("not a positive Unix time")
		}
		return checkRange(t)
	}
}

func checkRange(t time.Time) (time.Time, error) {
	if t.Before(minTime) {
		return time.Time{}, errors.New("earlier than the year 2000: a TTL written as a deadline?")
	}
	if t.After(maxTime) {
		return time.Time{}, errors.New("later than the year 9999")
	}
	return t.UTC(), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isDecimal(s string) bool {
	i := strings.IndexByte(s, '.')
	return i > 0 && isDigits(s[:i]) && isDigits(s[i+1:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// FormatDeadline renders t as the tool writes deadlines: integer Unix seconds.
func FormatDeadline(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
