package audit

// hashSet is a set of 64-bit hashes in one flat table (open addressing,
// linear probing, at most 3/4 full): 11 to 21 bytes per entry, where a Go
// map[uint64]struct{} takes 19 to 38. The audit holds a few per job, so
// this is what bounds its memory on big Redis databases.
//
// Two hash values are reserved for empty and deleted slots; hashes equal to
// them are stored as other values, a collision as unlikely as any other.
type hashSet struct {
	slots []uint64
	live  int // entries
	used  int // entries and deleted slots
	shift uint
}

const (
	hsEmpty   = 0
	hsDeleted = 1
	// hsMinSlots is the table size of the first add.
	hsMinSlots = 256
)

func hsKey(h uint64) uint64 {
	if h <= hsDeleted {
		return h + 0x9E3779B97F4A7C15 // an arbitrary far-away value
	}
	return h
}

// slot is where h's probe starts: Fibonacci hashing, so that the table
// index comes from the well-mixed high bits.
func (s *hashSet) slot(h uint64) int { return int((h * 0x9E3779B97F4A7C15) >> s.shift) }

// add adds h and reports whether it was not in the set yet.
func (s *hashSet) add(h uint64) bool {
	h = hsKey(h)
	if (s.used+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := len(s.slots) - 1
	for i := s.slot(h); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case hsEmpty:
			s.slots[i] = h
			s.live++
			s.used++
			return true
		}
	}
}

// has reports whether h is in the set.
func (s *hashSet) has(h uint64) bool {
	_, ok := s.find(hsKey(h))
	return ok
}

// remove removes h and reports whether it was in the set.
func (s *hashSet) remove(h uint64) bool {
	i, ok := s.find(hsKey(h))
	if ok {
		s.slots[i] = hsDeleted
		s.live--
	}
	return ok
}

func (s *hashSet) len() int { return s.live }

func (s *hashSet) find(h uint64) (int, bool) {
	if len(s.slots) == 0 {
		return 0, false
	}
	mask := len(s.slots) - 1
	for i := s.slot(h); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return i, true
		case hsEmpty:
			return 0, false
		}
	}
}

// grow doubles the table (or, when deleted slots fill it, rebuilds it at
// its size) and drops the deleted slots.
func (s *hashSet) grow() {
	n := hsMinSlots
	for (s.live+1)*2 > n { // leave the new table at most half full
		n *= 2
	}
	old := s.slots
	s.slots, s.live, s.used = make([]uint64, n), 0, 0
	s.shift = 64
	for m := n; m > 1; m >>= 1 {
		s.shift--
	}
	mask := n - 1
	for _, h := range old {
		if h == hsEmpty || h == hsDeleted {
			continue
		}
		i := s.slot(h)
		for s.slots[i] != hsEmpty {
			i = (i + 1) & mask
		}
		s.slots[i] = h
		s.live++
		s.used++
	}
}
