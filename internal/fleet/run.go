package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Environment variables a child run is given.
const (
	// ChildEnv marks a run as one target of a fleet run: it does not read
	// the targets file again.
	ChildEnv = "RESQUE_EXPIRE_FLEET_CHILD"
	// TargetEnv names the target a child run works on (archive records
	// carry it).
	TargetEnv = "RESQUE_EXPIRE_TARGET"
)

// Job is one target's run: the arguments and environment of its child.
type Job struct {
	Target Target
	Args   []string // without the program name
	Env    []string
}

// Outcome is what one target's run produced.
type Outcome struct {
	Target string
	Code   int
	Stdout []byte
	// ErrLine is the last line the run wrote on stderr when it failed (its
	// error), or why it could not be started.
	ErrLine string
}

// Command is a command line split where the subcommand starts: Globals are
// the global flags before it (hoisted there), Sub the subcommand and what
// follows it.
type Command struct {
	Globals []string
	Sub     []string
	// TakesValue says, for every global flag name, whether it takes a
	// value (false for booleans).
	TakesValue map[string]bool
}

// Plan builds each target's job from the command: the target's settings
// replace the global flags they name (secrets go in the environment,
// never in argv), and progress bars are off.
func Plan(cmd Command, targets []Target, env []string) ([]Job, error) {
	var jobs []Job
	for _, t := range targets {
		flags, tenv, err := t.settings()
		if err != nil {
			return nil, &UsageError{Err: err}
		}
		globals := cmd.Globals
		for _, f := range flags {
			globals = StripFlag(globals, f[0], cmd.TakesValue[f[0]])
		}
		args := append([]string{}, globals...)
		for _, f := range flags {
			if f[1] != "" {
				args = append(args, "--"+f[0]+"="+f[1])
			}
		}
		args = append(append(args, "--no-progress"), cmd.Sub...)
		e := append(append(append([]string{}, env...), tenv...), ChildEnv+"=1", TargetEnv+"="+t.Name)
		jobs = append(jobs, Job{Target: t, Args: args, Env: e})
	}
	return jobs, nil
}

// StripFlag removes every occurrence of the global flag name (--name v,
// --name=v, -name v, and a bare --name for booleans).
func StripFlag(args []string, name string, takesValue bool) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if !strings.HasPrefix(args[i], "-") {
			out = append(out, args[i])
			continue
		}
		if a == name {
			if takesValue {
				i++
			}
			continue
		}
		if strings.HasPrefix(a, name+"=") {
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// Run runs the jobs, at most parallel at once, with exe (this binary). Each
// child's stderr is copied to stderr line by line as it comes, marked with
// its target (a JSON log line gains a "target" field, any other line a
// "target: " prefix); done is called as each target ends. One target's
// failure never stops the others. An interrupt (ctx) is passed on to the
// children as SIGINT, so that each finishes its batch and releases its lock.
func Run(ctx context.Context, exe string, jobs []Job, parallel int, stderr io.Writer, done func(Outcome)) []Outcome {
	if parallel < 1 {
		parallel = 1
	}
	out := make([]Outcome, len(jobs))
	var mu sync.Mutex // serialises stderr and done
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = runOne(ctx, exe, j, &lockedWriter{mu: &mu, w: stderr})
			if done != nil {
				mu.Lock()
				done(out[i])
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

func runOne(ctx context.Context, exe string, j Job, stderr *lockedWriter) Outcome {
	o := Outcome{Target: j.Target.Name}
	if err := ctx.Err(); err != nil {
		o.Code, o.ErrLine = 1, "not started: "+err.Error()
		return o
	}
	cmd := exec.CommandContext(ctx, exe, j.Args...)
	cmd.Env = j.Env
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	lines := make(chan string, 1)
	go func() { lines <- copyMarked(pr, stderr, j.Target.Name) }()
	err := cmd.Run()
	_ = pw.Close()
	last := <-lines
	o.Stdout = stdout.Bytes()
	if err != nil && ctx.Err() != nil && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// Interrupted, passed the interrupt on, and the target's run
		// stopped cleanly: exec reports the cancellation, not a failure.
		err = nil
	}
	if err != nil {
		o.Code = 1
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			o.Code = ee.ExitCode()
		}
		o.ErrLine = errorText(last)
		if o.ErrLine == "" {
			o.ErrLine = err.Error()
		}
	}
	return o
}

// errorText is the message of a run's last stderr line: its error, plain
// ("resque-expire: ...") or a JSON log line's message.
func errorText(line string) string {
	var m struct {
		Message string `json:"message"`
	}
	if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &m) == nil && m.Message != "" {
		return m.Message
	}
	return strings.TrimPrefix(line, "resque-expire: ")
}

// copyMarked copies r to w a line at a time, each line marked with the
// target, and returns the last line.
func copyMarked(r io.Reader, w *lockedWriter, target string) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var last string
	for sc.Scan() {
		line := sc.Text()
		last = line
		w.writeLine(markLine(line, target))
	}
	_, _ = io.Copy(io.Discard, r)
	return last
}

// markLine adds the target to one stderr line: a "target" field in a JSON
// object, a "target: " prefix otherwise.
func markLine(line, target string) string {
	if strings.HasPrefix(line, "{") && strings.HasSuffix(line, "}") {
		q, _ := jsonString(target)
		if strings.TrimSpace(line[1:]) == "}" {
			return `{"target":` + q + `}`
		}
		return `{"target":` + q + "," + line[1:]
	}
	return target + ": " + line
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) writeLine(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, s)
}

// Worst is the exit code of a fleet run: a usage error (2) before a failure
// (1), that before a held lock (75), that before a breached threshold (3),
// and 0 when every target succeeded.
func Worst(outs []Outcome) int {
	rank := map[int]int{0: 0, 3: 1, 75: 2, 1: 3, 2: 4}
	worst := 0
	for _, o := range outs {
		r, known := rank[o.Code]
		if !known {
			r = rank[1]
		}
		if r > rank[worst] {
			worst = o.Code
			if !known {
				worst = 1
			}
		}
	}
	return worst
}
