package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/fleet"
)

// fleetRun is a command line run once per target of a --targets file.
type fleetRun struct {
	cmd     fleet.Command
	sub     string
	targets []fleet.Target
	format  string
	// parallel bounds how many targets run at once.
	parallel int
	// archive, for restore: the archive operand's index in cmd.Sub.
	archive int
}

// Commands that take --targets: those that read or change a Redis's jobs.
var fleetCommands = map[string]bool{"inspect": true, "list": true, "sweep": true, "restore": true,
	"backfill": true, "audit": true, "check": true, "doctor": true, "serve": true}

// newFleetRun returns the fleet run the command line asks for, or nil when
// it names no targets file (or this process is already one target's run).
func newFleetRun(app *cli.App, args []string) (*fleetRun, error) {
	if os.Getenv(fleet.ChildEnv) == "1" {
		return nil, nil
	}
	takes := takesValue(app.Flags)
	sub := subcommandIndex(args, takes)
	if sub < 0 {
		return nil, nil
	}
	globals := args[1:sub]
	file := globalValue(globals, "targets", os.Getenv("RESQUE_EXPIRE_TARGETS"))
	if file == "" {
		return nil, nil
	}
	name := args[sub]
	if !fleetCommands[name] {
		return nil, usageErrorf("%s does not take --targets; give it one Redis with --redis", name)
	}
	all, err := fleet.Load(file)
	if err != nil {
		return nil, usage(err)
	}
	chosen, err := fleet.Select(all, flagValues(globals, "target"))
	if err != nil {
		return nil, usage(err)
	}
	f := &fleetRun{sub: name, targets: chosen, archive: -1,
		format: globalValue(globals, "format", orEnv("RESQUE_EXPIRE_FORMAT", "table"))}
	if f.format == "table" {
		f.format = globalValue(globals, "o", f.format)
	}
	if f.parallel, err = strconv.Atoi(globalValue(globals, "parallel", "4")); err != nil || f.parallel < 1 {
		return nil, usageErrorf("--parallel: want a number of targets, at least 1")
	}
	for _, n := range []string{"targets", "target", "parallel"} {
		globals = fleet.StripFlag(globals, n, takes[n])
	}
	f.cmd = fleet.Command{Globals: append([]string{}, globals...), Sub: append([]string{}, args[sub:]...), TakesValue: takes}
	return f, f.check(app)
}

// check refuses what a fleet run cannot do unattended.
func (f *fleetRun) check(app *cli.App) error {
	rest := f.cmd.Sub[1:]
	if f.sub == "sweep" && !hasBoolFlag(rest, "yes", "y", "dry-run", "n") {
		return usageErrorf("a sweep of several targets cannot ask for confirmation: add --yes (or --dry-run)")
	}
	if f.sub == "restore" {
		f.archive = operandIndex(rest, takesValue(app.Command("restore").Flags)) + 1
		if f.archive < 1 {
			return usageErrorf("restore needs the archive file")
		}
	}
	return nil
}

