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

	// A replica syncs at once (Redis 7 waits 5s for more replicas to
	// share a diskless sync by default).
	auth := []string{"--repl-diskless-sync-delay", "0"}
	if o.Password != "" {
		auth = append(auth, "--requirepass", o.Password, "--masterauth", o.Password)
	}
	master := start(t, redisserver.Options{ExtraArgs: auth})
	replica := start(t, redisserver.Options{ExtraArgs: append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port())}, auth...)})
	s.Servers = []*redisserver.Server{master, replica}
	rc := serverClient(t, replica, o.Password)
	poll(t, ctx, "the replica to sync with the master", func() (bool, string) {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(info, "master_link_status:up"), info
	})

	conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 2000\n"+
		"sentinel parallel-syncs %[1]s 1\n", o.MasterName, master.Port())
	if o.Password != "" {
		conf += fmt.Sprintf("sentinel auth-pass %s %s\n", o.MasterName, o.Password)
	}
	var extra []string
	if o.SentinelPassword != "" {
		conf += fmt.Sprintf("sentinel sentinel-pass %s\n", o.SentinelPassword)
		extra = []string{"--requirepass", o.SentinelPassword}
	}
	s.Sentinels = make([]*redisserver.Server, o.Sentinels)
	var wg sync.WaitGroup
	errs := make([]error, o.Sentinels)
	for i := range s.Sentinels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Sentinels[i], errs[i] = redisserver.Start(ctx, redisserver.Options{Config: conf, Sentinel: true, ExtraArgs: extra})
		}()
	}
	wg.Wait()
	for i, srv := range s.Sentinels {
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
	for i := range s.Sentinels {
		sc := s.Client(t, i)
		poll(t, ctx, "Sentinel "+s.Sentinels[i].Addr()+" to know the replica and the other Sentinels", func() (bool, string) {
			reps, err := sc.Replicas(ctx, o.MasterName).Result()
			if err != nil {
				return false, err.Error()
			}
			ok := false
			for _, r := range reps {
				if r["port"] == strconv.Itoa(replica.Port()) && r["flags"] == "slave" && r["master-link-status"] == "ok" {
					ok = true
				}
			}
			others, err := sc.Sentinels(ctx, o.MasterName).Result()
			if err != nil {
				return false, err.Error()
			}
			return ok && len(others) == o.Sentinels-1, fmt.Sprintf("replicas %v, %d other sentinels", reps, len(others))
		})
	}
	return s
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
