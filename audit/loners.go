package audit

import (
	"context"
	"errors"
	"strings"

	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/stop"
)

// resque-loner marks a queued unique job with the key
// <ns>:loners:queue:<queue>:job:<digest>, set in the same MULTI as the
// RPUSH and deleted when a worker reserves the job. The digest is
// Digest::MD5.hexdigest(Resque.encode(class: ..., args: ...)) where, in
// resque-loner 1.x, every Hash argument is first turned into its sorted
// [key, value] pairs (older versions did not sort). A marker whose job is
// not in its queue blocks every later enqueue of that job.

// readLoners reads every marker before the job scan: its statistics, and
// the set of markers that existed then. Only those are judged afterwards:
// a marker is set in the same transaction as its job is pushed, so a marker
// that existed before the job scan has its job in the queue for the scan to
// find, unless a worker took the job (and then deletes the marker itself).
// A job enqueued during the audit is never taken for an orphan.
func (a *auditRun) readLoners(ctx context.Context, f Family, fr *FamilyReport) error {
	if a.outOfTime() {
		fr.Skipped = true
		a.partial(fr, stop.MaxDuration)
		return nil
	}
	if a.opts.Jobs {
		a.lonersBefore, a.lonerQueues = &hashSet{}, map[string]struct{}{}
	}
	return a.scanFamily(ctx, f, fr)
}

// errScanDone stops a key scan early because it has nothing left to do.
var errScanDone = errors.New("scan done")

// judgeLoners scans the markers again and judges those read before the job
// scan: orphaned when their queue does not exist or holds no job with their
// digest. Markers gone since are not orphans (a worker took their job).
func (a *auditRun) judgeLoners(ctx context.Context, fr *FamilyReport) error {
	o := fr.Orphans
	if a.lonersBefore.len() == 0 {
		return nil
	}
	stopped, err := a.scanKeys(ctx, a.s.Layout().LonerPattern(), false, func(ctx context.Context, keys []string) error {
		var cands []string
		var unknown []bool
		for _, k := range keys {
			if !a.lonersBefore.remove(keyHash(k)) {
				continue // new since, unparseable, or seen already
			}
			o.Checked++
			q, digest, _ := parseLoner(a.s.Layout(), k)
			known := a.jobs.queues[q]
			if known && a.jobs.loners != nil && a.jobs.loners.has(lonerHash(q, strings.ToLower(digest))) {
				continue
			}
			cands = append(cands, k)
			unknown = append(unknown, !known)
		}
		if len(cands) == 0 {
			return doneIf(a.lonersBefore.len() == 0)
		}
		states, err := a.readKeys(ctx, cands)
		if err != nil {
			return err
		}
		var fs []Finding
		for i, k := range cands {
			st := states[i]
			if st.typ == "none" {
				continue
			}
			o.Orphans++
			detail := "its job is not in the queue"
			if unknown[i] {
				o.UnknownQueue++
				detail = "its queue does not exist"
			}
			if st.noTTL() {
				o.NoTTL++
				if st.typ == "string" {
					o.Fixable++
				}
				detail += "; no TTL: blocks re-enqueue forever"
			} else {
				detail += "; clears itself in " + shortDuration(st.ttl)
			}
			if len(o.Examples) < a.opts.Examples {
				o.Examples = append(o.Examples, st.example(k, detail))
			}
			fs = append(fs, Finding{Kind: KindLoners, Family: fr.Name, Key: k, Type: st.typ, Value: st.value,
				HasValue: st.hasValue, TTL: st.ttl, NoTTL: st.noTTL(), WrongType: st.typ != "string", Orphan: true})
		}
		if err := a.emit(ctx, fs); err != nil {
			return err
		}
		return doneIf(a.lonersBefore.len() == 0)
	})
	if errors.Is(err, errScanDone) {
		stopped, err = "", nil
	}
	if stopped != "" {
		a.partial(fr, stopped)
	}
	return err
}

func doneIf(done bool) error {
	if done {
		return errScanDone
	}
	return nil
}

// lonerPrefix is the prefix of every marker key (unescaped).
func lonerPrefix(l resque.Layout) string {
	if l.Namespace() == "" {
		return "loners:queue:"
	}
	return l.Namespace() + ":loners:queue:"
}

// parseLoner splits a marker key into its queue and digest. Queue names
// may hold colons; the digest is what follows the last ":job:".
func parseLoner(l resque.Layout, key string) (queue, digest string, ok bool) {
	rest, found := strings.CutPrefix(key, lonerPrefix(l))
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, ":job:")
	if i <= 0 || i+len(":job:") == len(rest) {
		return "", "", false
	}
	return rest[:i], rest[i+len(":job:"):], true
}

func lonerHash(queue, digest string) uint64 { return keyHash(queue + "\x00" + digest) }
