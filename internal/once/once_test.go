package once

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// counter writes and answers a value that tells a second run from the first.
const counter = `return {redis.call('INCR', KEYS[1]), ARGV[1]}`

// retryingClient retries a call whose reply was lost, as the tool's own
// client does.
func retryingClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 3,
		MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRetriedCallRunsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	admin := redistest.Client(t, srv)
	proxy := redistest.StartProxy(t, srv.Addr())
	c := retryingClient(t, proxy.Addr())
	if err := c.Ping(ctx).Err(); err != nil { // connected: the next reply is the call's
		t.Fatal(err)
	}

	// The control: the same body without the envelope runs once per attempt,
	// which proves the proxy really loses a reply after Redis ran the call.
	bare := redis.NewScript(counter)
	if err := bare.Load(ctx, admin).Err(); err != nil {
		t.Fatal(err)
	}
	proxy.LoseReplies(1)
	if _, err := bare.Run(ctx, c, []string{"bare"}, "x").Result(); err != nil {
		t.Fatalf("bare run: %v", err)
	}
	if n, _ := admin.Get(ctx, "bare").Int(); n < 2 {
		t.Fatalf("the bare script ran %d times: no reply was lost, so this test proves nothing", n)
	}

	s := New(counter)
	if err := s.Load(ctx, admin); err != nil {
		t.Fatal(err)
	}
	proxy.LoseReplies(1)
	req := NewRequests("req:1")
	got, err := req.Run(ctx, c, s, []string{"guarded"}, "x").Slice()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n, _ := admin.Get(ctx, "guarded").Int(); n != 1 {
		t.Errorf("the guarded script ran %d times, want 1", n)
	}
	if len(got) != 2 || got[0] != int64(1) || got[1] != "x" {
		t.Errorf("answer %v, want [1 x]", got)
	}
	if ttl := admin.PTTL(ctx, "req:1").Val(); ttl <= 0 || ttl > Keep {
		t.Errorf("requests hash TTL %v, want (0, %v]", ttl, Keep)
	}
	if err := req.Done(ctx, admin); err != nil || admin.Exists(ctx, "req:1").Val() != 0 {
		t.Errorf("Done left the requests hash (%v)", err)
	}
}

func TestAnswersRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	for _, tc := range []struct {
		name, body string
	}{
		{"integer", `redis.call('SET', KEYS[1], 'v'); return 7`},
		{"array", `redis.call('SET', KEYS[1], 'v'); return {1, 0, 2}`},
		{"empty array", `redis.call('SET', KEYS[1], 'v'); return {}`},
		{"string", `redis.call('SET', KEYS[1], 'v'); return 'done'`},
		{"nil", `redis.call('SET', KEYS[1], 'v'); return nil`},
		{"status", `return redis.call('SET', KEYS[1], 'v')`},
	} {
		s := New(tc.body)
		first := NewRequests("req:"+tc.name).Run(ctx, rdb, s, []string{"k"})
		// The retry: the same call, sent again.
		again := s.s.Run(ctx, rdb, []string{"k", "req:" + tc.name}, 1, Keep.Milliseconds())
		if fmt.Sprint(first.Val(), first.Err()) != fmt.Sprint(again.Val(), again.Err()) {
			t.Errorf("%s: first answer %v (%v), the retry's %v (%v)", tc.name, first.Val(), first.Err(), again.Val(), again.Err())
		}
	}
}

func TestErrorsAreNotRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	s := New(`if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('ERR not yet') end return 1`)
	call := func() *redis.Cmd {
		return s.s.Run(ctx, rdb, []string{"k", "req:e"}, 1, Keep.Milliseconds())
	}
	if err := call().Err(); err == nil {
		t.Fatal("want the refusal")
	}
	if rdb.Exists(ctx, "req:e").Val() != 0 {
		t.Fatal("a refusal was recorded: the retry after a fix would repeat it")
	}
	rdb.Set(ctx, "k", "1", 0)
	if n, err := call().Int(); err != nil || n != 1 {
		t.Fatalf("after the fix: %d, %v", n, err)
	}
}

func TestRefusesWithoutLeaveToRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	admin := redistest.Client(t, srv)
	if err := admin.Do(ctx, "ACL", "SETUSER", "t", "on", ">pw", "~k", "~req:*", "+@all", "-hset").Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "t", Password: "pw"})
	defer c.Close()
	err := NewRequests("req:x").Run(ctx, c, New(`return redis.call('INCR', KEYS[1])`), []string{"k"}).Err()
	if err == nil || !redis.HasErrorPrefix(err, "NOPERM") {
		t.Fatalf("err %v, want NOPERM", err)
	}
	if admin.Exists(ctx, "k").Val() != 0 {
		t.Fatal("the body ran although its answer could not be recorded")
	}
}

// TestPermissionHelpers: denied names the first command the user may not
// run, denied_keys the first key of a range the user may not touch, and
// both answer nil (the body goes on) when everything is allowed.
func TestPermissionHelpers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	admin := redistest.Client(t, srv)
	// Every key for the scripts, DEL only on a:* (a selector).
	if err := admin.Do(ctx, "ACL", "SETUSER", "limited", "on", ">pw", "resetkeys", "~*", "-@all", "+evalsha", "+eval",
		"+script|load", "+hget", "+hset", "+pexpire", "+get", "(~a:* +del)").Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "limited", Password: "pw"})
	t.Cleanup(func() { _ = c.Close() })
	body := New(`local r = denied({{'get', KEYS[1]}, {ARGV[1], KEYS[1]}}, 'tested') or denied_keys('del', 1, #KEYS, 'tested')
if r then return r end
return 'allowed'`)
	req := NewRequests("a:requests")
	for _, tc := range []struct {
		name string
		keys []string
		cmd  string
		want string
	}{
		{"everything allowed", []string{"a:1", "a:2"}, "del", "allowed"},
		{"a command refused", []string{"a:1"}, "set", "NOPERM resque-expire: this user may not run SET on a:1; nothing was tested"},
		{"a key refused among several", []string{"a:1", "b:2", "a:3"}, "del", "NOPERM resque-expire: this user may not run DEL on b:2; nothing was tested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := req.Run(ctx, c, body, tc.keys, tc.cmd).Result()
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %v, want %q", got, tc.want)
			}
		})
	}
}
