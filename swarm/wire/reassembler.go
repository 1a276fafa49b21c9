package wire

import (
	"sort"

	"github.com/seedcast/seedcast/manifest"
)

// ReassemblerParams bounds the memory of a Reassembler (one per peer
// connection). Zero fields take the defaults.
type ReassemblerParams struct {
	// MaxInProgress bounds the chunks begun but not complete (default 16).
	MaxInProgress int
	// MaxBytes bounds the sum of the sizes of the chunks in progress, for
	// which buffers are allocated (default 2·MaxChunk).
	MaxBytes int
	// MaxGaps bounds the holes one chunk in progress may have, so the
	// bookkeeping of out-of-order fragments stays small (default 32).
	MaxGaps int
	// Owned says the fragments' Data is the caller's to give away (nothing
	// reuses or alters it): a whole chunk in one fragment is then returned
	// as is, without a copy. A simulator passing messages in memory sets it;
	// a reader of a byte stream, whose buffer is reused, must not.
	Owned bool
	// Stale, if set, names the chunks in progress that may be dropped when
	// a new chunk would exceed the limits (the receiver holds them already,
	// or wants them no more): their sender may have given them up half way.
	Stale func(manifest.ID) bool
}

// Reassembler collects the fragments of chunks sent by one peer and returns
// each chunk whole. It accepts fragments in any order but refuses overlaps
// (duplicates included), fragments out of range, a size or request id that
// changes between fragments, and more than its limits in progress.
//
// It does not verify anything: a returned chunk is only what the peer sent.
// The caller checks its size and BLAKE3 id against a verified manifest entry
// (docs/protocol.md §2.4) before using, storing or relaying it. A
// Reassembler is not safe for concurrent use.
type Reassembler struct {
	p       ReassemblerParams
	pending map[manifest.ID]*partial
	bytes   int
}

type partial struct {
	reqID uint32
	size  int
	// data is the chunk's buffer (len size), or, while view is set, the
	// bytes received so far in place in the sender's own buffer: owned
	// fragments that follow each other in one backing array (as a sender
	// cuts them from its copy of the chunk) are taken without a copy.
	data []byte
	view bool
	have []span // received ranges, sorted, disjoint, not adjacent
	got  int
}

type span struct{ start, end uint32 }

// NewReassembler returns an empty Reassembler.
func NewReassembler(p ReassemblerParams) *Reassembler {
	if p.MaxInProgress <= 0 {
		p.MaxInProgress = 16
	}
	if p.MaxBytes <= 0 {
		p.MaxBytes = 2 * MaxChunk
	}
	if p.MaxGaps <= 0 {
		p.MaxGaps = 32
	}
	return &Reassembler{p: p, pending: map[manifest.ID]*partial{}}
}

