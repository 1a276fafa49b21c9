package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/seedcast/seedcast/manifest"
)

func TestReassembler(t *testing.T) {
	data := fragment(100)
	id := manifest.Sum(data)
	frag := func(off, end int) *Chunk {
		return &Chunk{ReqID: 3, ID: id, Size: uint32(len(data)), Offset: uint32(off), Data: data[off:end]}
	}
	type step struct {
		c       *Chunk
		done    bool  // the chunk completes
		wantErr error // nil, ErrMalformed or ErrTooManyChunks
	}
	tests := []struct {
		name  string
		p     ReassemblerParams
		steps []step
	}{
		{"one fragment", ReassemblerParams{}, []step{{c: frag(0, 100), done: true}}},
		{"in order", ReassemblerParams{}, []step{{c: frag(0, 30)}, {c: frag(30, 60)}, {c: frag(60, 100), done: true}}},
		{"out of order", ReassemblerParams{}, []step{{c: frag(60, 100)}, {c: frag(0, 30)}, {c: frag(30, 60), done: true}}},
		{"reverse, merging", ReassemblerParams{}, []step{{c: frag(90, 100)}, {c: frag(50, 60)}, {c: frag(60, 90)}, {c: frag(10, 50)}, {c: frag(0, 10), done: true}}},
		{"duplicate", ReassemblerParams{}, []step{{c: frag(0, 30)}, {c: frag(0, 30), wantErr: ErrMalformed}}},
		{"overlap left", ReassemblerParams{}, []step{{c: frag(20, 40)}, {c: frag(10, 21), wantErr: ErrMalformed}}},
		{"overlap right", ReassemblerParams{}, []step{{c: frag(20, 40)}, {c: frag(39, 50), wantErr: ErrMalformed}}},
		{"overlap inside", ReassemblerParams{}, []step{{c: frag(20, 40)}, {c: frag(25, 30), wantErr: ErrMalformed}}},
		{"overlap across gap", ReassemblerParams{}, []step{{c: frag(0, 10)}, {c: frag(20, 30)}, {c: frag(10, 25), wantErr: ErrMalformed}}},
		{"covering", ReassemblerParams{}, []step{{c: frag(20, 40)}, {c: frag(10, 50), wantErr: ErrMalformed}}},
		{"wrong size", ReassemblerParams{}, []step{{c: frag(0, 30)}, {c: &Chunk{ReqID: 3, ID: id, Size: 101, Offset: 30, Data: data[30:60]}, wantErr: ErrMalformed}}},
		{"request id changes", ReassemblerParams{}, []step{{c: frag(0, 30)}, {c: &Chunk{ReqID: 4, ID: id, Size: 100, Offset: 30, Data: data[30:60]}, wantErr: ErrMalformed}}},
		{"out of range", ReassemblerParams{}, []step{{c: frag(0, 30)}, {c: &Chunk{ReqID: 3, ID: id, Size: 100, Offset: 90, Data: data[:20]}, wantErr: ErrMalformed}}},
		{"too many holes", ReassemblerParams{MaxGaps: 2}, []step{{c: frag(0, 1)}, {c: frag(2, 3)}, {c: frag(4, 5)}, {c: frag(6, 7), wantErr: ErrMalformed}}},
		{"holes filled", ReassemblerParams{MaxGaps: 2}, []step{{c: frag(0, 1)}, {c: frag(2, 3)}, {c: frag(4, 5)}, {c: frag(1, 2)}, {c: frag(3, 4)}, {c: frag(6, 7)}, {c: frag(5, 6)}, {c: frag(7, 100), done: true}}},
	}
	copied := append([]byte(nil), data...)
	tests = append(tests, struct {
		name  string
		p     ReassemblerParams
		steps []step
	}{"from two buffers", ReassemblerParams{}, []step{{c: frag(0, 30)}, {c: &Chunk{ReqID: 3, ID: id, Size: 100, Offset: 30, Data: copied[30:100]}, done: true}}})
	// Every case again with owned fragments, whose in-order runs from one
	// buffer are taken in place.
	for _, tt := range tests {
		owned := tt
		owned.name += ", owned"
		owned.p.Owned = true
		tests = append(tests, owned)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReassembler(tt.p)
			for i, s := range tt.steps {
				out, err := r.Add(s.c)
				if s.wantErr != nil {
					if !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: err %v, want %v", i, err, s.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if s.done != (out != nil) {
					t.Fatalf("step %d: complete = %v, want %v", i, out != nil, s.done)
				}
				if out != nil && !bytes.Equal(out, data) {
					t.Fatalf("step %d: reassembled bytes differ", i)
				}
			}
			if n, b := r.InProgress(); n != 0 || b != 0 {
				t.Fatalf("%d chunks, %d bytes left in progress", n, b)
			}
		})
	}
}

