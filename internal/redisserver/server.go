// Package redisserver starts and stops throwaway redis-server processes on
// loopback, for tests, the demo and the benchmark.
//
// Every server binds 127.0.0.1 only, keeps no data on disk (no RDB
// snapshots, no AOF) and, on Linux, is killed by the kernel if the process
// that started it dies.
package redisserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// EnvBin names the environment variable consulted for the redis-server
	// binary when Options.Bin is empty.
	EnvBin = "REDIS_SERVER_BIN"

	defaultBin     = "redis-server"
	startAttempts  = 5
	readyTimeout   = 10 * time.Second
	pollInterval   = 25 * time.Millisecond
	stopTimeout    = 5 * time.Second
	logTailLines   = 20
	restartBackoff = 200 * time.Millisecond
)

// reservedArgs are the options this package always sets itself; they may
// not appear in Options.ExtraArgs (use the Options fields instead).
var reservedArgs = map[string]bool{
	"--bind":      true,
	"--port":      true,
	"--dir":       true,
	"--logfile":   true,
	"--daemonize": true,
}

// Options configures Start.
type Options struct {
	Bin       string   // redis-server binary; "" means $REDIS_SERVER_BIN, else "redis-server" in PATH
	ExtraArgs []string // extra config args, e.g. "--requirepass", "secret", "--maxmemory", "1mb"
	Port      int      // 0 = pick a free loopback port
	Dir       string   // working dir; "" = make a temp dir and remove it on Stop
	LogFile   string   // "" = <dir>/redis.log
	// Config, when not empty, is written to <dir>/redis.conf, which is
	// passed as the config file (ExtraArgs and the managed options still
	// override it). Sentinel needs one: it rewrites it with what it learns.
	Config string
	// Sentinel runs redis-server in Sentinel mode (redis-server --sentinel,
	// the same as redis-sentinel); put the "sentinel monitor ..." lines in
	// Config.
	Sentinel bool
}

// Server is a redis-server child process listening on 127.0.0.1.
// Its methods are safe for concurrent use.
type Server struct {
	bin       string
	extraArgs []string
	password  string
	port      int
	dir       string
	ownDir    bool
	logFile   string
	confFile  string
	sentinel  bool

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result; read only after done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// LookPath resolves the redis-server binary. An empty bin means the value
// of $REDIS_SERVER_BIN, or "redis-server" when that is unset too.
func LookPath(bin string) (string, error) {
	fromEnv := false
	if bin == "" {
		if bin = os.Getenv(EnvBin); bin != "" {
			fromEnv = true
		} else {
			bin = defaultBin
		}
	}
	path, err := exec.LookPath(bin)
	if err == nil {
		return path, nil
	}
	if fromEnv {
		return "", fmt.Errorf("redis-server not found at %s=%q: %w", EnvBin, bin, err)
	}
	if bin != defaultBin {
		return "", fmt.Errorf("redis-server binary %q not found: %w", bin, err)
	}
	return "", errors.New("redis-server not found in PATH: install it (Debian/Ubuntu: apt-get install -y redis-server) or set " + EnvBin)
}

// Start launches redis-server and waits until it answers PING. With
// opts.Port == 0 it picks a free loopback port, and retries with a fresh
// port if the server fails to come up (another process may have taken the
// port in between).
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := LookPath(opts.Bin)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(opts.ExtraArgs); i++ {
		if a := strings.ToLower(opts.ExtraArgs[i]); reservedArgs[a] {
			return nil, fmt.Errorf("redisserver: %s may not be set in ExtraArgs; it is managed by Options", a)
		}
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("redisserver: invalid port %d", opts.Port)
	}

	s := &Server{
		bin:       bin,
		extraArgs: append([]string(nil), opts.ExtraArgs...),
		password:  passwordFrom(opts.ExtraArgs),
		port:      opts.Port,
		sentinel:  opts.Sentinel,
	}
	if opts.Sentinel && opts.Config == "" {
		return nil, errors.New("redisserver: Sentinel needs a Config (the sentinel monitor lines)")
	}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "redisserver-")
		if err != nil {
			return nil, fmt.Errorf("redisserver: make temp dir: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else {
		d, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("redisserver: dir: %w", err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("redisserver: make dir: %w", err)
		}
		s.dir = d
	}
	if opts.Config != "" {
		s.confFile = filepath.Join(s.dir, "redis.conf")
		if err := os.WriteFile(s.confFile, []byte(opts.Config), 0o600); err != nil {
			s.removeOwnDir()
			return nil, fmt.Errorf("redisserver: write config: %w", err)
		}
	}
	s.logFile = filepath.Join(s.dir, "redis.log")
	if opts.LogFile != "" {
		if s.logFile, err = filepath.Abs(opts.LogFile); err != nil {
			s.removeOwnDir()
			return nil, fmt.Errorf("redisserver: log file: %w", err)
		}
	}

	pickPort := s.port == 0
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		if pickPort {
			if s.port, err = freePort(); err != nil {
				s.removeOwnDir()
				return nil, err
			}
		}
		proc, err := s.launch(ctx)
		if err == nil {
			s.proc = proc
			return s, nil
		}
		lastErr = err
		var cerr *configError
		if ctx.Err() != nil || !pickPort || errors.As(err, &cerr) {
			break
		}
	}
	s.removeOwnDir()
	return nil, lastErr
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// URL returns "redis://127.0.0.1:PORT/0". It carries no password; pass that
// to the client separately.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir returns the server's working directory.
func (s *Server) Dir() string { return s.dir }

