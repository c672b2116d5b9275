package e2e

// Sentinel: the binary finds the master through real Sentinels (a master,
// a replica and three Sentinels on loopback, internal/redistest), with the
// master's password in --redis and the Sentinels' own password apart; its
// errors tell an unknown master name and refused Sentinel credentials
// apart from unreachable Sentinels; and a failover in the middle of a sweep
// loses nothing live and leaves no marker.

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// sntInspect is the part of `inspect --format json` compared here.
type sntInspect struct {
	Totals struct {
		Jobs    int64 `json:"jobs"`
		Expired int64 `json:"expired"`
		Live    int64 `json:"live"`
	} `json:"totals"`
}

// TestSentinelInspectAndSweep: inspect and sweep through Sentinel see and
// change the master, with the master's password in the URL and the
// Sentinels' password in REDIS_SENTINEL_PASSWORD or --sentinel-password;
// neither password is ever printed, even at debug level.
func TestSentinelInspectAndSweep(t *testing.T) {
	t.Parallel()
	const masterPW, sentinelPW = "Master-pw-4711", "Sentinel-pw-0815"
	sn := redistest.StartSentinel(t, redistest.SentinelOptions{MasterName: "resque-main", Password: masterPW, SentinelPassword: sentinelPW})
	master := sn.MasterClient(t)
	fill(t, master, sweepSpec())
	direct := "redis://:" + masterPW + "@" + sn.Master(t).Addr() + "/0"
	url := "redis://:" + masterPW + "@resque-main/0" // the host is not used: Sentinel names the master
	secretFree := func(r result) {
		t.Helper()
		for _, s := range []string{masterPW, sentinelPW, "Wrong-sentinel-pw"} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("a password (%q) was printed:\n%s", s, r)
			}
		}
	}
	via := []string{"--sentinel-master", "resque-main", "--sentinel-addrs", sn.Addrs(), "--log-level", "debug"}
	env := []string{"REDIS_URL=" + url, "REDIS_SENTINEL_PASSWORD=" + sentinelPW}

	var want, got sntInspect
	runEnv(t, nil, "", "--redis", direct, "inspect", "--format", "json").expect(t, 0).decode(t, &want)
	r := runEnv(t, env, "", append(via, "inspect", "--format", "json")...).expect(t, 0)
	secretFree(r)
	r.decode(t, &got)
	if got != want || want.Totals.Expired == 0 {
		t.Errorf("inspect via Sentinel = %+v, directly = %+v", got, want)
	}
	// The same with flags instead of the environment.
	r = runEnv(t, nil, "", append(via, "--redis", url, "--sentinel-password", sentinelPW, "sweep", "--dry-run")...).expect(t, 0)
	secretFree(r)

	// Unknown master name, missing and wrong Sentinel password: each says so.
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"--sentinel-master", "no-such-master", "--sentinel-addrs", sn.Addrs(), "inspect"}, `no Sentinel knows a master named "no-such-master"`},
		{[]string{"REDIS_URL=" + url}, append(via, "inspect"), "refused the --redis URL's password, which the Sentinels are sent when --sentinel-password is not given"},
		{[]string{"REDIS_URL=redis://resque-main/0"}, append(via, "inspect"), "it requires a password: give it with --sentinel-password or REDIS_SENTINEL_PASSWORD"},
		{[]string{"REDIS_URL=" + url, "REDIS_SENTINEL_PASSWORD=Wrong-sentinel-pw"}, append(via, "inspect"), "refused --sentinel-username/--sentinel-password"},
		{[]string{"REDIS_URL=redis://:wrong-master-pw@x/0", "REDIS_SENTINEL_PASSWORD=" + sentinelPW}, append(via, "inspect"), "the master Sentinel named, " + sn.Master(t).Addr() + ", said: WRONGPASS"},
	} {
		start := time.Now()
		r := runEnv(t, c.env, "", append([]string{"--timeout", "2s"}, c.args...)...)
		fltExpectErrorLog(t, r, 1, c.want)
		secretFree(r)
		if took := time.Since(start); took > 2*time.Second+connSlack {
			t.Errorf("%v took %v", c.args, took)
		}
	}

	// A real sweep through Sentinel empties the master of expired jobs.
	r = runEnv(t, env, "", append(via, "sweep", "--yes", "--format", "json")...).expect(t, 0)
	secretFree(r)
	var after sntInspect
	runEnv(t, nil, "", "--redis", direct, "inspect", "--format", "json").expect(t, 0).decode(t, &after)
	if after.Totals.Expired != 0 || after.Totals.Live != want.Totals.Live {
		t.Errorf("after the sweep via Sentinel: %+v (before %+v)", after, want)
	}
}

