package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/once"
)

// scriptNames maps the SHA1 of every Lua script of the module, as Redis
// knows it (the file itself, or wrapped in internal/once's envelope), to
// the script's file name, so that a slow EVALSHA says which script it was.
// It reads the .lua files under dir (the module's root, where make bench
// runs); a file it cannot find leaves its script unnamed.
func scriptNames(dir string) map[string]string {
	names := map[string]string{}
	for _, pattern := range []string{"*/*.lua", "internal/*/*.lua"} {
		files, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			name := filepath.Base(f)
			names[sha1Hex(string(b))] = name
			names[sha1Hex(once.Source(string(b)))] = name
		}
	}
	return names
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// commandName names a SLOWLOG entry: the command, and for a script the
// script's file when known.
func commandName(args []string, scripts map[string]string) string {
	if len(args) == 0 {
		return "?"
	}
	what := strings.ToUpper(args[0])
	if what != "EVALSHA" && what != "EVAL" {
		return what
	}
	if len(args) > 1 {
		if name, ok := scripts[strings.ToLower(args[1])]; ok {
			return "EVALSHA " + name
		}
	}
	return what + " (script)"
}

// slowTotal is what SLOWLOG recorded of one command or script in a run.
type slowTotal struct {
	name  string
	count int
	total time.Duration
	worst time.Duration
}

// slowTotals sums SLOWLOG durations by name, largest total first.
func slowTotals(byName map[string]*slowTotal) []slowTotal {
	out := make([]slowTotal, 0, len(byName))
	for _, t := range byName {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].total > out[j].total })
	return out
}

// knownScripts names the module's scripts by SHA1 (scriptNames).
var knownScripts map[string]string

// redisCPU returns Redis's CPU time so far (used_cpu_user + used_cpu_sys,
// seconds), or -1 when INFO cannot be read.
func redisCPU(ctx context.Context, rdb *redis.Client) float64 {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return -1
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// printDetail prints to stderr what SLOWLOG recorded during the run just
// made (logs), summed by command and script: where Redis's time went.
func printDetail(logs []redis.SlowLog, args []string) {
	byName := map[string]*slowTotal{}
	for _, l := range logs {
		name := commandName(l.Args, knownScripts)
		t := byName[name]
		if t == nil {
			t = &slowTotal{name: name}
			byName[name] = t
		}
		t.count++
		t.total += l.Duration
		if l.Duration > t.worst {
			t.worst = l.Duration
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %s: commands ≥ %s, by total:\n", strings.Join(args, " "), slowThreshold)
	for _, t := range slowTotals(byName) {
		fmt.Fprintf(os.Stderr, "bench:   %-28s %6d  total %8.1f ms  worst %6.2f ms\n", t.name, t.count, float64(t.total.Microseconds())/1000, float64(t.worst.Microseconds())/1000)
	}
}
