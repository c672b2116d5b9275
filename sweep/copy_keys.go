package sweep

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// copyKeys are the keys of one copy of a list by the copy engine. Every one
// shares the list's hash slot: its name starts with the list's hash tag in
// braces (the whole list key, when it has no tag of its own), and so does a
// RENAME between them. The staging keys are renamed to the committed ones by
// the cutover; a run that finds staging keys of a dead run deletes them (the
// jobs are still in the list), and drains committed ones.
type copyKeys struct {
	list, token string
	copy, old   string
	// stage: (deadline key, judged value) pairs; journal: archive records;
	// failures: failure entries. c* are their committed names.
	stage, journal, failures    string
	cStage, cJournal, cFailures string
}

func newCopyKeys(list, token string) copyKeys {
	tag, own := slotTag(list)
	prefix := "{" + tag + "}:resque-expire:"
	suffix := token
	if own {
		// The list names its own tag: keep the list in the name, so that
		// two lists of one tag copy to different keys.
		suffix = token + ":" + list
	}
	k := func(kind string) string { return prefix + kind + ":" + suffix }
	return copyKeys{list: list, token: token, copy: k("copy"), old: k("old"),
		stage: k("stage"), journal: k("stage-journal"), failures: k("stage-failures"),
		cStage: k("committed"), cJournal: k("committed-journal"), cFailures: k("committed-failures")}
}

// staging lists the keys a dead run's copy leaves before its cutover.
func (k copyKeys) staging() []string {
	return []string{k.copy, k.old, k.stage, k.journal, k.failures}
}

// copyable reports whether a list can have copy keys in its slot: a key
// without a hash tag of its own hashes whole, and no other name can then
// hash alike if it holds a '}' (a tag ends at the first one).
func copyable(list string) bool {
	_, own := slotTag(list)
	return own || !strings.Contains(list, "}")
}

// slotTag is what Redis Cluster hashes key by: the text between its first
// '{' and the first '}' after it when that is not empty (own is then true),
// else the whole key.
func slotTag(key string) (tag string, own bool) {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j], true
		}
	}
	return key, false
}

// copiesRegistry is the set of the copies begun and not yet drained
// (members "<token>:<list key>"): a run finds a dead run's copies there.
func copiesRegistry(l resque.Layout) string {
	return strings.TrimSuffix(l.Stats(), "stats") + "copies"
}

func registryMember(token, list string) string { return token + ":" + list }

func parseRegistryMember(m string) (token, list string, ok bool) {
	return strings.Cut(m, ":")
}

// CopyNeeds lists the commands the copy engine runs besides those of a
// sweep (a run that may not run them all removes in place), each on a key of
// the family it runs on.
func CopyNeeds(l resque.Layout) []Need {
	queue := l.Queue("resque-expire-probe")
	k := newCopyKeys(queue, "probe")
	reg := copiesRegistry(l)
	return []Need{{"info", ""}, {"sadd", reg}, {"srem", reg}, {"smembers", reg},
		{"rpush", k.copy}, {"llen", k.copy}, {"lindex", k.copy}, {"lrange", k.copy}, {"ltrim", k.copy},
		{"exists", k.copy}, {"type", k.copy}, {"rename", k.copy}, {"unlink", k.copy},
		{"rename", queue}, {"unlink", queue}, {"type", l.Journal()}, {"rpush", l.Journal()},
		{"type", l.Failed()}, {"rpush", l.Failed()}}
}

// recoverCopies finishes what dead runs' copies left: the staging of a copy
// that never cut over is deleted (its jobs are still in the list); the
// committed lists of one that did are drained.
func (r *run) recoverCopies(ctx context.Context) error {
	reg := copiesRegistry(r.s.layout)
	members, err := r.s.rdb.SMembers(ctx, reg).Result()
	if err != nil {
		if redis.HasErrorPrefix(err, "NOPERM") {
			return nil // such a user cannot have copied either
		}
		return fmt.Errorf("read %s: %w", reg, err)
	}
	for _, m := range members {
		token, list, ok := parseRegistryMember(m)
		if !ok {
			continue
		}
		k := newCopyKeys(list, token)
		if err := r.s.rdb.Unlink(ctx, k.staging()...).Err(); err != nil {
			return fmt.Errorf("delete the staging of an interrupted copy of %s: %w", list, err)
		}
		if err := r.drainCommitted(ctx, k, nil); err != nil {
			return err
		}
		if err := r.s.rdb.SRem(ctx, reg, m).Err(); err != nil {
			return fmt.Errorf("update %s: %w", reg, err)
		}
		r.res.RecoveredCopies++
	}
	return nil
}
