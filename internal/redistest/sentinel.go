package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
)

// SentinelOptions configures StartSentinel.
type SentinelOptions struct {
	// MasterName is the name the Sentinels monitor the master under
	// (default "resque-master").
	MasterName string
	// Password is the master's and the replica's requirepass (and their
	// masterauth, and the Sentinels' auth-pass); "" for none.
	Password string
	// SentinelPassword is the Sentinels' own requirepass (and the
	// sentinel-pass they use among themselves); "" for none.
	SentinelPassword string
	// Sentinels is how many Sentinels to start (default 3).
	Sentinels int
}

// Sentinel is a Redis master, one replica and a few Sentinels watching
// them, all throwaway processes on loopback free ports, each in its own
// temp dir, stopped on t.Cleanup. Failovers are quick: a master is down
// after 1s without an answer and a failover times out after 2s.
type Sentinel struct {
	Name             string
	Password         string
	SentinelPassword string
	// Servers are the master and the replica as started (the first is
	// the master until a failover).
	Servers   []*redisserver.Server
	Sentinels []*redisserver.Server
}

// StartSentinel starts the master, waits for the replica to be in sync,
// then starts the Sentinels and waits until each knows the replica and the
// other Sentinels, so that SENTINEL FAILOVER can work at once. It fails the
// test if redis-server is missing (redis-server --sentinel is Sentinel: no
// separate binary is needed).
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	if o.MasterName == "" {
		o.MasterName = "resque-master"
	}
	if o.Sentinels == 0 {
		o.Sentinels = 3
	}
	if _, err := redisserver.LookPath(""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := &Sentinel{Name: o.MasterName, Password: o.Password, SentinelPassword: o.SentinelPassword}
	s.Servers = startReplicated(t, ctx, o.Password)
	conf, extra := sentinelConfig(o, s.Servers[0].Port())
	s.Sentinels = startSentinels(t, ctx, o.Sentinels, conf, extra)
	for i := range s.Sentinels {
		s.waitKnown(t, ctx, i, s.Servers[1].Port(), o.Sentinels-1)
	}
	return s
}

// startReplicated starts a master and a replica of it, both with password
// (if any), and waits until the replica is in sync.
func startReplicated(t testing.TB, ctx context.Context, password string) []*redisserver.Server {
	t.Helper()
	// A replica syncs at once (Redis 7 waits 5s for more replicas to
	// share a diskless sync by default).
	auth := []string{"--repl-diskless-sync-delay", "0"}
	if password != "" {
		auth = append(auth, "--requirepass", password, "--masterauth", password)
	}
	master := start(t, redisserver.Options{ExtraArgs: auth})
	replica := start(t, redisserver.Options{ExtraArgs: append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port())}, auth...)})
	rc := serverClient(t, replica, password)
	poll(t, ctx, "the replica to sync with the master", func() (bool, string) {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(info, "master_link_status:up"), info
	})
	return []*redisserver.Server{master, replica}
}

// sentinelConfig is the configuration of a Sentinel monitoring the master
// on masterPort, quick to fail over, and the command-line arguments that
// set the Sentinel's own password.
func sentinelConfig(o SentinelOptions, masterPort int) (conf string, args []string) {
	conf = fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 2000\n"+
		"sentinel parallel-syncs %[1]s 1\n", o.MasterName, masterPort)
	if o.Password != "" {
		conf += fmt.Sprintf("sentinel auth-pass %s %s\n", o.MasterName, o.Password)
	}
	if o.SentinelPassword != "" {
		conf += fmt.Sprintf("sentinel sentinel-pass %s\n", o.SentinelPassword)
		args = []string{"--requirepass", o.SentinelPassword}
	}
	return conf, args
}

// startSentinels starts n Sentinels at once, each stopped on t.Cleanup.
func startSentinels(t testing.TB, ctx context.Context, n int, conf string, args []string) []*redisserver.Server {
	t.Helper()
	sentinels := make([]*redisserver.Server, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range sentinels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sentinels[i], errs[i] = redisserver.Start(ctx, redisserver.Options{Config: conf, Sentinel: true, ExtraArgs: args})
		}()
	}
	wg.Wait()
	for i, srv := range sentinels {
		if srv != nil {
			t.Cleanup(func() {
				if err := srv.Stop(); err != nil {
					t.Errorf("stop sentinel: %v", err)
				}
			})
		}
		if errs[i] != nil {
			t.Fatalf("start sentinel: %v", errs[i])
		}
	}
	return sentinels
}

