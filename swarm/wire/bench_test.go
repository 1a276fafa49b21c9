package wire

import "testing"

func benchMessages(b *testing.B) map[string]Message {
	have := &Have{Rendition: "v0", Base: 1200, Bits: 1024, Bitmap: fragment(128)}
	return map[string]Message{
		"Have1024": have,
		"Request":  &Request{ReqID: 7, ID: vectorID(), Rendition: "v0", Seq: 1200},
		"Chunk64K": &Chunk{ReqID: 7, ID: vectorID(), Size: MaxChunk, Offset: 0, Data: fragment(MaxFragment)},
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"Have1024", "Request", "Chunk64K"} {
		m := benchMessages(b)[name]
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, MaxFrame)
			b.SetBytes(int64(len(m.Append(nil))))
			b.ReportAllocs()
			for b.Loop() {
				buf = m.Append(buf[:0])
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"Have1024", "Request", "Chunk64K"} {
		frame := benchMessages(b)[name].Append(nil)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReassemble1M reassembles a 1 MiB chunk from 16 fragments.
func BenchmarkReassemble1M(b *testing.B) {
	data := fragment(1 << 20)
	frags := Fragments(nil, 1, vectorID(), data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	r := NewReassembler(ReassemblerParams{})
	for b.Loop() {
		for i := range frags {
			if _, err := r.Add(&frags[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
