// Package parallel runs a fixed number of indexed tasks on a few goroutines.
// The scanner's callers use it to read two queues at once, so that Redis
// works on one while this process decodes the other.
package parallel

import "sync"

// Each calls fn(0), ..., fn(n-1) on at most workers goroutines. Once a call
// has failed, no further index is started. It returns every error, in the
// order they happened.
func Each(n, workers int, fn func(i int) error) []error {
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := 0; w < min(max(workers, 1), n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}