// Password returns the --requirepass value from ExtraArgs, or "".
func (s *Server) Password() string { return s.password }

// Stop sends SIGTERM, waits up to 5s (then sends SIGKILL), and removes the
// working directory if Start created it. Stopping a stopped server only
// does the cleanup.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if p := s.proc; p != nil {
		s.proc = nil
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("redisserver: SIGTERM: %w", err))
		}
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			if err := killAndWait(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if s.ownDir {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("redisserver: remove dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Kill sends SIGKILL and waits for the process to exit. The working
// directory is kept, so Restart can bring the server back.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	if p == nil {
		return nil
	}
	return killAndWait(p)
}

// Restart starts the server again on the same port and directory, after
// Kill or Stop (a running server is killed first). With persistence off,
// the data is gone.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.proc; p != nil {
		s.proc = nil
		if err := killAndWait(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil { // Stop may have removed it
		return fmt.Errorf("redisserver: make dir: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		if attempt > 0 {
			// The old socket may linger for a moment; the port may not
			// be ours any more, in which case every attempt fails.
			select {
			case <-ctx.Done():
				return lastErr
			case <-time.After(restartBackoff):
			}
		}
		proc, err := s.launch(ctx)
		if err == nil {
			s.proc = proc
			return nil
		}
		lastErr = err
		var cerr *configError
		if ctx.Err() != nil || errors.As(err, &cerr) {
			break
		}
	}
	return lastErr
}

// Version returns redis_version from INFO server.
func (s *Server) Version(ctx context.Context) (string, error) {
	c := s.probeClient()
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("redisserver: INFO server: %w", err)
	}
	if v := infoField(info, "redis_version"); v != "" {
		return v, nil
	}
	return "", errors.New("redisserver: no redis_version in INFO server")
}

// args builds the redis-server command line.
func (s *Server) args() []string {
	var args []string
	if s.confFile != "" {
		args = append(args, s.confFile) // the config file must come first
	}
	if s.sentinel {
		args = append(args, "--sentinel")
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--logfile", s.logFile,
	)
	return append(args, s.extraArgs...)
}

