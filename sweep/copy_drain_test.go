package sweep

import "testing"

// TestStagedEntry: a staged entry gives back its key, value and report,
// whatever they hold (colons, digits, nothing), and one that was cut or
// is not an entry does not parse.
func TestStagedEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range [][3]string{
		{"resque:job:abc:expiration", "1700000000", "36:c874fae2-0c7a-46a2-ae62-9c7719af5300 0 12 0"},
		{"", "", "3:id1:X0 5 6 1"},
		{"12:34:", "5:6", ""},
	} {
		e := stagedEntry(tc[0], tc[1], tc[2])
		k, v, r, ok := parseStagedEntry(e)
		if !ok || k != tc[0] || v != tc[1] || r != tc[2] {
			t.Errorf("%q: got %q %q %q %v", e, k, v, r, ok)
		}
	}
	for _, bad := range []string{"", "resque:job:abc:expiration", "99:short", "3:abc", "x:abc0:", "-1:a0:"} {
		if _, _, _, ok := parseStagedEntry(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
