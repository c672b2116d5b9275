// Command sample fills a Redis with the project's sample Resque data set
// (internal/sample), for `make demo` and for trying the tool by hand. It
// refuses any address that is not loopback.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/sample"
)

func main() {
	url := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL (loopback only)")
	ns := flag.String("namespace", "resque", "Resque namespace")
	jobs := flag.Int("jobs", 0, "with -bench: number of jobs")
	bench := flag.Bool("bench", false, "fill the benchmark data set instead of the demo one")
	expired := flag.Float64("expired", -1, "with -bench: fraction of expired jobs (default the benchmark's 0.5)")
	flag.Parse()
	if err := run(*url, *ns, *bench, *jobs, *expired); err != nil {
		fmt.Fprintln(os.Stderr, "sample:", err)
		os.Exit(1)
	}
}

func run(url, ns string, bench bool, jobs int, expired float64) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(opt.Addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("refusing to fill %s: sample data only goes to a loopback Redis", host)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	spec := sample.Demo(time.Now())
	if bench {
		spec = sample.Bench(jobs, time.Now())
		if expired >= 0 {
			spec.Expired, spec.Missing = expired, min(spec.Missing, 1-expired)
		}
	}
	st, err := sample.Fill(context.Background(), rdb, resque.MustLayout(ns, ""), spec)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stderr).Encode(st)
}
