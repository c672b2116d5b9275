package e2e

// The shell examples of README.md and docs/*.md, run as written against a
// throwaway Redis seeded with the demo data (internal/sample.Demo).
//
// Every fenced block that runs resque-expire is an example. A shell block
// (no language, sh, shell, bash, console) is run with bash, one block at a
// time, in a working directory shared by the blocks of its file, with the
// binary first in PATH and REDIS_URL pointing at the test's Redis (an
// example's own REDIS_URL=... is pointed there too). Each command must exit
// 0 unless the doc says otherwise. An HTML comment on the line before a
// block (blank lines between are allowed) says how to treat it:
//
//	<!-- example: exit 0,3 (why) -->   every command may exit with one of these codes
//	<!-- example: file NAME -->        the block is a file (a config, a policy) that
//	                                   the examples of this doc use: it is written to
//	                                   NAME in their working directory
//	<!-- example: synopsis -->         a usage synopsis: not run, but every --flag in
//	                                   it must be one the command's --help lists
//	<!-- example: skip (why) -->       not run (it needs a real host, a cron table,
//	                                   a CI runner); the reason is required
//
// In a console block, lines starting with "$ " are the commands and the rest
// is output; "$ echo $?" followed by a number is the exit code the doc
// promises for the command before it. A block in another language (yaml,
// say) that runs resque-expire must be marked skip (or file).

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/sample"
)

// exBlock is one fenced code block of a doc.
type exBlock struct {
	file   string
	line   int // of the opening fence
	lang   string
	lines  []string
	marker string // the text of a preceding <!-- example: ... --> comment, "" for none
}

func (b exBlock) where() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// exCommand is one command of a block with the exit codes it may end with.
type exCommand struct {
	text  string
	codes []int
}

var (
	exMarkerRE = regexp.MustCompile(`^\s*<!--\s*example:\s*(.*?)\s*-->\s*$`)
	exFenceRE  = regexp.MustCompile("^(\\s*)(```+|~~~+)\\s*([A-Za-z0-9_+-]*)")
	// exRunsRE: a line that runs resque-expire (not "resque-expire:" output,
	// not bin/resque-expire or _resque-expire file names).
	exRunsRE = regexp.MustCompile(`(^|[\s;|&(]|\$\()resque-expire(\s|\)|$)`)
	exURLRE  = regexp.MustCompile(`REDIS_URL=\S+`)
	shells   = map[string]bool{"": true, "sh": true, "shell": true, "bash": true, "console": true}
)

// exParse returns the fenced blocks of a markdown file.
func exParse(t *testing.T, path, name string) []exBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []exBlock
	var cur *exBlock
	var fence, indent string
	marker := ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if cur != nil {
			if strings.HasPrefix(strings.TrimSpace(l), fence) && strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(l), fence[:1])) == "" {
				out = append(out, *cur)
				cur = nil
				continue
			}
			cur.lines = append(cur.lines, strings.TrimPrefix(l, indent))
			continue
		}
		if m := exFenceRE.FindStringSubmatch(l); m != nil {
			indent, fence = m[1], m[2]
			cur = &exBlock{file: name, line: n, lang: strings.ToLower(m[3]), marker: marker}
			marker = ""
			continue
		}
		if m := exMarkerRE.FindStringSubmatch(l); m != nil {
			marker = m[1]
		} else if strings.TrimSpace(l) != "" {
			marker = ""
		}
	}
	if cur != nil {
		t.Fatalf("%s: unterminated code block", cur.where())
	}
	return out
}

// runsTool reports whether a block runs resque-expire.
func (b exBlock) runsTool() bool {
	for _, l := range b.lines {
		l = strings.TrimSpace(l)
		if b.lang == "console" && !strings.HasPrefix(l, "$ ") {
			continue
		}
		if exRunsRE.MatchString(l) {
			return true
		}
	}
	return false
}

