// Command demo shows resque-expire doing its main job on a throwaway Redis:
// it starts redis-server on a free loopback port in a temp dir, fills it
// with the sample Resque data set (internal/sample), runs the real binary —
// inspect, list --state expired, sweep --dry-run, sweep, inspect again — and
// stops the server. `make demo` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/sample"
)

func main() {
	bin := flag.String("bin", "bin/resque-expire", "the resque-expire binary to run")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := redisserver.Start(ctx, redisserver.Options{})
	if err != nil {
		return err
	}
	defer srv.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	st, err := sample.Fill(ctx, rdb, resque.MustLayout("resque", ""), sample.Demo(time.Now()))
	if err != nil {
		return fmt.Errorf("fill sample data: %w", err)
	}
	fmt.Printf("Started a throwaway redis-server at %s and filled it with %d queued and %d delayed sample jobs\n",
		srv.Addr(), st.Jobs, st.Delayed)
	fmt.Printf("(states: %d expired, %d live, %d missing, %d unidentified, %d invalid), idempotency keys and 2 failures.\n",
		st.ByState["expired"], st.ByState["live"], st.ByState["missing"], st.ByState["unidentified"], st.ByState["invalid"])

	archive := filepath.Join(srv.Dir(), "removed.jsonl")
	steps := [][]string{
		{"inspect"},
		{"list", "--state", "expired", "--limit", "8"},
		{"sweep", "--dry-run", "--log-level", "warn"},
		{"sweep", "--yes", "--archive", archive, "--log-level", "warn"},
		{"inspect"},
	}
	for _, args := range steps {
		full := append([]string{"--redis", srv.URL()}, args...)
		fmt.Printf("\n$ resque-expire %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, bin, full...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), "REDIS_URL=")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("resque-expire %s: %w", strings.Join(args, " "), err)
		}
	}
	if b, err := os.ReadFile(archive); err == nil {
		fmt.Printf("\nThe archive holds %d removed jobs; `resque-expire restore %s` would put them back.\n",
			strings.Count(string(b), "\n"), filepath.Base(archive))
	}
	fmt.Println("\nStopped the throwaway redis-server. Nothing outside it was touched.")
	return nil
}
