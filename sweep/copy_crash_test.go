package sweep

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCopyCrashSafety stops a run as a kill would at each phase of a copy
// (mid-copy, before and after the cutover, mid-drain), deleting, archiving
// or moving to the failed list; a second run then leaves the queue exact,
// every removed job archived or failed exactly once, no queued job without
// its key, and nothing of the copy behind.
func TestCopyCrashSafety(t *testing.T) {
	t.Parallel()
	for _, phase := range []string{"copy", "before-cutover", "after-cutover", "drain"} {
		for _, dest := range []string{"delete", "archive", "to-failed"} {
			t.Run(phase+"/"+dest, func(t *testing.T) {
				t.Parallel()
				f := newCopyFixture(t)
				f.seed(3000, copyLayouts["random"])
				path := filepath.Join(t.TempDir(), "removed.jsonl")
				opts := func() Options {
					o := f.copyOpts()
					switch dest {
					case "archive":
						a, err := OpenArchive(path)
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { a.Close() })
						o.Archive = a
					case "to-failed":
						o.ToFailed = true
					}
					return o
				}
				first := opts()
				var calls atomic.Int32
				first.copyHook = func(p, list string) error {
					if p == phase && (p != "copy" || calls.Add(1) == 6) {
						return errCrashed
					}
					return nil
				}
				res, removed1, err := f.sweepCopy(first)
				if !errors.Is(err, errCrashed) {
					t.Fatalf("first run: %v, want the crash (%s)", err, problemKinds(res))
				}
				res, removed2, err := f.sweepCopy(opts())
				if err != nil {
					t.Fatalf("second run: %v", err)
				}
				if phase == "after-cutover" || phase == "drain" {
					if res.RecoveredCopies != 1 {
						t.Errorf("recovered %d copies, want 1", res.RecoveredCopies)
					}
				}
				removed := append(removed1, removed2...)
				counts := map[string]int{}
				for _, r := range removed {
					counts[r.ID]++
				}
				for id, j := range f.jobs {
					if want := map[bool]int{true: 1, false: 0}[j.expired]; counts[id] != want {
						t.Errorf("job %s (expired %t) reported removed %d times", id, j.expired, counts[id])
						break
					}
				}
				if got, want := f.list(f.key()), f.liveOnly(f.initialPayloads()); !slices.Equal(got, want) {
					t.Errorf("queue holds %d jobs, want %d", len(got), len(want))
				}
				f.checkKeys(idSetOf(removed))
				f.noLeftovers()
				var records []string
				switch dest {
				case "archive":
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
						var rec ArchiveRecord
						if err := json.Unmarshal([]byte(line), &rec); err != nil {
							t.Fatalf("archive line %q: %v", line, err)
						}
						records = append(records, rec.ID)
					}
				case "to-failed":
					for _, e := range f.list(f.layout.Failed()) {
						var entry struct{ Payload struct{ ID string } }
						if err := json.Unmarshal([]byte(e), &entry); err != nil {
							t.Fatalf("failure entry %q: %v", e, err)
						}
						records = append(records, entry.Payload.ID)
					}
				}
				if dest != "delete" {
					slices.Sort(records)
					want := make([]string, 0, len(counts))
					for id := range counts {
						want = append(want, id)
					}
					slices.Sort(want)
					if !slices.Equal(records, want) {
						t.Errorf("%s holds %d records, want each of the %d removed jobs once", dest, len(records), len(want))
					}
				}
				if n := f.rdb.LLen(f.ctx, f.layout.Journal()).Val(); n != 0 && dest == "archive" {
					t.Errorf("journal holds %d records", n)
				}
			})
		}
	}
}