// waitKnown waits until Sentinel i knows the replica on replicaPort, in
// sync, and the others other Sentinels.
func (s *Sentinel) waitKnown(t testing.TB, ctx context.Context, i, replicaPort, others int) {
	t.Helper()
	sc := s.Client(t, i)
	poll(t, ctx, "Sentinel "+s.Sentinels[i].Addr()+" to know the replica and the other Sentinels", func() (bool, string) {
		reps, err := sc.Replicas(ctx, s.Name).Result()
		if err != nil {
			return false, err.Error()
		}
		ok := false
		for _, r := range reps {
			if r["port"] == strconv.Itoa(replicaPort) && r["flags"] == "slave" && r["master-link-status"] == "ok" {
				ok = true
			}
		}
		known, err := sc.Sentinels(ctx, s.Name).Result()
		if err != nil {
			return false, err.Error()
		}
		return ok && len(known) == others, fmt.Sprintf("replicas %v, %d other sentinels", reps, len(known))
	})
}

// start starts one redis-server stopped on t.Cleanup.
func start(t testing.TB, o redisserver.Options) *redisserver.Server {
	t.Helper()
	srv, err := redisserver.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop redis-server: %v", err)
		}
	})
	return srv
}

// poll calls cond every 50ms until it is true, failing the test with its
// last detail when ctx ends.
func poll(t testing.TB, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, detail := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last: %s)", what, ctx.Err(), detail)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func serverClient(t testing.TB, srv *redisserver.Server, password string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: password, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Addrs returns the Sentinels' addresses, comma-separated, as
// --sentinel-addrs takes them.
func (s *Sentinel) Addrs() string {
	var out []string
	for _, srv := range s.Sentinels {
		out = append(out, srv.Addr())
	}
	return strings.Join(out, ",")
}

// Client returns a client of Sentinel i, closed on t.Cleanup.
func (s *Sentinel) Client(t testing.TB, i int) *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[i].Addr(), Password: s.SentinelPassword, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// MasterAddr asks Sentinel 0 for the master's address.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0].Addr(), Password: s.SentinelPassword, DisableIdentity: true})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(context.Background(), s.Name).Result()
	if err != nil {
		t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME %s: %v", s.Name, err)
	}
	return net.JoinHostPort(hp[0], hp[1])
}

// Master returns the server that is the master now, by Sentinel 0.
func (s *Sentinel) Master(t testing.TB) *redisserver.Server {
	t.Helper()
	addr := s.MasterAddr(t)
	for _, srv := range s.Servers {
		if srv.Addr() == addr {
			return srv
		}
	}
	t.Fatalf("the master %s is none of the servers started", addr)
	return nil
}

// MasterClient returns a client of the current master (by Sentinel 0),
// closed on t.Cleanup.
func (s *Sentinel) MasterClient(t testing.TB) *redis.Client {
	t.Helper()
	return serverClient(t, s.Master(t), s.Password)
}

// Failover sends SENTINEL FAILOVER to Sentinel 0 and returns at once.
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0].Addr(), Password: s.SentinelPassword, DisableIdentity: true})
	defer c.Close()
	if err := c.Failover(context.Background(), s.Name).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER %s: %v", s.Name, err)
	}
}

// WaitFailedOver waits (up to timeout) until every Sentinel names a master
// other than old and that server says it is a master, and returns it. (The
// old master, if it is still running, becomes a replica of the new one some
// 8s later, when Sentinel reconfigures it; this does not wait for that.)
func (s *Sentinel) WaitFailedOver(t testing.TB, old string, timeout time.Duration) *redisserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var newSrv *redisserver.Server
	poll(t, ctx, "the failover away from "+old, func() (bool, string) {
		addrs := map[string]bool{}
		for i := range s.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[i].Addr(), Password: s.SentinelPassword, DisableIdentity: true, MaxRetries: -1})
			hp, err := c.GetMasterAddrByName(ctx, s.Name).Result()
			_ = c.Close()
			if err != nil {
				return false, err.Error()
			}
			addrs[net.JoinHostPort(hp[0], hp[1])] = true
		}
		if len(addrs) != 1 || addrs[old] {
			return false, fmt.Sprintf("sentinels name %v", addrs)
		}
		for _, srv := range s.Servers {
			if addrs[srv.Addr()] {
				newSrv = srv
			}
		}
		if newSrv == nil {
			return false, fmt.Sprintf("sentinels name %v, none of the servers started", addrs)
		}
		c := redis.NewClient(&redis.Options{Addr: newSrv.Addr(), Password: s.Password, DisableIdentity: true, MaxRetries: -1})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(info, "role:master"), info
	})
	return newSrv
}
