package redistest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Dump returns every key of rdb's database whose name satisfies keep (nil
// keep: every key), found with SCAN, as its type, whether it has a TTL and
// its whole content: equal dumps mean no key was created, deleted or
// changed. Content is written losslessly (Go-quoted), sets and hashes in
// sorted order, zset scores exactly; a type other than string, list, set,
// zset and hash is recorded by its DUMP serialization.
func Dump(t testing.TB, rdb redis.Cmdable, keep func(string) bool) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if keep != nil && !keep(k) {
			continue
		}
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("dump %q: %v", k, err)
		}
		v, err := dumpValue(ctx, rdb, k, typ)
		if err != nil && err != redis.Nil {
			t.Fatalf("dump %q: %v", k, err)
		}
		out[k] = fmt.Sprintf("%s ttl=%v %s", typ, rdb.PTTL(ctx, k).Val() > 0, v)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpValue is the whole content of key k of type typ, written losslessly.
func dumpValue(ctx context.Context, rdb redis.Cmdable, k, typ string) (string, error) {
	switch typ {
	case "none": // gone between SCAN and TYPE
		return "", nil
	case "string":
		v, err := rdb.Get(ctx, k).Result()
		return strconv.Quote(v), err
	case "list":
		v, err := rdb.LRange(ctx, k, 0, -1).Result()
		return fmt.Sprintf("%q", v), err
	case "set":
		v, err := rdb.SMembers(ctx, k).Result()
		sort.Strings(v)
		return fmt.Sprintf("%q", v), err
	case "zset":
		v, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		parts := make([]string, len(v))
		for i, z := range v {
			parts[i] = fmt.Sprintf("%q:%s", z.Member, strconv.FormatFloat(z.Score, 'g', -1, 64))
		}
		return "[" + strings.Join(parts, " ") + "]", err
	case "hash":
		v, err := rdb.HGetAll(ctx, k).Result()
		fields := make([]string, 0, len(v))
		for f := range v {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		parts := make([]string, len(fields))
		for i, f := range fields {
			parts[i] = fmt.Sprintf("%q:%q", f, v[f])
		}
		return "{" + strings.Join(parts, " ") + "}", err
	default:
		v, err := rdb.Dump(ctx, k).Result()
		return "dump=" + strconv.Quote(v), err
	}
}

// DiffDumps describes the keys that differ between two dumps, one line each
// ("deleted", "changed" with both values, "created"), sorted; "" when they
// are equal.
func DiffDumps(before, after map[string]string) string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, fmt.Sprintf("deleted %q", k))
		} else if w != v {
			d = append(d, fmt.Sprintf("changed %q:\n  was %s\n  now %s", k, v, w))
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			d = append(d, fmt.Sprintf("created %q: %s", k, v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// SameDump fails the test, naming the keys deleted, changed and created,
// if two dumps differ; what names the code that ran between them.
func SameDump(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	if d := DiffDumps(before, after); d != "" {
		t.Errorf("%s touched keys it must leave alone:\n%s", what, d)
	}
}
