package sweep

// reporter hands removals to Options.OnRemoved on a goroutine of its own,
// in the order they are reported: writing a log line costs about as much
// as judging a job, and the lists' sweeps (and the drains) need not wait
// for it, nor hold the run's mutex while it is written. Removals go a page
// or a drained batch at a time.
type reporter struct {
	ch   chan []Removal
	done chan struct{}
}

// reportBuffer is how many batches may wait for OnRemoved before a sweep
// waits for it.
const reportBuffer = 8

func startReporter(fn func(Removal)) *reporter {
	rp := &reporter{ch: make(chan []Removal, reportBuffer), done: make(chan struct{})}
	go func() {
		defer close(rp.done)
		for batch := range rp.ch {
			for _, rm := range batch {
				fn(rm)
			}
		}
	}()
	return rp
}

// stop waits until every removal reported has been handed to OnRemoved.
func (rp *reporter) stop() {
	close(rp.ch)
	<-rp.done
}

// emit reports removals: through the run's reporter, or, in a run without
// one, by calling OnRemoved under the run's mutex.
func (r *run) emit(batch []Removal) {
	switch {
	case len(batch) == 0 || r.opts.OnRemoved == nil:
	case r.reports != nil:
		r.reports.ch <- batch
	default:
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, rm := range batch {
			r.opts.OnRemoved(rm)
		}
	}
}
