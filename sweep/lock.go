package sweep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/scripts"
)

// DefaultLockTTL is how long a lock outlives a sweep that was killed.
const DefaultLockTTL = 60 * time.Second

// LockHeldError says another run holds the lock.
type LockHeldError struct {
	Key    string
	Holder LockInfo
	// Raw is the lock's value when it could not be decoded.
	Raw string
}

func (e *LockHeldError) Error() string {
	if e.Holder.Token == "" {
		return fmt.Sprintf("another sweep holds the lock %s (value %q)", e.Key, e.Raw)
	}
	return fmt.Sprintf("another sweep holds the lock %s since %s (%s, pid %d); it expires by itself if that run died",
		e.Key, e.Holder.Since.UTC().Format(time.RFC3339), e.Holder.Host, e.Holder.PID)
}

// ErrReadOnly is returned when Redis refuses writes because it is a
// replica: scripts.ErrReadOnly, which every package that writes returns.
var ErrReadOnly = scripts.ErrReadOnly

// ErrLockLost is returned when the lock was taken away during a run.
var ErrLockLost = errors.New("lost the sweep lock while running (it expired or was deleted); stopped")

// LockInfo is what a lock's value records about its holder.
type LockInfo struct {
	Token string    `json:"token"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

// Lock is a held sweep lock, renewed in the background until Release.
type Lock struct {
	rdb   redis.UniversalClient
	key   string
	value string
	ttl   time.Duration

	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	lost   bool
	lostCh chan struct{}
}

// AcquireLock takes the lock with SET NX PX and starts renewing it every
// ttl/3. It returns a *LockHeldError when another run holds it.
func AcquireLock(ctx context.Context, rdb redis.UniversalClient, key string, ttl time.Duration) (*Lock, error) {
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	info := LockInfo{Token: hex.EncodeToString(tok), Host: host, PID: os.Getpid(), Since: time.Now().UTC()}
	b, _ := json.Marshal(info)
	ok, err := rdb.SetNX(ctx, key, string(b), ttl).Result()
	if err != nil {
		if redis.IsReadOnlyError(err) {
			return nil, ErrReadOnly
		}
		return nil, fmt.Errorf("take lock %s: %w", key, err)
	}
	if !ok {
		raw, err := rdb.Get(ctx, key).Result()
		// Our own value means go-redis retried a SET whose reply was lost,
		// and its first attempt took the lock.
		if err != nil || raw != string(b) {
			return nil, lockHeld(ctx, rdb, key, raw, err)
		}
	}
	l := &Lock{rdb: rdb, key: key, value: string(b), ttl: ttl,
		stop: make(chan struct{}), done: make(chan struct{}), lostCh: make(chan struct{})}
	go l.renew()
	return l, nil
}

// lockHeld explains why the lock could not be taken, given what GET said.
func lockHeld(ctx context.Context, rdb redis.UniversalClient, key, raw string, err error) error {
	if inspect.IsWrongType(err) {
		// Not a lock any sweep wrote, and nothing will expire it: not
		// "try again later" (exit 75) but a failure to look at.
		t, _ := rdb.Type(ctx, key).Result()
		return fmt.Errorf("the lock key %s holds a %s, not a sweep lock; no sweep can run until it is deleted", key, t)
	}
	held := &LockHeldError{Key: key}
	if err == nil {
		held.Raw = raw
		_ = json.Unmarshal([]byte(raw), &held.Holder)
	}
	return held
}

func (l *Lock) renew() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
		n, err := lockRenewScript.Run(ctx, l.rdb, []string{l.key}, l.value, l.ttl.Milliseconds()).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			failures = 0
		case err == nil:
			l.markLost()
			return
		default:
			// A network blip: the lock still has up to 2/3 of its TTL.
			if failures++; failures >= 2 {
				l.markLost()
				return
			}
		}
	}
}

func (l *Lock) markLost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lost {
		l.lost = true
		close(l.lostCh)
	}
}

// Lost is closed when the lock could not be renewed.
func (l *Lock) Lost() <-chan struct{} { return l.lostCh }

// Release stops renewing and deletes the lock if it is still ours.
func (l *Lock) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		err = lockReleaseScript.Run(ctx, l.rdb, []string{l.key}, l.value).Err()
	})
	return err
}
