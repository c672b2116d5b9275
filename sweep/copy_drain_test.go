package sweep

import (
	"fmt"
	"slices"
	"testing"

	"github.com/resque-expire/resque-expire/internal/once"
)

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

// TestDrainKeysCompare: drain_keys.lua deletes the keys of a batch that
// still hold their judged values, in one compare when none changed and
// key by key when one did: a key pushed back, gone or of another type
// stays and the others go. Judged values holding a newline (a valid
// deadline, "1700000000\n") are compared one by one.
func TestDrainKeysCompare(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	r := &run{s: &Sweeper{layout: f.layout}, requests: once.NewRequests(f.layout.Requests(once.NewRunID()))}
	for n, tc := range []struct {
		name   string
		change func(keys []string)
		judged map[int]string // judged (and stored) values other than "100"
		kept   []int          // the keys that must stay
		gone   int            // keys the change deleted itself
	}{
		{name: "none changed"},
		{name: "one pushed back", change: func(k []string) { f.rdb.Set(f.ctx, k[1], "200", 0) }, kept: []int{1}},
		{name: "one gone", change: func(k []string) { f.rdb.Del(f.ctx, k[1]) }, gone: 1},
		{name: "one of another type", change: func(k []string) { f.rdb.Del(f.ctx, k[2]); f.rdb.HSet(f.ctx, k[2], "a", "100") }, kept: []int{2}},
		{name: "newlines in judged values", judged: map[int]string{0: "100\n", 2: "7\n8"}},
		{name: "one with a newline pushed back", judged: map[int]string{1: "100\n"}, change: func(k []string) { f.rdb.Set(f.ctx, k[1], "200\n", 0) }, kept: []int{1}},
		{name: "one changed to hold a newline, one gone", change: func(k []string) { f.rdb.Set(f.ctx, k[1], "100\n100", 0); f.rdb.Del(f.ctx, k[2]) }, kept: []int{1}, gone: 1},
	} {
		stage := fmt.Sprintf("{q}:resque-expire:committed:%d", n)
		var keys []string
		var entries []string
		for i := 0; i < 4; i++ {
			key := f.layout.Expiration(fmt.Sprintf("j%d-%d", n, i))
			v := "100"
			if s, ok := tc.judged[i]; ok {
				v = s
			}
			f.rdb.Set(f.ctx, key, v, 0)
			keys = append(keys, key)
			entries = append(entries, stagedEntry(key, v, fmt.Sprintf("2:j%d0 0 0 0", i)))
		}
		for _, e := range entries {
			f.rdb.RPush(f.ctx, stage, e)
		}
		if tc.change != nil {
			tc.change(keys)
		}
		b := r.drainBatch(copyKeys{cStage: stage}, entries)
		got, err := r.requests.Run(f.ctx, f.rdb, drainKeysScript, b.keys, b.args...).Int()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i, key := range keys {
			exists := f.rdb.Exists(f.ctx, key).Val() == 1
			if want := slices.Contains(tc.kept, i); exists != want {
				t.Errorf("%s: key %d exists %v, want %v", tc.name, i, exists, want)
			}
		}
		if want := len(keys) - len(tc.kept) - tc.gone; got != want {
			t.Errorf("%s: the script says %d deleted, want %d", tc.name, got, want)
		}
		if l := f.rdb.LLen(f.ctx, stage).Val(); l != 0 {
			t.Errorf("%s: %d entries left staged", tc.name, l)
		}
	}
}
