package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Format is an output format of command results.
type Format string

// The output formats.
const (
	FormatTable Format = "table" // human-readable ASCII tables
	FormatJSON  Format = "json"  // one indented JSON document
	FormatJSONL Format = "jsonl" // one compact JSON value per line
	FormatCSV   Format = "csv"   // RFC 4180 CSV, header row first
)

// formats is every valid format, in the order they are documented.
var formats = []Format{FormatTable, FormatJSON, FormatJSONL, FormatCSV}

// ParseFormat parses a format name, ignoring case and surrounding spaces.
// The error of an unknown name lists the valid formats.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if f.valid() {
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: want table, json, jsonl or csv", s)
}

func (f Format) valid() bool {
	for _, v := range formats {
		if f == v {
			return true
		}
	}
	return false
}

// Duration formats d in a short human form with at most two units,
// truncated toward zero to the second: "0s", "45s", "3m12s", "3m0s",
// "5h2m", "3d4h" (days from 24h on; a day is 24h). Negative durations get
// a leading "-".
func Duration(d time.Duration) string {
	sign := ""
	// Work on the magnitude as uint64 so that math.MinInt64 does not overflow.
	u := uint64(d)
	if d < 0 {
		sign = "-"
		u = -u
	}
	secs := u / uint64(time.Second)
	if secs == 0 {
		return "0s"
	}
	const (
		minute = 60
		hour   = 60 * minute
		day    = 24 * hour
	)
	// Two units at most, written with strconv: the sweep logs one such
	// duration per removed job, and fmt cost a quarter of that log's CPU.
	big, small := secs, uint64(0)
	bu, su := "s", ""
	switch {
	case secs >= day:
		big, small, bu, su = secs/day, secs%day/hour, "d", "h"
	case secs >= hour:
		big, small, bu, su = secs/hour, secs%hour/minute, "h", "m"
	case secs >= minute:
		big, small, bu, su = secs/minute, secs%minute, "m", "s"
	}
	b := make([]byte, 0, 24)
	b = strconv.AppendUint(append(b, sign...), big, 10)
	b = append(b, bu...)
	if su != "" {
		b = append(strconv.AppendUint(b, small, 10), su...)
	}
	return string(b)
}

// Time formats t as RFC 3339 in UTC (second precision), or "" for the zero
// time.
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Int formats n in plain decimal, without thousands separators, so that CSV
// output stays machine-readable.
func Int(n int64) string { return strconv.FormatInt(n, 10) }
