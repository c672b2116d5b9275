package redistest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestDump checks what a dump holds for every type, that keep filters it,
// and that DiffDumps sees each kind of change, byte-level ones included.
func TestDump(t *testing.T) {
	rdb := Client(t, Start(t))
	ctx := context.Background()
	p := rdb.TxPipeline()
	p.Set(ctx, "s", "a b", 0)
	p.Set(ctx, "bin", "\xff\x00", time.Hour)
	p.RPush(ctx, "l", "x", "y z")
	p.SAdd(ctx, "set", "b", "a")
	p.ZAdd(ctx, "z", redis.Z{Score: 0.1, Member: "m"}, redis.Z{Score: 2, Member: "n"})
	p.HSet(ctx, "h", "f2", "2", "f1", "1")
	p.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "1-1", Values: []string{"k", "v"}})
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	d := Dump(t, rdb, nil)
	want := map[string]string{
		"s":   `string ttl=false "a b"`,
		"bin": `string ttl=true "\xff\x00"`,
		"l":   `list ttl=false ["x" "y z"]`,
		"set": `set ttl=false ["a" "b"]`,
		"z":   `zset ttl=false ["m":0.1 "n":2]`,
		"h":   `hash ttl=false {"f1":"1" "f2":"2"}`,
	}
	for k, w := range want {
		if d[k] != w {
			t.Errorf("%s: %s, want %s", k, d[k], w)
		}
	}
	if !strings.HasPrefix(d["st"], `stream ttl=false dump="`) || len(d) != len(want)+1 {
		t.Errorf("dump %q", d)
	}
	if got := Dump(t, rdb, func(k string) bool { return k == "l" }); len(got) != 1 || got["l"] != want["l"] {
		t.Errorf("kept %q", got)
	}
	if diff := DiffDumps(d, Dump(t, rdb, nil)); diff != "" {
		t.Errorf("two dumps of the same database differ:\n%s", diff)
	}

	p = rdb.TxPipeline()
	p.Set(ctx, "bin", "\xfe\x00", time.Hour) // a byte JSON would have lost
	p.Expire(ctx, "l", time.Hour)            // only the TTL
	p.Del(ctx, "set")
	p.HSet(ctx, "new", "f", "v")
	p.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "1-2", Values: []string{"k", "v"}})
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(DiffDumps(d, Dump(t, rdb, nil)), "\n") {
		if !strings.HasPrefix(l, " ") {
			lines = append(lines, l)
		}
	}
	if got, want := strings.Join(lines, "\n"), `changed "bin":
changed "l":
changed "st":
created "new": hash ttl=false {"f":"v"}
deleted "set"`; got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}