func (f *fleetRun) run(ctx context.Context, stdout, stderr io.Writer) error {
	if f.sub == "serve" {
		return f.runServe(ctx, stderr)
	}
	if f.archive > 0 {
		dir, err := os.MkdirTemp("", "resque-expire-restore-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		files, skipped, err := fleet.SplitArchive(f.cmd.Sub[f.archive], dir, f.targets)
		if err != nil {
			return err // a *fleet.UsageError is a usage error (exit.go)
		}
		for t, n := range skipped {
			fmt.Fprintf(stderr, "resque-expire: %d records of target %s left alone: it is not among the chosen targets\n", n, t)
		}
		return f.runRestores(ctx, files, stdout, stderr)
	}
	return f.runAll(ctx, f.targets, perTargetMetricsFile, stdout, stderr)
}

// perTargetMetricsFile gives each target its own --metrics-file: the name
// with the target before its extension (resque_expire.prom becomes
// resque_expire-<target>.prom). node_exporter refuses a series found in two
// files, and each target's series carry its name.
func perTargetMetricsFile(j *fleet.Job) {
	for i := 0; i < len(j.Args); i++ {
		a := j.Args[i]
		name := strings.TrimLeft(a, "-")
		switch {
		case !strings.HasPrefix(a, "-"):
		case name == "metrics-file" && i+1 < len(j.Args):
			j.Args[i+1] = withTarget(j.Args[i+1], j.Target.Name)
			i++
		case strings.HasPrefix(name, "metrics-file="):
			j.Args[i] = "--metrics-file=" + withTarget(strings.TrimPrefix(name, "metrics-file="), j.Target.Name)
		}
	}
}

// withTarget puts "-<target>" before path's extension.
func withTarget(path, target string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + target + ext
}

// runServe runs one serve per target, each on a loopback port of its own,
// behind one HTTP face on the --listen address: /metrics gathers them all,
// each series with a target label; /readyz is ready when every target is.
// An interrupt stops them all (each finishes its batch and releases its
// lock).
func (f *fleetRun) runServe(ctx context.Context, stderr io.Writer) error {
	listen := "127.0.0.1:9187"
	if v := flagValues(f.cmd.Sub[1:], "listen"); len(v) > 0 {
		listen = v[len(v)-1]
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	front := &fleet.Front{}
	addrs := map[string]string{}
	for _, t := range f.targets {
		addr, err := freeLoopbackAddr()
		if err != nil {
			ln.Close()
			return err
		}
		addrs[t.Name] = addr
		front.Endpoints = append(front.Endpoints, fleet.Endpoint{Target: t.Name, Addr: addr})
	}
	srv := &http.Server{Handler: front.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	f.parallel = len(f.targets) // every target's serve runs for good
	return f.runAll(ctx, f.targets, func(j *fleet.Job) {
		j.Args = append(j.Args, "--listen", addrs[j.Target.Name])
	}, io.Discard, stderr)
}

// freeLoopbackAddr is a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// runRestores restores each target's records (files) to that target.
func (f *fleetRun) runRestores(ctx context.Context, files map[string]string, stdout, stderr io.Writer) error {
	var targets []fleet.Target
	for _, t := range f.targets {
		if files[t.Name] != "" {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return errors.New("the archive has no records of the chosen targets")
	}
	return f.runAll(ctx, targets, func(j *fleet.Job) {
		// The archive operand is the last argument of the job's own.
		i := len(j.Args) - len(f.cmd.Sub) + f.archive
		j.Args[i] = files[j.Target.Name]
	}, stdout, stderr)
}

func (f *fleetRun) runAll(ctx context.Context, targets []fleet.Target, adjust func(*fleet.Job), stdout, stderr io.Writer) error {
	jobs, err := fleet.Plan(f.cmd, targets, os.Environ())
	if err != nil {
		return usage(err)
	}
	if adjust != nil {
		for i := range jobs {
			adjust(&jobs[i])
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to run it per target: %w", err)
	}
	done, total := 0, len(jobs)
	progress := isTerminal(stderr)
	outs := fleet.Run(ctx, exe, jobs, f.parallel, stderr, func(o fleet.Outcome) {
		if done++; progress {
			fmt.Fprintf(stderr, "resque-expire: targets done %d/%d (%s: exit %d)\n", done, total, o.Target, o.Code)
		}
	})
	if err := f.render(stdout, outs); err != nil {
		return err
	}
	if code := fleet.Worst(outs); code != ExitOK {
		return fleetExit(code)
	}
	return nil
}

func takesValue(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

// subcommandIndex is the index of the subcommand in args (global flags
// hoisted before it), or -1.
func subcommandIndex(args []string, takes map[string]bool) int {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			if a == "--" {
				return -1
			}
			return i
		}
		name := strings.TrimLeft(a, "-")
		if j := strings.IndexByte(name, '='); j >= 0 {
			continue
		}
		if takes[name] {
			i++
		}
	}
	return -1
}

// operandIndex is the index of the first operand among a command's args
// (flags and their values skipped), or -1.
func operandIndex(args []string, takes map[string]bool) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			return i
		}
		if a == "--" {
			if i+1 < len(args) {
				return i + 1
			}
			return -1
		}
		if name := strings.TrimLeft(a, "-"); !strings.Contains(name, "=") && takes[name] {
			i++
		}
	}
	return -1
}

// flagValues returns every value given to a flag in args.
func flagValues(globals []string, name string) []string {
	var out []string
	for i := 0; i < len(globals); i++ {
		a := strings.TrimLeft(globals[i], "-")
		switch {
		case a == name && i+1 < len(globals):
			out = append(out, globals[i+1])
			i++
		case strings.HasPrefix(a, name+"="):
			out = append(out, strings.TrimPrefix(a, name+"="))
		}
	}
	return out
}

// globalValue returns the last value given to a global flag, or def.
func globalValue(globals []string, name, def string) string {
	if v := flagValues(globals, name); len(v) > 0 {
		return v[len(v)-1]
	}
	return def
}

func orEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// hasBoolFlag reports whether args hold one of the boolean flags names.
func hasBoolFlag(args []string, names ...string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		n := strings.TrimLeft(a, "-")
		if !strings.HasPrefix(a, "-") {
			continue
		}
		n, v, hasV := strings.Cut(n, "=")
		for _, want := range names {
			if n == want && (!hasV || v == "true") {
				return true
			}
		}
	}
	return false
}