// TestSentinelFailoverMidSweep: SENTINEL FAILOVER while a sweep of 20k
// jobs runs through Sentinel. The sweep exits 0 (it followed the master)
// or 1 with one error line; either way every live job is still queued
// exactly once, every job left is one that was seeded, and no marker is
// left in any list. A rerun through Sentinel then removes the rest.
func TestSentinelFailoverMidSweep(t *testing.T) {
	t.Parallel()
	// The master wants a password, the Sentinels none (a common setup,
	// which used to fail: the master's password was sent to the Sentinels).
	sn := redistest.StartSentinel(t, redistest.SentinelOptions{MasterName: "failover-main", Password: "failover-master-pw"})
	oldMaster := sn.Master(t)
	d := fltSeed(t, sn.MasterClient(t), "fo", []string{"fo_a", "fo_b"}, 20000, func(i int) bool { return i%3 == 0 }, 0)
	// Let the replica catch up before the failover, so that the test is
	// about the sweep, not about writes Redis lost in an async failover.
	if err := sn.MasterClient(t).Do(context.Background(), "WAIT", 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	args := []string{"--redis", "redis://:failover-master-pw@failover-main/0", "--sentinel-master", "failover-main", "--sentinel-addrs", sn.Addrs(),
		"--format", "json", "--log-level", "warn", "sweep", "--yes", "--batch", "2", "--archive", archive, "--lock-ttl", "3s"}
	start := time.Now()
	p := spawn(t, nil, args...)
	fltWaitFile(t, p, archive, 20<<10)
	sn.Failover(t)
	t.Logf("failover requested %v into the sweep", time.Since(start).Round(time.Millisecond))
	first := p.wait(t)
	t.Logf("the sweep ended after %v", time.Since(start).Round(time.Millisecond))
	switch first.code {
	case 0:
		fltNoCrash(t, first)
		t.Log("the sweep followed the master through the failover")
	case 1:
		line := fltExpectError(t, first, 1)
		t.Logf("the sweep failed cleanly over the failover: %s", line)
	default:
		t.Fatalf("want exit 0 or 1, got %s", first)
	}
	newMaster := sn.WaitFailedOver(t, oldMaster.Addr(), 30*time.Second)
	// Only the sweep runs scripts: calls on the new master show that the
	// sweep was still running when the master changed.
	stats, err := redistest.Client(t, newMaster).Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	scripts := 0
	for _, l := range strings.Split(stats, "\n") {
		if rest, ok := strings.CutPrefix(l, "cmdstat_evalsha:calls="); ok {
			scripts, _ = strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		}
	}
	t.Logf("the sweep ran %d removal scripts on the new master", scripts)
	if first.code == 0 && scripts == 0 {
		t.Errorf("the sweep ended before the master changed: the test proves nothing (make the sweep longer)")
	}
	t.Logf("failed over from %s to %s at %v", oldMaster.Addr(), newMaster.Addr(), time.Since(start).Round(time.Millisecond))

	check := func(final bool) {
		t.Helper()
		present := fltLists(t, redistest.Client(t, newMaster), d) // fails on any marker
		lost := 0
		for id, pl := range d.live {
			if present[pl] != 1 {
				if lost++; lost <= 5 {
					t.Errorf("live job %s is queued %d times, want once", id, present[pl])
				}
			}
		}
		if lost > 0 {
			t.Errorf("%d of %d live jobs lost or duplicated", lost, len(d.live))
		}
		expiredLeft := 0
		seeded := map[string]bool{}
		for _, pl := range d.live {
			seeded[pl] = true
		}
		for _, pl := range d.expired {
			seeded[pl] = true
			expiredLeft += present[pl]
		}
		for pl := range present {
			if !seeded[pl] {
				t.Errorf("a job that was never seeded is queued: %.80q", pl)
			}
		}
		if final && expiredLeft > 0 {
			t.Errorf("%d expired jobs left after the rerun", expiredLeft)
		}
		t.Logf("%d live jobs intact, %d expired jobs left", len(d.live)-lost, expiredLeft)
	}
	check(false)
	r := fltRerun(t, 10*time.Second, args...)
	r.expect(t, 0)
	check(true)
}
