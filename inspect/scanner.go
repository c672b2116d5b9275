package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/glob"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// DefaultBatch is the default LRANGE page size.
const DefaultBatch = 1000

// MaxBatch bounds the page size whatever the operator asks for.
const MaxBatch = 10000

// lookBack is how far before the expected place of its anchor the scan
// reads first. Each miss multiplies it by four.
const lookBack = 16

// anchorLen is how many consecutive surviving payloads identify the scan's
// place in a list. One would do for lists of unique payloads; three make a
// false match on duplicate payloads very unlikely.
const anchorLen = 3

// Config configures a Scanner.
type Config struct {
	Layout resque.Layout
	// IDPaths are tried in order for each payload; empty means
	// resque.DefaultIDPaths.
	IDPaths []string
	// Batch is the LRANGE page size (default DefaultBatch).
	Batch int
	// Queues and Classes are glob filters; empty matches everything.
	Queues  []string
	Classes []string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Scanner reads and classifies jobs. It is safe for concurrent use.
type Scanner struct {
	rdb     redis.UniversalClient
	layout  resque.Layout
	idPaths []resque.Path
	batch   int
	queues  glob.Set
	classes glob.Set
	now     func() time.Time
	// queueHits and classHits record which patterns matched (Unmatched).
	queueHits, classHits *filterHits
	// detailsOf, when set, says which details the jobs of a queue or
	// delayed bucket get by their state (see WithDetailsOf); nil: every
	// job gets them all.
	detailsOf func(State) Details
	// known, when set, names the jobs left unjudged (see WithKnown).
	known Known
}

// Known names the jobs a scan leaves unjudged (Scanner.WithKnown).
type Known interface {
	// Take says whether a job read is known, and takes it: a job known n
	// times is known for its first n reads.
	Take(raw string) bool
	// Give returns a job Take took, of a page the scan read and then
	// dropped unvisited, to read again.
	Give(raw string)
}

// Details are what a scanner may read of a job besides its id, class and
// deadline.
type Details uint8

// DetailEnqueuedAt is Job.EnqueuedAt.
const DetailEnqueuedAt Details = 1

// WithDetailsOf returns a scanner like s (the same client, filters and
// record of filter matches) that reads of the jobs of queues and delayed
// buckets only the details that of names for their state: parsing a job's
// enqueue time costs a fifth of judging its payload, and a sweep needs it
// only to judge by age. (The class is always read: once the id is found,
// the payload's fields are indexed and it costs a twelfth; reading it
// later, for the jobs a sweep removes, cost four times that, indexing the
// payload again.) Failure entries always get every detail.
func (s *Scanner) WithDetailsOf(of func(State) Details) *Scanner {
	c := *s
	c.detailsOf = of
	return &c
}

// WithKnown returns a scanner like s that leaves unjudged the jobs its
// caller judged already, those known takes: such a job comes with Known
// set, its Raw, Queue and Index, and nothing else — no state, no id, no
// deadline read. The jobs' decoding (JSON, ids) and their deadlines' MGET
// are most of a scan's cost; a list read again from its head skips them for
// the jobs it read the first time. known is asked once per job read, in
// list order, by one goroutine at a time; a page dropped before its visit
// (read again after a removal) gives its known jobs back first.
func (s *Scanner) WithKnown(known Known) *Scanner {
	c := *s
	c.known = known
	return &c
}

// NewScanner validates cfg and returns a Scanner reading through rdb.
func NewScanner(rdb redis.UniversalClient, cfg Config) (*Scanner, error) {
	paths := cfg.IDPaths
	if len(paths) == 0 {
		paths = resque.DefaultIDPaths
	}
	idPaths, err := resque.ParsePaths(paths)
	if err != nil {
		return nil, err
	}
	queues, err := glob.CompileSet(cfg.Queues)
	if err != nil {
		return nil, fmt.Errorf("--queue: %w", err)
	}
	classes, err := glob.CompileSet(cfg.Classes)
	if err != nil {
		return nil, fmt.Errorf("--class: %w", err)
	}
	batch := cfg.Batch
	switch {
	case batch <= 0:
		batch = DefaultBatch
	case batch > MaxBatch:
		batch = MaxBatch
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if cfg.Layout == (resque.Layout{}) {
		return nil, errors.New("scanner needs a key layout")
	}
	return &Scanner{rdb: rdb, layout: cfg.Layout, idPaths: idPaths, batch: batch,
		queues: queues, classes: classes, now: now,
		queueHits: newFilterHits(queues), classHits: newFilterHits(classes)}, nil
}

// Layout returns the key layout the scanner reads.
func (s *Scanner) Layout() resque.Layout { return s.layout }

// Client returns the Redis client the scanner reads through.
func (s *Scanner) Client() redis.UniversalClient { return s.rdb }

// Now returns the scanner's current time.
func (s *Scanner) Now() time.Time { return s.now() }

// Batch is how many jobs a page of ScanList holds at most.
func (s *Scanner) Batch() int { return s.batch }

// QueueFiltered reports whether the scanner only looks at some queues.
func (s *Scanner) QueueFiltered() bool { return len(s.queues) > 0 }

// Chunk is one page of a list, handed to a Visitor.
type Chunk struct {
	List ListRef
	// Now is the time the page was judged against.
	Now  time.Time
	Jobs []Job
	// Removed is filled in by a Visitor that removes jobs from the list:
	// Removed[i] is true when Jobs[i] is no longer in the list because the
	// visitor took it out. The scanner uses it to keep its place.
	Removed []bool
	// Popped[i] is true when Jobs[i] was found no longer in the list,
	// taken by another client (a worker) rather than by the visitor: it is
	// in Removed too, but it may have left before the next page was read.
	Popped []bool
}

// Visitor is called once per page. Returning an error stops the scan.
type Visitor func(ctx context.Context, c *Chunk) error

// ListStats says what a scan of one list saw.
type ListStats struct {
	// Pages is the number of pages read.
	Pages int
	// Resyncs counts the times the scan lost its place (every job it had
	// seen was popped meanwhile) and restarted from the head.
	Resyncs int
}

// ScanList streams every job of one list through visit, in pages.
//
// Workers LPOP at the head and producers RPUSH at the tail while it runs, and
// a sweep removes from the pages it has seen, so positions shift between two
// pages. The scan therefore never trusts an index alone: it remembers the
// last few payloads it saw and left in the list (its anchor), re-reads a
// little before where it expects them, finds them, and continues right after
// them. When the anchor is gone entirely — workers took everything the scan
// had seen — the rest of the list is unseen and the scan restarts at the head.
func (s *Scanner) ScanList(ctx context.Context, ref ListRef, visit Visitor) (ListStats, error) {
	// A copy whose page size follows this list's payload sizes.
	ls := *s
	return ls.scanList(ctx, ref, visit, scanStrict)
}

// ScanListAhead is ScanList reading ahead: while a page is visited, the
// pages after it are read and decoded, in two stages of their own, as they
// would be read should the visit remove nothing (when it does remove jobs,
// those reads are dropped and the page after them read again). The next
// page's read then happens before the visit's own commands, not after them.
func (s *Scanner) ScanListAhead(ctx context.Context, ref ListRef, visit Visitor) (ListStats, error) {
	ls := *s
	return ls.scanList(ctx, ref, visit, scanAhead)
}

// ScanListRemoving is ScanList for a visit that removes jobs from its page:
// the next page is read (LRANGE) before the visit starts, so that what it
// holds is what follows the page, and decoded (MGET, judge) while the visit
// runs; after the visit its positions are moved up by the jobs the visit
// took out. When the visit took out a job sharing a deadline key with one
// of the next page (the same job twice: its key may have gone under the
// MGET), that page is dropped and read again. After a visit that removed
// nothing, the pages after it are read ahead as ScanListAhead reads them,
// until a visit removes jobs again.
func (s *Scanner) ScanListRemoving(ctx context.Context, ref ListRef, visit Visitor) (ListStats, error) {
	ls := *s
	return ls.scanList(ctx, ref, visit, scanRemoving)
}

// scanMode is when scanList reads the next page.
type scanMode int

const (
	scanStrict scanMode = iota // after the visit
	scanAhead                  // during the visit (visits that remove nothing)
	// scanRemoving: its items before the visit, decoded during it; after a
	// visit that removed nothing, as scanAhead until one removes again.
	scanRemoving
)

func (s *Scanner) scanList(ctx context.Context, ref ListRef, visit Visitor, mode scanMode) (ListStats, error) {
	var st ListStats
	// The first page is sized by the first payload (LINDEX, one element):
	// nothing else is known yet of the payloads' size. An error shows in
	// the first page's read.
	full := s.batch
	if first, err := s.rdb.LIndex(ctx, ref.Key, 0).Result(); err == nil {
		s.batch = pageFor(full, []string{first})
	}
	var anchor []string
	next := int64(0) // where the first unseen job is expected
	var cur page
	var pending chan page // scanRemoving: the next page, read while this one is visited
	var ahead *ahead      // the pages after this one, read meanwhile
	quiet := false        // the last visit removed nothing
	defer func() {
		if ahead != nil {
			ahead.stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		switch {
		case ahead != nil:
			cur = ahead.next(ctx)
		case pending != nil:
			cur, pending = <-pending, nil
		default:
			cur = s.readPage(ctx, ref, next, anchor)
		}
		st.Resyncs += cur.resyncs
		if cur.err != nil {
			return st, cur.err
		}
		next = cur.base
		if len(cur.items) > 0 {
			st.Pages++
			s.batch = pageFor(full, cur.items)
			chunk := cur.chunk
			// Where the next page starts should the visit remove nothing:
			// after this page, found by its last jobs. While visits
			// remove nothing, they leave the list as it was read: the
			// pages after this one are read ahead while it is visited,
			// and dropped should the visit remove jobs after all. After a
			// removal, a removing scan reads the next page before the
			// visit and moves it up after.
			switch {
			case !cur.more:
			case ahead == nil && (mode == scanAhead || mode == scanRemoving && quiet):
				ahead = s.startAhead(ctx, ref, cur.base+int64(len(cur.items)), nextAnchor(anchor, cur.items), full)
			case ahead == nil && mode == scanRemoving:
				pending = s.readNext(ctx, ref, cur.base+int64(len(cur.items)), nextAnchor(anchor, cur.items))
			}
			if err := visit(ctx, chunk); err != nil {
				if pending != nil {
					<-pending
				}
				return st, err
			}
			removed := 0
			for i := range chunk.Jobs {
				if i < len(chunk.Removed) && chunk.Removed[i] {
					removed++
					continue
				}
				anchor = append(anchor, chunk.Jobs[i].Raw)
			}
			if len(anchor) > anchorLen {
				anchor = append(anchor[:0:0], anchor[len(anchor)-anchorLen:]...)
			}
			next = cur.base + int64(len(cur.items)) - int64(removed)
			if removed > 0 && ahead != nil {
				ahead.stop()
				ahead = nil
			}
			quiet = removed == 0
			if removed > 0 && pending != nil {
				pending = s.afterRemoval(pending, chunk, removed)
			}
		}
		// Stop when the read reached the end of the list, not when the
		// page is short: a page is short when the anchor was found later
		// than expected (a push to the head).
		if !cur.more {
			return st, nil
		}
	}
}

// readNext starts reading the page after anchor for a removing visit
// (scanRemoving): the LRANGE runs now, before the visit's removals, and the
// decoding during them.
func (s *Scanner) readNext(ctx context.Context, ref ListRef, from int64, anchor []string) chan page {
	ch := make(chan page, 1)
	p := s.readItems(ctx, ref, from, anchor)
	if p.err != nil || len(p.items) == 0 {
		ch <- p
		return ch
	}
	go func() { ch <- s.decodePage(ctx, ref, p) }()
	return ch
}

// afterRemoval returns the page read during a visit that removed jobs, its
// positions moved up by the jobs the visit took out itself, or nil when it
// must be read again: after a resync or an error, or when it shares a
// deadline key with a job the visit removed. (Jobs the visit found popped
// may have left before the page was read, so they do not move it: a
// position that stays too high is one a worker's pop makes anyway, which
// the removal scripts look around for.)
func (s *Scanner) afterRemoval(pending chan page, c *Chunk, removed int) chan page {
	p := <-pending
	if next := movedUp(p, c, removed); next != nil {
		return next
	}
	s.giveBack(p.chunk)
	return nil
}

// giveBack returns the known jobs of a page dropped unvisited (WithKnown).
func (s *Scanner) giveBack(c *Chunk) {
	if s.known == nil || c == nil {
		return
	}
	for i := range c.Jobs {
		if c.Jobs[i].Known {
			s.known.Give(c.Jobs[i].Raw)
		}
	}
}

// movedUp is afterRemoval's page p moved up, or nil.
func movedUp(p page, c *Chunk, removed int) chan page {
	for i := range c.Popped {
		if c.Popped[i] {
			removed--
		}
	}
	if p.err != nil || p.resyncs > 0 || p.base < int64(removed) || len(p.items) == 0 {
		return nil
	}
	gone := map[string]bool{}
	for i := range c.Jobs {
		if i < len(c.Removed) && c.Removed[i] && c.Jobs[i].ExpirationKey != "" {
			gone[c.Jobs[i].ExpirationKey] = true
		}
	}
	for i := range p.chunk.Jobs {
		if gone[p.chunk.Jobs[i].ExpirationKey] {
			return nil
		}
	}
	p.base -= int64(removed)
	for i := range p.chunk.Jobs {
		p.chunk.Jobs[i].Index -= int64(removed)
	}
	ch := make(chan page, 1)
	ch <- p
	return ch
}

// page is one page read and decoded (see readPage).
type page struct {
	items   []string
	base    int64
	more    bool
	chunk   *Chunk
	resyncs int
	err     error
}

// readPage reads the page after anchor (see readAfter) and decodes it.
// It only reads s, so it may run while the previous page is visited.
func (s *Scanner) readPage(ctx context.Context, ref ListRef, next int64, anchor []string) page {
	p := s.readItems(ctx, ref, next, anchor)
	if p.err != nil || len(p.items) == 0 {
		return p
	}
	return s.decodePage(ctx, ref, p)
}

// readItems reads the items of the page after anchor (see readAfter).
func (s *Scanner) readItems(ctx context.Context, ref ListRef, next int64, anchor []string) page {
	var st ListStats
	var p page
	p.items, p.base, p.more, p.err = s.readAfter(ctx, ref.Key, next, anchor, &st)
	p.resyncs = st.Resyncs
	return p
}

// decodePage judges the items p holds and reads their deadlines.
func (s *Scanner) decodePage(ctx context.Context, ref ListRef, p page) page {
	if p.chunk, p.err = s.buildChunk(ctx, ref, p.base, p.items); p.err != nil {
		return p
	}
	if ref.Failed != "" {
		finishFailures(p.chunk)
	}
	return p
}

// MaxPageBytes bounds what one page read moves, so that an LRANGE stays
// short however large the payloads: the next page holds about this many
// bytes of payloads like the last page's.
const MaxPageBytes = 512 << 10

// pageFor is the page size for payloads like items: full, or fewer jobs
// when they are large (never fewer than 4).
func pageFor(full int, items []string) int {
	total := 0
	for _, it := range items {
		total += len(it)
	}
	avg := max(1, total/len(items))
	return min(full, max(4, MaxPageBytes/avg))
}

// readAfter returns the next page of unseen items, the list index of its
// first item, and whether the list may go on past what was read. See
// ScanList for the anchoring.
func (s *Scanner) readAfter(ctx context.Context, key string, next int64, anchor []string, st *ListStats) ([]string, int64, bool, error) {
	if len(anchor) == 0 {
		items, err := s.rdb.LRange(ctx, key, next, next+int64(s.batch)-1).Result()
		return items, next, len(items) == s.batch, wrapRead(err, key)
	}
	for {
		// Look back a little at first (nothing moved, or workers popped a
		// few between two pages), then 4x further each time; past a few
		// pages, page backwards so that no single read grows unbounded.
		// (At most a page, so that the first read always happens: with a
		// tiny page, a look-back past 4 pages would skip straight to
		// searchBack, and that loop would never read forward.)
		back := int64(min(lookBack, s.batch) + len(anchor))
		for back <= int64(s.batch)*4 {
			if back > next {
				back = next
			}
			from, to := next-back, next+int64(s.batch)-1
			items, err := s.rdb.LRange(ctx, key, from, to).Result()
			if err != nil {
				return nil, 0, false, wrapRead(err, key)
			}
			more := int64(len(items)) == to-from+1
			if end := findAnchor(items, anchor, int(back)-1); end >= 0 {
				return items[end+1:], from + int64(end) + 1, more, nil
			}
			if from == 0 {
				// Workers popped part of the anchor: the list starts
				// with what is left of it.
				if m := headOverlap(items, anchor); m > 0 {
					return items[m:], int64(m), more, nil
				}
				// Everything the scan had seen and left is gone: what
				// is in the list now has not been seen.
				st.Resyncs++
				return s.readFresh(ctx, key)
			}
			back *= 4
		}
		end, err := s.searchBack(ctx, key, next, anchor)
		if err != nil {
			return nil, 0, false, err
		}
		if end < 0 {
			st.Resyncs++
			return s.readFresh(ctx, key)
		}
		// Workers may have popped since searchBack saw the anchor: read
		// again around it rather than trusting the index.
		next = end + 1
	}
}

func (s *Scanner) readFresh(ctx context.Context, key string) ([]string, int64, bool, error) {
	items, err := s.rdb.LRange(ctx, key, 0, int64(s.batch)-1).Result()
	return items, 0, len(items) == s.batch, wrapRead(err, key)
}

// headOverlap returns m > 0 when items, read from the head of the list,
// begin with the last m elements of anchor (workers popped the others).
func headOverlap(items, anchor []string) int {
	for m := len(anchor) - 1; m >= 1; m-- {
		if m <= len(items) && slices.Equal(items[:m], anchor[len(anchor)-m:]) {
			return m
		}
	}
	return 0
}

// searchBack pages backwards from next looking for the anchor and returns
// the list index of its last element, or -1.
func (s *Scanner) searchBack(ctx context.Context, key string, next int64, anchor []string) (int64, error) {
	page := int64(s.batch)
	hi := next + page - 1
	for hi >= 0 {
		lo := hi - page - int64(len(anchor)) + 1
		if lo < 0 {
			lo = 0
		}
		items, err := s.rdb.LRange(ctx, key, lo, hi).Result()
		if err != nil {
			return 0, wrapRead(err, key)
		}
		if end := findAnchor(items, anchor, len(items)-1); end >= 0 {
			return lo + int64(end), nil
		}
		if lo == 0 {
			if m := headOverlap(items, anchor); m > 0 {
				return int64(m) - 1, nil
			}
			return -1, nil
		}
		hi -= page
	}
	return -1, nil
}

// findAnchor returns the index in items of the last element of the anchor
// sequence, preferring the match at or just before expect (items only move
// towards the head when others pop), then the nearest one after it (a push
// to the head). It returns -1 when the anchor is not in items.
func findAnchor(items, anchor []string, expect int) int {
	k := len(anchor)
	match := func(end int) bool {
		if end-k+1 < 0 || end >= len(items) {
			return false
		}
		for i := 0; i < k; i++ {
			if items[end-k+1+i] != anchor[i] {
				return false
			}
		}
		return true
	}
	if expect >= len(items) {
		expect = len(items) - 1
	}
	for end := expect; end >= k-1; end-- {
		if match(end) {
			return end
		}
	}
	for end := expect + 1; end < len(items); end++ {
		if match(end) {
			return end
		}
	}
	return -1
}

// buildChunk decodes a page and fetches its deadlines with one MGET.
func (s *Scanner) buildChunk(ctx context.Context, ref ListRef, base int64, items []string) (*Chunk, error) {
	now := s.now()
	c := &Chunk{List: ref, Now: now, Jobs: make([]Job, len(items))}
	var keys []string
	var idx []int
	p := &resque.Payload{}
	for i, raw := range items {
		if s.known != nil && s.known.Take(raw) {
			c.Jobs[i] = Job{Index: base + int64(i), Raw: raw, Queue: ref.Queue, Known: true}
			continue
		}
		c.Jobs[i] = s.judge(raw, ref, p)
		c.Jobs[i].Index = base + int64(i)
		if c.Jobs[i].ExpirationKey != "" {
			keys = append(keys, c.Jobs[i].ExpirationKey)
			idx = append(idx, i)
		}
	}
	if len(keys) == 0 {
		return c, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		s.giveBack(c) // the page is lost: its known jobs are read again
		return nil, fmt.Errorf("read deadlines for %s: %w", ref.Key, err)
	}
	// MGET answers nil both for a missing key and for a key of another
	// type; ask TYPE for the nils so a hash at an expiration key is
	// reported as invalid rather than taken for a missing deadline.
	var nilKeys []int
	for n, i := range idx {
		classify(&c.Jobs[i], vals[n], now)
		if vals[n] == nil {
			nilKeys = append(nilKeys, i)
		}
	}
	if len(nilKeys) > 0 {
		// Most often every such key is simply missing: one EXISTS says so,
		// where a TYPE a key would cost a command each.
		names := make([]string, len(nilKeys))
		for n, i := range nilKeys {
			names[n] = c.Jobs[i].ExpirationKey
		}
		if found, err := s.rdb.Exists(ctx, names...).Result(); err == nil && found == 0 {
			nilKeys = nil
		}
	}
	if len(nilKeys) > 0 {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StatusCmd, len(nilKeys))
		for n, i := range nilKeys {
			cmds[n] = pipe.Type(ctx, c.Jobs[i].ExpirationKey)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			s.giveBack(c)
			return nil, fmt.Errorf("check deadline key types for %s: %w", ref.Key, err)
		}
		for n, i := range nilKeys {
			if t := cmds[n].Val(); t != "none" && t != "string" {
				c.Jobs[i].State = StateInvalid
				c.Jobs[i].Reason = fmt.Sprintf("expiration key is a %s, not a string", t)
			}
		}
	}
	s.addDetails(c, p)
	return c, nil
}

// addDetails reads the details of the jobs of c that a scanner
// WithDetailsOf judged without and wants them of, decoding into p.
func (s *Scanner) addDetails(c *Chunk, p *resque.Payload) {
	if s.detailsOf == nil || c.List.Failed != "" {
		return
	}
	for i := range c.Jobs {
		if j := &c.Jobs[i]; !j.Known && j.State != StateInvalid {
			if d := s.detailsOf(j.State); d != 0 {
				fillDetails(j, p, d)
			}
		}
	}
}

// ErrWrongType is wrapped by errors for keys that hold another Redis type
// than the one expected.
var ErrWrongType = errors.New("wrong Redis type")

func wrapRead(err error, key string) error {
	if err == nil {
		return nil
	}
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		return fmt.Errorf("%s: %w", key, ErrWrongType)
	}
	return fmt.Errorf("read %s: %w", key, err)
}
