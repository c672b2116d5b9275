package resque

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"time"
)

// durationUnits are the units ParseDuration knows: Go's, plus days and weeks.
var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond,
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
	"d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// ErrDuration explains what a duration looks like.
var ErrDuration = errors.New("not a duration: want numbers with units (ns, us, ms, s, m, h, d, w), such as 90s, 6h, 3d, 1.5d or 1w2d")

// ParseDuration is the one duration grammar of every flag and every file:
// Go's (90m, 1h30m, 250ms) plus days (d, 24h) and weeks (w, 7d), decimals
// allowed in any term (1.5d), an optional sign, and "0". A number without
// a unit is refused (is "7" seconds or days?), and so is a duration past
// about 292 years, which does not fit.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	rest := in
	neg := false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg, rest = rest[0] == '-', rest[1:]
	}
	if rest == "0" {
		return 0, nil
	}
	if rest == "" {
		return 0, ErrDuration
	}
	total := new(big.Rat)
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || rest[i] >= '0' && rest[i] <= '9') {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] == '.' || rest[j] >= '0' && rest[j] <= '9') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		u, known := durationUnits[unit]
		n, ok := new(big.Rat).SetString(num)
		if i == 0 || !known || !ok || strings.Count(num, ".") > 1 || strings.HasPrefix(num, ".") && len(num) == 1 {
			return 0, ErrDuration
		}
		total.Add(total, n.Mul(n, new(big.Rat).SetInt64(int64(u))))
		rest = rest[j:]
	}
	if total.Cmp(new(big.Rat).SetInt64(math.MaxInt64)) > 0 {
		return 0, errors.New("duration too long (at most about 292 years)")
	}
	d := time.Duration(new(big.Int).Quo(total.Num(), total.Denom()).Int64())
	if neg {
		d = -d
	}
	return d, nil
}
