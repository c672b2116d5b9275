package resque_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// An external test package: redistest's seeder imports resque.

// TestPatternsAgainstRedis asks a real Redis which keys the SCAN patterns
// match: exactly the layout's own, never another namespace's.
func TestPatternsAgainstRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	namespaces := []string{"resque", "re[s]que*", "re?que", `we\ird`, "^caret", "x]y", "[!a]", "a*", "*", "{app}", "ns:sub", "bin\xff*"}
	var all []string
	for _, ns := range namespaces {
		l := resque.MustLayout(ns, "")
		all = append(all, l.Queue("q1"), l.Queue("*"), l.Expiration("id1"), l.Expiration("*"), ns+":loners:queue:q1:job:abc")
	}
	// Decoys: keys that only look like the namespaces' keys.
	all = append(all, "resque:queue", "reXque:queue:q", "rsque:queue:q", "weird:queue:q", "caret:queue:q", "xy:queue:q",
		"b:queue:q", "abc:queue:q", "app:queue:q", "ns:queue:q", "bin\xef\xbf\xbd*:queue:q")
	for _, k := range all {
		if err := rdb.Set(ctx, k, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(pattern string) []string {
		var out []string
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			out = append(out, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	for _, ns := range namespaces {
		l := resque.MustLayout(ns, "")
		checks := []struct {
			pattern string
			want    []string
		}{
			{l.QueuePattern(), []string{l.Queue("q1"), l.Queue("*")}},
			{l.ExpirationPattern(), []string{l.Expiration("id1"), l.Expiration("*")}},
			{l.LonerPattern(), []string{ns + ":loners:queue:q1:job:abc"}},
		}
		for _, c := range checks {
			sort.Strings(c.want)
			if got := scan(c.pattern); strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("ns %q: SCAN MATCH %q = %q, want %q", ns, c.pattern, got, c.want)
			}
		}
	}
}
