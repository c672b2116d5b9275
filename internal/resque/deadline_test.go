package resque

import (
	"strings"
	"testing"
	"time"
)

func TestParseDeadlineAccepts(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		// Integer Unix seconds.
		{"1700000000", time.Unix(1700000000, 0)},
		{"946684800", time.Unix(946684800, 0)}, // 2000-01-01, the earliest accepted
		{"0001700000000", time.Unix(1700000000, 0)},
		{" 1700000000 ", time.Unix(1700000000, 0)},
		{"1700000000\n", time.Unix(1700000000, 0)},
		{"253402300799", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}, // the last second of 9999
		// Integer milliseconds (>= 10^12).
		{"1000000000000", time.UnixMilli(1_000_000_000_000)},
		{"1700000000123", time.UnixMilli(1700000000123)},
		{"253402300799000", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		// Decimal seconds.
		{"1700000000.25", time.Unix(1700000000, 250e6)},
		{"1700000000.0", time.Unix(1700000000, 0)},
		{"1700000000.000000001", time.Unix(1700000000, 0)}, // below float64 precision
		{"1700000000.999999999", time.Unix(1700000001, 0)}, // rounds up a whole second
		{"946684800.5", time.Unix(946684800, 5e8)},
		// RFC 3339.
		{"2023-11-14T22:13:20Z", time.Unix(1700000000, 0)},
		{"2023-11-14T22:13:20.5Z", time.Unix(1700000000, 5e8)},
		{"2023-11-15T00:13:20+02:00", time.Unix(1700000000, 0)},
		{"9999-12-31T23:59:59Z", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"2000-01-01T00:00:00Z", time.Unix(946684800, 0)},
	}
	for _, tt := range tests {
		if tt.want.IsZero() {
			continue
		}
		got, err := ParseDeadline(tt.in)
		if err != nil {
			t.Errorf("ParseDeadline(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseDeadline(%q) = %v, want %v in UTC", tt.in, got, tt.want.UTC())
		}
	}
}

func TestParseDeadlineRejects(t *testing.T) {
	tests := []struct {
		in, reason string
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"0", "positive"},
		{"00000", "positive"},
		{"-0", "positive"},
		{"-1", "positive"},
		{"-1700000000", "positive"},
		{"0.0", "positive"},
		{"1", "2000"},    // a TTL written as a deadline, not 1970
		{" 12 ", "2000"}, // likewise
		{"3600", "2000"},
		{"946684799", "2000"},
		{"1.5", "2000"},
		{"1970-01-01T00:00:01Z", "2000"},
		{"NaN", ""},
		{"nan", ""},
		{"Inf", ""},
		{"+Inf", ""},
		{"-Inf", ""},
		{"Infinity", ""},
		{"0x6553f100", ""},
		{"0X1", ""},
		{"1e9", ""},
		{"1.7e9", ""},
		{"1E12", ""},
		{"+1700000000", ""},
		{"1_700_000_000", ""},
		{"1,700,000,000", ""},
		{"1700000000.", ""},
		{".5", ""},
		{"-1.5", ""},
		{"1700000000.25.5", ""},
		{"1700000000 1", ""},
		{"１７００００００００", ""},               // full-width digits
		{"253402300800", "9999"},         // 10000-01-01 in seconds
		{"999999999999", "9999"},         // the largest "seconds" value: year 33658
		{"253402300800000", "9999"},      // 10000-01-01 in milliseconds
		{"9223372036854775807", "9999"},  // max int64 milliseconds
		{"9223372036854775808", "range"}, // past int64
		{"99999999999999999999999999", "range"},
		{"1000000000000.5", "too large"},            // decimal milliseconds
		{"999999999999.5", "9999"},                  // decimal seconds past 9999
		{"1" + strings.Repeat("0", 400) + ".0", ""}, // overflows float64
		{"10000-01-01T00:00:00Z", ""},               // past 9999
		{"9999-12-31T23:59:59-01:00", "9999"},       // 10000-01-01T00:59:59Z
		{"1970-01-01T00:00:00Z", "positive"},        // the epoch itself
		{"1969-12-31T23:59:59Z", "positive"},        // before it
		{"0001-01-01T00:00:00Z", "positive"},        // Go's zero time
		{"2023-11-14 22:13:20", ""},                 // not RFC 3339
		{"2023-11-14", ""},                          // a date
		{"Tue, 14 Nov 2023 22:13:20 GMT", ""},       // RFC 1123
		{"tomorrow-ish", ""},                        // garbage
		{"\x00\xff\xfe", ""},                        // binary
		{"true", ""},
		{"null", ""},
		{`"1700000000"`, ""}, // JSON-quoted
		{strings.Repeat("9", 1000), "range"},
	}
	for _, tt := range tests {
		got, err := ParseDeadline(tt.in)
		if err == nil {
			t.Errorf("ParseDeadline(%.40q) = %v, want an error", tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.reason) || !strings.HasPrefix(err.Error(), "unparseable deadline") {
			t.Errorf("ParseDeadline(%.40q) error %q, want it to mention %q", tt.in, err, tt.reason)
		}
		if len(err.Error()) > 200 {
			t.Errorf("ParseDeadline(%.40q) error is %d bytes long; the value must be truncated", tt.in, len(err.Error()))
		}
	}
}