// Add adds one fragment (which must have passed Decode or Validate; its Data
// is copied). When the fragment completes its chunk, Add returns the chunk's
// bytes, which the caller then owns; otherwise it returns nil. An error wraps
// ErrMalformed (ErrTooManyChunks for the limits): the caller closes the
// connection.
func (r *Reassembler) Add(c *Chunk) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := r.pending[c.ID]
	if p == nil {
		if int(c.Size) == len(c.Data) { // whole chunk in one fragment
			if r.p.Owned {
				return c.Data, nil
			}
			return append([]byte(nil), c.Data...), nil
		}
		if len(r.pending) >= r.p.MaxInProgress || r.bytes+int(c.Size) > r.p.MaxBytes {
			r.dropStale()
		}
		if len(r.pending) >= r.p.MaxInProgress || r.bytes+int(c.Size) > r.p.MaxBytes {
			return nil, ErrTooManyChunks
		}
		p = &partial{reqID: c.ReqID, size: int(c.Size)}
		r.pending[c.ID] = p
		r.bytes += p.size
		if r.p.Owned && c.Offset == 0 && cap(c.Data) >= p.size {
			p.data, p.view, p.got = c.Data, true, len(c.Data)
			return nil, nil
		}
		p.data = make([]byte, p.size)
	} else {
		if int(c.Size) != p.size {
			return nil, malformed("chunk %v: size %d, earlier fragments said %d", c.ID, c.Size, p.size)
		}
		if c.ReqID != p.reqID {
			return nil, malformed("chunk %v: request id %d, earlier fragments said %d", c.ID, c.ReqID, p.reqID)
		}
		if p.view {
			if next := p.data[:p.size]; int(c.Offset) == len(p.data) && &next[c.Offset] == &c.Data[0] {
				p.data = next[:int(c.Offset)+len(c.Data)]
				p.got = len(p.data)
				if p.got < p.size {
					return nil, nil
				}
				r.drop(c.ID, p)
				return p.data[:p.size:p.size], nil
			}
			// Out of order, or from another buffer: into a buffer of its own.
			buf := make([]byte, p.size)
			copy(buf, p.data)
			p.have = []span{{0, uint32(len(p.data))}}
			p.data, p.view = buf, false
		}
	}
	start, end := c.Offset, c.Offset+uint32(len(c.Data))
	// i = first span ending at or after start.
	i := sort.Search(len(p.have), func(i int) bool { return p.have[i].end >= start })
	// Only span i, or span i+1 when span i ends exactly at start, can overlap.
	j := i
	if j < len(p.have) && p.have[j].end == start {
		j++
	}
	if j < len(p.have) && p.have[j].start < end {
		return nil, malformed("chunk %v: fragment [%d, %d) overlaps received bytes [%d, %d)", c.ID, start, end, p.have[j].start, p.have[j].end)
	}
	copy(p.data[start:], c.Data)
	p.got += len(c.Data)
	// Merge with the neighbours it touches.
	switch {
	case i < len(p.have) && p.have[i].end == start:
		p.have[i].end = end
		if i+1 < len(p.have) && p.have[i+1].start == end {
			p.have[i].end = p.have[i+1].end
			p.have = append(p.have[:i+1], p.have[i+2:]...)
		}
	case i < len(p.have) && p.have[i].start == end:
		p.have[i].start = start
	default:
		if len(p.have) > r.p.MaxGaps {
			r.drop(c.ID, p)
			return nil, malformed("chunk %v: more than %d holes", c.ID, r.p.MaxGaps)
		}
		p.have = append(p.have, span{})
		copy(p.have[i+1:], p.have[i:])
		p.have[i] = span{start, end}
	}
	if p.got < p.size {
		return nil, nil
	}
	r.drop(c.ID, p)
	return p.data, nil
}

func (r *Reassembler) drop(id manifest.ID, p *partial) {
	delete(r.pending, id)
	r.bytes -= p.size
}

func (r *Reassembler) dropStale() {
	if r.p.Stale == nil {
		return
	}
	for id, p := range r.pending {
		if r.p.Stale(id) {
			r.drop(id, p)
		}
	}
}

// Pending reports whether chunk id is in progress.
func (r *Reassembler) Pending(id manifest.ID) bool { return r.pending[id] != nil }

// Prefix returns the bytes of chunk id in progress received without a gap
// from offset 0 (nil if none). They stay valid and unchanged: later
// fragments only add bytes after them, and the chunk Add finally returns
// begins with them.
func (r *Reassembler) Prefix(id manifest.ID) []byte {
	p := r.pending[id]
	switch {
	case p == nil:
		return nil
	case p.view:
		return p.data[:len(p.data):len(p.data)]
	case len(p.have) > 0 && p.have[0].start == 0:
		return p.data[:p.have[0].end:p.have[0].end]
	}
	return nil
}

// Drop forgets a chunk in progress (after a Cancel, a Reject or a timeout)
// and reports whether there was one.
func (r *Reassembler) Drop(id manifest.ID) bool {
	p := r.pending[id]
	if p != nil {
		r.drop(id, p)
	}
	return p != nil
}

// InProgress returns the number of chunks begun and not complete, and the
// bytes allocated for them.
func (r *Reassembler) InProgress() (chunks, bytes int) { return len(r.pending), r.bytes }
