package inspect

import (
	"context"
	"errors"
)

// errAheadStopped is a page asked of a read-ahead that had ended.
var errAheadStopped = errors.New("read-ahead stopped")

// ahead is the read-ahead of a scan while its visits remove nothing (all of
// a ScanListAhead, and a ScanListRemoving between removals): the pages
// after the one visited are read (LRANGE) one after another, each found
// after the last by its anchor, and decoded (judged, MGET) in a second
// stage, so that a page's read, the decoding of the page before it and the
// visit of the one before that run at once. A single chain of read, decode
// and visit left a list's scan waiting on one of them at a time.
type ahead struct {
	out  chan page
	quit chan struct{}
	done chan struct{}
	// cancel stops the reads: a read looking for jobs a visit has just
	// removed may search back towards the list's head.
	cancel context.CancelFunc
	s      *Scanner
	// dropped: the page decoded when stop came, not handed out.
	dropped *Chunk
}

// startAhead starts reading list ref's pages from position from, the first
// found after anchor. full is the scan's page size before sizing by
// payload.
func (s *Scanner) startAhead(ctx context.Context, ref ListRef, from int64, anchor []string, full int) *ahead {
	rctx, cancel := context.WithCancel(ctx)
	a := &ahead{out: make(chan page, 1), quit: make(chan struct{}), done: make(chan struct{}), cancel: cancel, s: s}
	read := make(chan page, 1)
	// The reads size their pages themselves, on their own copy.
	rs := *s
	go rs.readAll(rctx, ref, from, anchor, full, read, a.quit)
	go func() {
		defer close(a.done)
		defer close(a.out)
		for p := range read {
			select {
			case <-a.quit:
				continue // no more decoding; read ends once the reads see quit
			default:
			}
			if p.err == nil && len(p.items) > 0 {
				p = s.decodePage(ctx, ref, p)
			}
			select {
			case a.out <- p:
			case <-a.quit:
				a.dropped = p.chunk
			}
		}
	}()
	return a
}

// readAll reads pages into out, each after the last as though no visit
// removed anything, until the end of the list, an error, or quit.
func (s *Scanner) readAll(ctx context.Context, ref ListRef, from int64, anchor []string, full int, out chan<- page, quit <-chan struct{}) {
	defer close(out)
	for {
		p := s.readItems(ctx, ref, from, anchor)
		select {
		case out <- p:
		case <-quit:
			return
		}
		if p.err != nil || !p.more {
			return
		}
		from = p.base + int64(len(p.items))
		if len(p.items) > 0 {
			s.batch = pageFor(full, p.items)
			anchor = nextAnchor(anchor, p.items)
		}
	}
}

// nextAnchor is anchor followed by items, its last anchorLen jobs.
func nextAnchor(anchor, items []string) []string {
	a := append(append([]string(nil), anchor...), items[max(0, len(items)-anchorLen):]...)
	return a[max(0, len(a)-anchorLen):]
}

// next returns the next page, decoded.
func (a *ahead) next(ctx context.Context) page {
	p, ok := <-a.out
	if !ok {
		if err := ctx.Err(); err != nil {
			return page{err: err}
		}
		return page{err: errAheadStopped}
	}
	return p
}

// stop ends the read-ahead and waits for it. The known jobs of the pages
// it decoded and nobody visited are given back (WithKnown), once it has
// ended: a Known is used by one goroutine at a time.
func (a *ahead) stop() {
	close(a.quit)
	a.cancel()
	<-a.done
	a.s.giveBack(a.dropped)
	for p := range a.out {
		a.s.giveBack(p.chunk)
	}
}