// launch runs redis-server once and waits until it is ready. On failure the
// process is killed and the error carries the tail of the log file.
func (s *Server) launch(ctx context.Context) (*process, error) {
	// redis-server writes startup errors (bad config, ...) to stderr before
	// its log file is open; append them to the log file as well.
	out, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("redisserver: open log file: %w", err)
	}
	var logStart int64 // where this run's output begins in the log file
	if fi, err := out.Stat(); err == nil {
		logStart = fi.Size()
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	out.Close() // the child holds its own copy
	if err != nil {
		return nil, fmt.Errorf("redisserver: start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	if err := s.waitReady(ctx, p); err != nil {
		_ = killAndWait(p)
		log := s.logSince(logStart)
		err = fmt.Errorf("redisserver: redis-server on %s did not come up: %w%s", s.Addr(), err, formatTail(s.logFile, log))
		if strings.Contains(log, "FATAL CONFIG FILE ERROR") {
			err = &configError{err}
		}
		return nil, err
	}
	return p, nil
}

// configError marks a failure that retrying on another port cannot fix.
type configError struct{ error }

func (e *configError) Unwrap() error { return e.error }

// waitReady polls PING until the server answers, the process exits, or
// the deadline passes. A NOAUTH/WRONGPASS answer counts as ready.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	c := s.probeClient()
	defer c.Close()
	pid := strconv.Itoa(p.cmd.Process.Pid)

	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("process exited: %v", p.err)
		}
		// Wait for the port to accept connections before handing over to
		// go-redis, whose pool logs every failed dial.
		err := dialOnce(ctx, s.Addr())
		if err == nil {
			err = c.Ping(ctx).Err()
		}
		switch {
		case err == nil:
			// Make sure it is our process answering, not some other
			// server that owns the port while ours fails to bind.
			info, ierr := c.Info(ctx, "server").Result()
			switch got := infoField(info, "process_id"); {
			case ierr != nil:
				lastErr = ierr
			case got == pid:
				return nil
			default:
				lastErr = fmt.Errorf("port answered by another process (pid %s, want %s)", got, pid)
			}
		case isAuthErr(err):
			// Up, but we cannot check the pid; at least ours must still
			// be running.
			if !p.exited() {
				return nil
			}
		default:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-p.done:
		case <-time.After(pollInterval):
		}
	}
}

// probeClient is a minimal single-connection client for readiness checks
// and INFO.
func (s *Server) probeClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            s.Addr(),
		Password:        s.password,
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      -1,
		DialerRetries:   1,
		PoolSize:        1,
		DialTimeout:     time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
	})
}

// logSince returns the log file's content from offset on.
func (s *Server) logSince(offset int64) string {
	f, err := os.Open(s.logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(f)
	return string(data)
}

// formatTail formats the last lines of log for an error message, or
// returns "" if there is nothing to show.
func formatTail(path, log string) string {
	log = strings.TrimSpace(log)
	if log == "" {
		return ""
	}
	lines := strings.Split(log, "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return fmt.Sprintf("\nlast lines of %s:\n%s", path, strings.Join(lines, "\n"))
}

func (s *Server) removeOwnDir() {
	if s.ownDir {
		_ = os.RemoveAll(s.dir)
	}
}

func killAndWait(p *process) error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redisserver: SIGKILL: %w", err)
	}
	<-p.done
	return nil
}

// dialOnce reports whether addr accepts a TCP connection.
func dialOnce(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before redis-server binds it; Start retries in that case.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisserver: pick free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("redisserver: pick free port: %w", err)
	}
	return port, nil
}

// passwordFrom finds the value of "--requirepass" in redis-server args.
func passwordFrom(args []string) string {
	pw := ""
	for i := 0; i+1 < len(args); i++ {
		if strings.EqualFold(args[i], "--requirepass") {
			pw = args[i+1] // the last one wins, as in redis
		}
	}
	return pw
}

func isAuthErr(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "NOAUTH") || strings.HasPrefix(msg, "WRONGPASS")
}

// infoField returns the value of "name:value" in an INFO reply.
func infoField(info, name string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), name+":"); ok {
			return v
		}
	}
	return ""
}