// TestParseDeadlineBelowOneSecond: "0.5" is the Unix epoch plus half a
// second, the same instant as "1970-01-01T00:00:00.5Z", which is rejected
// as not a positive Unix time. A decimal value must not be accepted for an
// instant its RFC 3339 spelling is rejected for — and FormatDeadline of
// what it parses to ("0") is itself rejected.
func TestParseDeadlineBelowOneSecond(t *testing.T) {
	// "0.0000000000000001" (found by FuzzParseDeadline) even parses to the
	// epoch itself, the very value "0" is rejected as.
	for _, in := range []string{"0.5", "0.999", "0.000001", "0.0000000000000001", "1970-01-01T00:00:00.5Z"} {
		if got, err := ParseDeadline(in); err == nil {
			t.Errorf("ParseDeadline(%q) = %v, want an error like for 0 and for 1970-01-01T00:00:00.5Z", in, got)
		}
	}
}

// TestParseDeadlineLastSecondOf9999: deadlines are refused when "later
// than the year 9999", and 9999-12-31T23:59:59.5Z is still in 9999, as is
// 253402300799999 (milliseconds).
func TestParseDeadlineLastSecondOf9999(t *testing.T) {
	for _, in := range []string{"9999-12-31T23:59:59.5Z", "9999-12-31T23:59:59.999999999Z", "253402300799999", "253402300799.5"} {
		got, err := ParseDeadline(in)
		if err != nil {
			t.Errorf("ParseDeadline(%q): %v, want a time in 9999", in, err)
			continue
		}
		if got.Year() != 9999 {
			t.Errorf("ParseDeadline(%q) = %v", in, got)
		}
	}
}

func TestMillisThreshold(t *testing.T) {
	below, err := ParseDeadline("999999999999")
	if err == nil {
		t.Errorf("999999999999 read as seconds is year 33658, got %v", below)
	}
	at, err := ParseDeadline("1000000000000")
	if err != nil || !at.Equal(time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)) {
		t.Errorf("10^12 = %v, %v, want milliseconds (2001-09-09T01:46:40Z)", at, err)
	}
	// Seconds stay seconds for any believable date.
	if got, _ := ParseDeadline("253402300799"); got.Year() != 9999 {
		t.Errorf("253402300799 = %v", got)
	}
}

func TestParseTimeErrorHasNoValue(t *testing.T) {
	_, err := ParseTime("secret-looking-value")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("ParseTime error %v must not repeat the value", err)
	}
	_, err = ParseDeadline(strings.Repeat("x", 500))
	if err == nil || !strings.Contains(err.Error(), strings.Repeat("x", 64)+"…") || strings.Contains(err.Error(), strings.Repeat("x", 65)) {
		t.Errorf("ParseDeadline error %v must quote the value cut to 64 bytes", err)
	}
}

func TestFormatDeadline(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1700000000, 0), "1700000000"},
		{time.Unix(1700000000, 999e6), "1700000000"},
		{time.Date(2023, 11, 15, 0, 13, 20, 0, time.FixedZone("x", 7200)), "1700000000"},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "253402300799"},
	}
	for _, tt := range tests {
		got := FormatDeadline(tt.t)
		if got != tt.want {
			t.Errorf("FormatDeadline(%v) = %q, want %q", tt.t, got, tt.want)
		}
		back, err := ParseDeadline(got)
		if err != nil || !back.Equal(tt.t.Truncate(time.Second)) {
			t.Errorf("ParseDeadline(FormatDeadline(%v)) = %v, %v", tt.t, back, err)
		}
	}
}
