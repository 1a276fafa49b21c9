package scheduler

import "math/bits"

// SeqSet is a set of chunk sequence numbers over a sliding window, as a bitmap.
// The zero value is an empty set. Base is kept a multiple of 64.
type SeqSet struct {
	base uint64
	bits []uint64
}

// Has reports whether seq is in the set. A nil set is empty.
func (s *SeqSet) Has(seq uint64) bool {
	if s == nil || seq < s.base {
		return false
	}
	i := seq - s.base
	w := i >> 6
	return w < uint64(len(s.bits)) && s.bits[w]&(1<<(i&63)) != 0
}

// Add puts seq in the set, growing it as needed.
func (s *SeqSet) Add(seq uint64) {
	aligned := seq &^ 63
	switch {
	case len(s.bits) == 0:
		s.base = aligned
	case aligned < s.base:
		n := (s.base - aligned) >> 6
		grown := make([]uint64, uint64(len(s.bits))+n)
		copy(grown[n:], s.bits)
		s.bits, s.base = grown, aligned
	}
	w := (seq - s.base) >> 6
	for uint64(len(s.bits)) <= w {
		s.bits = append(s.bits, 0)
	}
	s.bits[w] |= 1 << (seq & 63)
}

// Remove takes seq out of the set.
func (s *SeqSet) Remove(seq uint64) {
	if !s.Has(seq) {
		return
	}
	i := seq - s.base
	s.bits[i>>6] &^= 1 << (i & 63)
}

// Advance drops every sequence number below low, as the window slides.
func (s *SeqSet) Advance(low uint64) {
	if low <= s.base {
		return
	}
	drop := (low &^ 63) - s.base
	if w := drop >> 6; w >= uint64(len(s.bits)) {
		s.bits, s.base = s.bits[:0], low&^63
		return
	} else if w > 0 {
		n := copy(s.bits, s.bits[w:])
		s.bits = s.bits[:n]
		s.base = low &^ 63
	}
	if len(s.bits) > 0 {
		s.bits[0] &^= 1<<(low&63) - 1
	}
}

// Len is the number of sequence numbers in the set.
func (s *SeqSet) Len() int {
	n := 0
	for _, w := range s.bits {
		n += bits.OnesCount64(w)
	}
	return n
}