// TestReassemblerOwnedInPlace: owned fragments cut in order from one buffer
// come back as that buffer, with no copy and no room to append into it.
func TestReassemblerOwnedInPlace(t *testing.T) {
	data := fragment(100)
	id := manifest.Sum(data)
	r := NewReassembler(ReassemblerParams{Owned: true})
	var out []byte
	for off := 0; off < 100; off += 25 {
		got, err := r.Add(&Chunk{ReqID: 1, ID: id, Size: 100, Offset: uint32(off), Data: data[off : off+25]})
		if err != nil {
			t.Fatal(err)
		}
		if (got != nil) != (off == 75) {
			t.Fatalf("offset %d: complete %v", off, got != nil)
		}
		out = got
	}
	if &out[0] != &data[0] || len(out) != 100 || cap(out) != 100 {
		t.Fatalf("owned in-order fragments were copied (or the result can grow into the sender's buffer): len %d cap %d", len(out), cap(out))
	}
	if n, b := r.InProgress(); n != 0 || b != 0 {
		t.Fatalf("%d chunks, %d bytes left in progress", n, b)
	}
}

func TestReassemblerLimits(t *testing.T) {
	start := func(i byte, size uint32) *Chunk {
		return &Chunk{ID: manifest.ID{i}, Size: size, Data: []byte{1}}
	}
	r := NewReassembler(ReassemblerParams{MaxInProgress: 2, MaxBytes: 1000})
	for i := range byte(2) {
		if _, err := r.Add(start(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Add(start(2, 100)); !errors.Is(err, ErrTooManyChunks) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("third chunk: %v, want ErrTooManyChunks", err)
	}
	// A whole chunk in one fragment needs no buffer and is not limited.
	if out, err := r.Add(&Chunk{ID: manifest.ID{9}, Size: 1, Data: []byte{7}}); err != nil || !bytes.Equal(out, []byte{7}) {
		t.Fatalf("single-fragment chunk: %v %v", out, err)
	}
	if !r.Drop(manifest.ID{0}) || r.Drop(manifest.ID{0}) {
		t.Fatal("Drop")
	}
	if _, err := r.Add(start(3, 901)); !errors.Is(err, ErrTooManyChunks) {
		t.Fatalf("over MaxBytes: %v", err)
	}
	if _, err := r.Add(start(3, 900)); err != nil {
		t.Fatal(err)
	}
	if n, b := r.InProgress(); n != 2 || b != 1000 {
		t.Fatalf("in progress %d chunks, %d bytes", n, b)
	}
	// An invalid fragment is refused before anything is allocated.
	if _, err := r.Add(&Chunk{ID: manifest.ID{5}, Size: MaxChunk + 1, Data: []byte{1}}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversize chunk: %v", err)
	}
}

// TestReassemblerPrefix: Prefix is the gap-free start of a chunk in
// progress, in both buffer modes, and the chunk Add returns begins with
// those very bytes.
func TestReassemblerPrefix(t *testing.T) {
	for _, owned := range []bool{false, true} {
		data := fragment(100)
		id := manifest.Sum(data)
		r := NewReassembler(ReassemblerParams{Owned: owned})
		add := func(off, end int) []byte {
			t.Helper()
			out, err := r.Add(&Chunk{ID: id, Size: 100, Offset: uint32(off), Data: data[off:end]})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		if r.Prefix(id) != nil || r.Pending(id) {
			t.Fatal("prefix of a chunk not begun")
		}
		add(0, 30)
		if p := r.Prefix(id); !bytes.Equal(p, data[:30]) || !r.Pending(id) {
			t.Fatalf("owned %v: prefix %v after [0, 30)", owned, p)
		}
		add(60, 80) // a hole: the prefix stays
		if p := r.Prefix(id); !bytes.Equal(p, data[:30]) {
			t.Fatalf("owned %v: prefix of %d bytes after [60, 80)", owned, len(p))
		}
		first := r.Prefix(id)
		add(30, 60)
		if p := r.Prefix(id); !bytes.Equal(p, data[:80]) || !bytes.Equal(first, data[:30]) {
			t.Fatalf("owned %v: prefix of %d bytes after the hole filled, or the old prefix changed", owned, len(p))
		}
		p := r.Prefix(id)
		out := add(80, 100)
		if !bytes.Equal(out, data) || &out[0] != &p[0] {
			t.Fatalf("owned %v: the chunk does not begin with the prefix's bytes", owned)
		}
		if r.Prefix(id) != nil || r.Pending(id) {
			t.Fatal("a complete chunk still in progress")
		}
	}
}

// TestReassemblerStale: at the limits, the chunks the caller calls stale
// make room; the others are kept and the new chunk refused.
func TestReassemblerStale(t *testing.T) {
	stale := map[manifest.ID]bool{{1}: true}
	r := NewReassembler(ReassemblerParams{MaxInProgress: 2, Stale: func(id manifest.ID) bool { return stale[id] }})
	for i := range byte(2) {
		if _, err := r.Add(&Chunk{ID: manifest.ID{i}, Size: 100, Data: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Add(&Chunk{ID: manifest.ID{2}, Size: 100, Data: []byte{1}}); err != nil {
		t.Fatalf("a stale chunk did not make room: %v", err)
	}
	if r.Pending(manifest.ID{1}) || !r.Pending(manifest.ID{0}) || !r.Pending(manifest.ID{2}) {
		t.Fatal("the wrong chunk was dropped")
	}
	if _, err := r.Add(&Chunk{ID: manifest.ID{3}, Size: 100, Data: []byte{1}}); !errors.Is(err, ErrTooManyChunks) {
		t.Fatalf("no stale chunk left, yet: %v", err)
	}
}
