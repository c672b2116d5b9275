package commands

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter counts the writes it gets.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

// TestLogBufferWritesInBulk: many log lines cost a few writes, every line
// arrives whole and in order, and nothing is left behind after flush.
func TestLogBufferWritesInBulk(t *testing.T) {
	w := &countingWriter{}
	// A last write in the future: no time-based write during the test.
	b := &logBuffer{w: w, last: time.Now().Add(time.Hour)}
	line := strings.Repeat("x", 99) + "\n"
	for i := 0; i < 10000; i++ {
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	b.flush()
	if w.buf.String() != strings.Repeat(line, 10000) {
		t.Fatal("lines lost, split or reordered")
	}
	if max := 10000*len(line)/logBufferSize + 2; w.writes > max {
		t.Errorf("%d writes for 10000 lines, want at most %d", w.writes, max)
	}
}