// commands splits a shell block into commands: continuation lines joined,
// blank and comment lines dropped; in a console block, only "$ " lines,
// with "$ echo $?" and the number after it setting the previous command's
// exit code.
func (b exBlock) commands(t *testing.T, codes []int) []exCommand {
	t.Helper()
	var out []exCommand
	console := b.lang == "console" || (len(b.lines) > 0 && strings.HasPrefix(strings.TrimSpace(b.lines[0]), "$ "))
	for i := 0; i < len(b.lines); i++ {
		l := strings.TrimSpace(b.lines[i])
		if console {
			cmd, ok := strings.CutPrefix(l, "$ ")
			if !ok {
				continue // output
			}
			if cmd == "echo $?" {
				if len(out) == 0 || i+1 >= len(b.lines) {
					t.Fatalf("%s: echo $? without a command before or a code after", b.where())
				}
				code, err := strconv.Atoi(strings.TrimSpace(b.lines[i+1]))
				if err != nil {
					t.Fatalf("%s: echo $? followed by %q, not an exit code", b.where(), b.lines[i+1])
				}
				out[len(out)-1].codes = []int{code}
				i++
				continue
			}
			l = cmd
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		for strings.HasSuffix(l, `\`) && i+1 < len(b.lines) {
			i++
			l = strings.TrimSuffix(l, `\`) + " " + strings.TrimSpace(b.lines[i])
		}
		out = append(out, exCommand{text: l, codes: codes})
	}
	return out
}

// exCodes parses "exit 0,3 (why)".
func exCodes(t *testing.T, b exBlock, spec string) []int {
	t.Helper()
	spec, _, _ = strings.Cut(spec, "(")
	var codes []int
	for _, f := range strings.Split(strings.TrimSpace(spec), ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("%s: bad marker exit %q", b.where(), spec)
		}
		codes = append(codes, c)
	}
	return codes
}

// exDocs lists README.md and docs/*.md, relative to the repository root.
func exDocs(t *testing.T) (root string, names []string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	names = []string{"README.md"}
	for _, d := range docs {
		names = append(names, filepath.Join("docs", filepath.Base(d)))
	}
	return root, names
}

// TestDocExamples runs the documented examples.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	root, names := exDocs(t)
	help := exHelp(t)
	_, jqErr := exec.LookPath("jq")
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ran, skipped := 0, 0
	for _, name := range names {
		blocks := exParse(t, filepath.Join(root, name), name)
		dir := t.TempDir()
		// Files first: an example may use a file shown further down.
		for _, b := range blocks {
			if f, ok := strings.CutPrefix(b.marker, "file "); ok {
				if err := os.WriteFile(filepath.Join(dir, strings.TrimSpace(f)), []byte(strings.Join(b.lines, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, b := range blocks {
			kind, arg, _ := strings.Cut(b.marker, " ")
			switch {
			case kind == "file":
				continue
			case kind == "skip":
				if !strings.Contains(arg, "(") {
					t.Errorf("%s: skip marker without a reason in parentheses", b.where())
				}
				if b.runsTool() {
					skipped++
				}
				continue
			case kind == "synopsis":
				exCheckSynopsis(t, b, help)
				continue
			case !b.runsTool():
				if b.marker != "" {
					t.Errorf("%s: marker %q on a block that does not run resque-expire", b.where(), b.marker)
				}
				continue
			case !shells[b.lang]:
				t.Errorf("%s: a %s block runs resque-expire; mark it <!-- example: skip (why) --> or make it a shell block", b.where(), b.lang)
				continue
			case b.marker != "" && kind != "exit":
				t.Errorf("%s: unknown marker %q", b.where(), b.marker)
				continue
			}
			codes := []int{0}
			if kind == "exit" {
				codes = exCodes(t, b, arg)
			}
			cmds := b.commands(t, codes)
			if jqErr != nil && strings.Contains(strings.Join(b.lines, "\n"), "jq") {
				t.Logf("%s: not run: jq is not installed", b.where())
				continue
			}
			exRun(t, b, cmds, dir, srv.URL(), func() {
				if err := rdb.FlushAll(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
				fill(t, rdb, sample.Demo(time.Now()))
			})
			ran++
		}
	}
	t.Logf("ran %d example blocks, %d marked skip", ran, skipped)
}

// exRun runs a block's commands in one bash process, after reseeding
// Redis, and checks each command's exit code.
func exRun(t *testing.T, b exBlock, cmds []exCommand, dir, url string, reseed func()) {
	t.Helper()
	reseed()
	rcFile := filepath.Join(dir, ".rc")
	var script strings.Builder
	// zsh's $fpath (docs/completion.md) gets a scratch directory; bash
	// arrays count from 0, zsh's from 1.
	script.WriteString("set -o pipefail\nfpath=(unused \"$PWD/zsh-functions\")\nmkdir -p zsh-functions\nexec 3>" + strconv.Quote(rcFile) + "\n")
	for _, c := range cmds {
		script.WriteString(exURLRE.ReplaceAllString(c.text, "REDIS_URL="+url) + "\necho $? >&3\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), "PATH="+filepath.Dir(binary())+string(os.PathListSeparator)+os.Getenv("PATH"), "REDIS_URL="+url)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s: still running after %v\n%s", b.where(), runTimeout, out)
	}
	if err != nil {
		t.Errorf("%s: bash: %v\n%s", b.where(), err, out)
	}
	data, _ := os.ReadFile(rcFile)
	rcs := strings.Fields(string(data))
	if len(rcs) != len(cmds) {
		t.Errorf("%s: %d of %d commands ran\n%s", b.where(), len(rcs), len(cmds), out)
		return
	}
	for i, c := range cmds {
		rc, _ := strconv.Atoi(rcs[i])
		ok := false
		for _, want := range c.codes {
			ok = ok || rc == want
		}
		if !ok {
			t.Errorf("%s: %q exited %d, the doc says %v\noutput of the block:\n%s", b.where(), c.text, rc, c.codes, out)
		}
	}
}

// exHelp returns the flags each command's --help lists ("" for the global
// ones).
func exHelp(t *testing.T) map[string]map[string]bool {
	t.Helper()
	flagRE := regexp.MustCompile(`--[a-z][a-z0-9-]*`)
	collect := func(args ...string) map[string]bool {
		r := runEnv(t, nil, "", args...).expect(t, 0)
		m := map[string]bool{}
		for _, f := range flagRE.FindAllString(r.stdout, -1) {
			m[f] = true
		}
		return m
	}
	out := map[string]map[string]bool{"": collect("--help")}
	for _, c := range []string{"inspect", "list", "sweep", "restore", "backfill", "enqueue", "audit", "check", "completion", "version", "serve", "doctor"} {
		out[c] = collect(c, "--help")
	}
	return out
}

// exCheckSynopsis checks that every flag of a synopsis block exists.
func exCheckSynopsis(t *testing.T, b exBlock, help map[string]map[string]bool) {
	t.Helper()
	text := strings.Join(b.lines, " ")
	fields := strings.Fields(text)
	if len(fields) < 2 || fields[0] != "resque-expire" {
		t.Errorf("%s: a synopsis must start with resque-expire COMMAND", b.where())
		return
	}
	cmd := fields[1]
	flags, ok := help[cmd]
	if !ok {
		t.Errorf("%s: synopsis of unknown command %q", b.where(), cmd)
		return
	}
	for _, f := range regexp.MustCompile(`--[a-z][a-z0-9-]*`).FindAllString(text, -1) {
		if !flags[f] && !help[""][f] {
			t.Errorf("%s: the synopsis of %s names %s, which %s --help does not list", b.where(), cmd, f, cmd)
		}
	}
}

// TestDocExamplesParser: the block and command splitting the examples test
// relies on.
func TestDocExamplesParser(t *testing.T) {
	t.Parallel()
	md := "text\n<!-- example: exit 0,3 (why) -->\n\n```\nresque-expire check \\\n  --max-expired 0   # comment\n# a comment line\n\nresque-expire audit | jq .\n```\n" +
		"```console\n$ resque-expire check --max-expired 0\n+---+\n| x |\n$ echo $?\n3\n```\n" +
		"  ```\n  resque-expire: an error line, not a command\n  make build   # bin/resque-expire\n  ```\n" +
		"<!-- example: synopsis -->\nprose in between cancels a marker\n```yaml\nrun: resque-expire inspect\n```\n"
	path := filepath.Join(t.TempDir(), "x.md")
	if err := os.WriteFile(path, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	blocks := exParse(t, path, "x.md")
	if len(blocks) != 4 {
		t.Fatalf("%d blocks, want 4: %+v", len(blocks), blocks)
	}
	if blocks[0].marker != "exit 0,3 (why)" || !blocks[0].runsTool() {
		t.Errorf("block 0: %+v", blocks[0])
	}
	cmds := blocks[0].commands(t, exCodes(t, blocks[0], "0,3 (why)"))
	if len(cmds) != 2 || strings.Join(strings.Fields(cmds[0].text), " ") != "resque-expire check --max-expired 0 # comment" || fmt.Sprint(cmds[1].codes) != "[0 3]" {
		t.Errorf("block 0 commands: %+v", cmds)
	}
	cmds = blocks[1].commands(t, []int{0})
	if len(cmds) != 1 || cmds[0].text != "resque-expire check --max-expired 0" || fmt.Sprint(cmds[0].codes) != "[3]" {
		t.Errorf("console block commands: %+v", cmds)
	}
	if blocks[2].runsTool() {
		t.Errorf("output and file names taken for commands: %+v", blocks[2])
	}
	if blocks[3].marker != "" || blocks[3].lang != "yaml" || !blocks[3].runsTool() {
		t.Errorf("block 3: %+v", blocks[3])
	}
}
