package redisserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/redistest"
)

// TestSentinelMode: Config and Sentinel start a real Sentinel (redis-server
// --sentinel) that monitors the master named in its config file.
func TestSentinelMode(t *testing.T) {
	t.Parallel()
	master := start(t, redisserver.Options{})
	s := start(t, redisserver.Options{Sentinel: true, Config: fmt.Sprintf("sentinel monitor m1 127.0.0.1 %d 1\n", master.Port())})
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx(t), "m1").Result()
	if err != nil || len(hp) != 2 || hp[1] != fmt.Sprint(master.Port()) {
		t.Fatalf("GET-MASTER-ADDR-BY-NAME = %v, %v; want port %d", hp, err, master.Port())
	}
	if _, err := redisserver.Start(context.Background(), redisserver.Options{Sentinel: true}); err == nil || !strings.Contains(err.Error(), "Config") {
		t.Errorf("Sentinel without Config: %v", err)
	}
}

// TestStartSentinel: the redistest harness starts a master, a replica and
// three Sentinels that agree on the master, and a failover moves it.
func TestStartSentinel(t *testing.T) {
	t.Parallel()
	start := time.Now()
	sn := redistest.StartSentinel(t, redistest.SentinelOptions{Password: "harness-pw", SentinelPassword: "harness-sentinel-pw"})
	t.Logf("up in %v", time.Since(start).Round(time.Millisecond))
	if len(sn.Sentinels) != 3 || len(sn.Servers) != 2 {
		t.Fatalf("%d sentinels, %d servers", len(sn.Sentinels), len(sn.Servers))
	}
	old := sn.MasterAddr(t)
	if old != sn.Servers[0].Addr() {
		t.Fatalf("master %s, want the first server %s", old, sn.Servers[0].Addr())
	}
	if err := sn.MasterClient(t).Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	sn.Failover(t)
	now := sn.WaitFailedOver(t, old, 20*time.Second)
	t.Logf("failed over in %v", time.Since(start).Round(time.Millisecond))
	if now.Addr() != sn.Servers[1].Addr() {
		t.Errorf("new master %s, want the replica %s", now.Addr(), sn.Servers[1].Addr())
	}
	if v, err := sn.MasterClient(t).Get(context.Background(), "k").Result(); v != "v" {
		t.Errorf("the new master lost the key: %q, %v", v, err)
	}
}
