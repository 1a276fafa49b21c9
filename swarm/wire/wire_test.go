package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/seedcast/seedcast/manifest"
)

func sortedNames(m map[string]Message) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestRoundTrip(t *testing.T) {
	msgs := sampleMessages(t)
	for _, name := range sortedNames(msgs) {
		m := msgs[name]
		t.Run(name, func(t *testing.T) {
			frame, err := AppendFrame([]byte("prefix"), m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(frame, []byte("prefix")) {
				t.Fatal("AppendFrame lost the prefix")
			}
			frame = frame[len("prefix"):]
			if len(frame) > MaxFrame {
				t.Fatalf("frame of %d bytes over MaxFrame", len(frame))
			}
			if got := binary.BigEndian.Uint32(frame); int(got) != len(frame)-4 {
				t.Fatalf("length field %d, frame %d", got, len(frame))
			}
			if FrameType(frame) != m.Type() {
				t.Fatalf("type byte %v, want %v", FrameType(frame), m.Type())
			}
			got, err := Decode(frame)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("decoded %#v\nwant %#v", got, m)
			}
			if re := got.Append(nil); !bytes.Equal(re, frame) {
				t.Fatalf("re-encoded\n %x\nwant\n %x", re, frame)
			}
		})
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	msgs := sampleMessages(t)
	buf := make([]byte, 0, MaxFrame)
	for _, name := range sortedNames(msgs) {
		m := msgs[name]
		if n := testing.AllocsPerRun(10, func() { buf = m.Append(buf[:0]) }); n != 0 {
			t.Errorf("%s: Append allocates %v times", name, n)
		}
	}
}

// TestTruncated cuts every valid frame at every byte, fixing the length field
// up so that only the payload is short: each must be refused as malformed.
func TestTruncated(t *testing.T) {
	msgs := sampleMessages(t)
	for _, name := range sortedNames(msgs) {
		if name == "chunk-max" || name == "have-full" {
			continue // long; covered by their shorter siblings
		}
		full := msgs[name].Append(nil)
		for n := 0; n < len(full); n++ {
			cut := bytes.Clone(full[:n])
			if _, err := Decode(cut); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s cut at %d: err %v, want ErrMalformed", name, n, err)
			}
			if n >= HeaderSize {
				binary.BigEndian.PutUint32(cut, uint32(n-4))
				_, err := Decode(cut)
				// A hello of a later version may be cut in its extension,
				// a chunk in its fragment, and unchoke/stats are fixed.
				if err == nil && (name == "hello-v2" || strings.HasPrefix(name, "chunk")) {
					continue
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s truncated to %d bytes: err %v, want ErrMalformed", name, n, err)
				}
			}
		}
	}
}

func TestMalformed(t *testing.T) {
	id := vectorID()
	frame := func(typ Type, payload ...[]byte) []byte {
		b := []byte{0, 0, 0, 0, byte(typ)}
		for _, p := range payload {
			b = append(b, p...)
		}
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		return b
	}
	u16 := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	le64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	vid := vectorID()
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	vb := vectorSignedBatch(t)
	tests := []struct {
		name  string
		frame []byte
	}{
		{"empty", nil},
		{"header only, length 0", []byte{0, 0, 0, 0}},
		{"length over limit", binary.BigEndian.AppendUint32(nil, MaxMessage+1)},
		{"length mismatch", append(frame(TypeUnchoke), 0)},
		{"hello bad magic", frame(TypeHello, []byte("SCWX"), []byte{1, 0}, u32(0), u16(0))},
		{"hello version 0", frame(TypeHello, []byte(Magic), []byte{0, 0}, u32(0), u16(0))},
		{"hello v1 trailing", frame(TypeHello, []byte(Magic), []byte{1, 0}, u32(0), u16(0), []byte{9})},
		{"hello too many renditions", frame(TypeHello, []byte(Magic), []byte{1, MaxRenditions + 1})},
		{"hello bad rendition", frame(TypeHello, []byte(Magic), []byte{1, 1}, name("v 0"), u32(0), u16(0))},
		{"hello empty rendition", frame(TypeHello, []byte(Magic), []byte{1, 1}, name(""), u32(0), u16(0))},
		{"have bits over limit", frame(TypeHave, name("v0"), u64(0), u16(MaxHaveBits+8), make([]byte, MaxHaveBits/8+1))},
		{"have bitmap short", frame(TypeHave, name("v0"), u64(0), u16(16), []byte{1})},
		{"have bitmap long", frame(TypeHave, name("v0"), u64(0), u16(8), []byte{1, 2})},
		{"have padding bits", frame(TypeHave, name("v0"), u64(0), u16(4), []byte{0x08})},
		{"have seq overflow", frame(TypeHave, name("v0"), u64(1<<64-1), u16(8), []byte{0})},
		{"have no rendition", frame(TypeHave, name(""), u64(0), u16(0))},
		{"subscribe K 0", frame(TypeSubscribe, name("v0"), u16(0), u16(0))},
		{"subscribe index >= K", frame(TypeSubscribe, name("v0"), u16(4), u16(4))},
		{"subscribe K over limit", frame(TypeSubscribe, name("v0"), u16(MaxSubstreams+1), u16(0))},
		{"unsubscribe index >= K", frame(TypeUnsubscribe, name("v0"), u16(1), u16(1))},
		{"request id 0", frame(TypeRequest, u32(0), id[:], name("v0"), u64(1))},
		{"request seq without rendition", frame(TypeRequest, u32(1), id[:], name(""), u64(1))},
		{"request rendition too long", frame(TypeRequest, u32(1), id[:], name(strings.Repeat("v", 65)), u64(1))},
		{"cancel id 0", frame(TypeCancel, u32(0), id[:])},
		{"chunk size 0", frame(TypeChunk, u32(0), id[:], u32(0), u32(0), []byte{1})},
		{"chunk size over MaxChunk", frame(TypeChunk, u32(0), id[:], u32(MaxChunk+1), u32(0), []byte{1})},
		{"chunk empty fragment", frame(TypeChunk, u32(0), id[:], u32(10), u32(0))},
		{"chunk past size", frame(TypeChunk, u32(0), id[:], u32(10), u32(8), []byte{1, 2, 3})},
		{"chunk offset overflow", frame(TypeChunk, u32(0), id[:], u32(10), u32(1<<32-1), []byte{1})},
		{"manifest 0 batches", frame(TypeManifest, []byte{0})},
		{"manifest too many batches", frame(TypeManifest, []byte{MaxBatches + 1})},
		{"manifest batch length past end", frame(TypeManifest, []byte{1}, u32(1000), vb.Encoded)},
		{"manifest short signature", frame(TypeManifest, []byte{1}, u32(uint32(len(vb.Encoded))), vb.Encoded, vb.Signature[:63])},
		{"manifest bad batch", frame(TypeManifest, []byte{1}, u32(uint32(len(vb.Encoded))), append([]byte("X"), vb.Encoded[1:]...), vb.Signature)},
		{"choke reason 0", frame(TypeChoke, []byte{0})},
		{"choke reason 4", frame(TypeChoke, []byte{4})},
		{"choke trailing", frame(TypeChoke, []byte{1, 0})},
		{"unchoke payload", frame(TypeUnchoke, []byte{0})},
		{"reject reason 9", frame(TypeReject, u32(1), []byte{9})},
		{"reject id 0", frame(TypeReject, u32(0), []byte{1})},
		{"stats short", frame(TypeStats, u32(1), u32(1))},
		{"stats long", frame(TypeStats, u32(1), u32(1), u16(1), []byte{0})},
		{"outboard no size", frame(TypeOutboard, vid[:], []byte{1, 0, 0})},
		{"outboard size 0", frame(TypeOutboard, vid[:], make([]byte, 8))},
		{"outboard size over MaxChunk", frame(TypeOutboard, vid[:], le64(MaxChunk+1), make([]byte, manifest.OutboardSize(MaxChunk)))},
		{"outboard short", frame(TypeOutboard, vid[:], vectorOutboard().Data[:100])},
		{"outboard long", frame(TypeOutboard, vid[:], vectorOutboard().Data, []byte{0})},
	}
	for _, tt := range tests {
		_, err := Decode(tt.frame)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", tt.name, err)
		} else if errors.Is(err, ErrUnknownType) {
			t.Errorf("%s: err %v is also ErrUnknownType", tt.name, err)
		}
	}
}

func TestUnknownTypeSkipped(t *testing.T) {
	var stream []byte
	stream = (&Stats{BufferMs: 1}).Append(stream)
	for _, typ := range []byte{0x00, 0x0e, 0x7f, 0xff} {
		stream = append(stream, 0, 0, 0, 4, typ, 1, 2, 3)
	}
	stream = (&Unchoke{}).Append(stream)
	want := []any{&Stats{BufferMs: 1}, ErrUnknownType, ErrUnknownType, ErrUnknownType, ErrUnknownType, &Unchoke{}}

	r := NewReader(bytes.NewReader(stream))
	var s Splitter
	var fromSplitter [][]byte
	for i := 0; i < len(stream); i += 3 { // pieces of 3 bytes
		if _, err := s.Write(stream[i:min(i+3, len(stream))]); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := s.Next()
			if err != nil {
				t.Fatal(err)
			}
			if f == nil {
				break
			}
			fromSplitter = append(fromSplitter, bytes.Clone(f))
		}
	}
	if len(fromSplitter) != len(want) || s.Buffered() != 0 {
		t.Fatalf("splitter gave %d frames, %d bytes left; want %d, 0", len(fromSplitter), s.Buffered(), len(want))
	}
	for i, w := range want {
		m, err := r.ReadMessage()
		m2, err2 := Decode(fromSplitter[i])
		if e, ok := w.(error); ok {
			if !errors.Is(err, e) || errors.Is(err, ErrMalformed) || !errors.Is(err2, e) {
				t.Fatalf("message %d: err %v / %v, want %v", i, err, err2, e)
			}
			continue
		}
		if err != nil || err2 != nil || !reflect.DeepEqual(m, w) || !reflect.DeepEqual(m2, w) {
			t.Fatalf("message %d: %#v %v / %#v %v, want %#v", i, m, err, m2, err2, w)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReaderLimits(t *testing.T) {
	// Over the limit: refused after the 4 length bytes, before reading or
	// allocating anything for the frame.
	big := binary.BigEndian.AppendUint32(nil, MaxMessage+1)
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(big), bytes.NewReader(make([]byte, 1<<20)))}
	r := NewReader(cr)
	if _, err := r.Next(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversize frame: %v", err)
	}
	if cr.n != 4 || cap(r.buf) > 512 {
		t.Fatalf("read %d bytes, buffer %d, before refusing", cr.n, cap(r.buf))
	}
	// Zero length.
	if _, err := NewReader(bytes.NewReader([]byte{0, 0, 0, 0})).Next(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("zero-length frame: %v", err)
	}
	// End inside a frame.
	f := (&Stats{}).Append(nil)
	for n := 1; n < len(f); n++ {
		if _, err := NewReader(bytes.NewReader(f[:n])).Next(); err != io.ErrUnexpectedEOF {
			t.Fatalf("stream cut at %d: %v", n, err)
		}
	}
	// A maximal frame is accepted.
	c := &Chunk{ID: vectorID(), Size: MaxChunk, Data: fragment(MaxFragment)}
	r = NewReader(bytes.NewReader(c.Append(nil)))
	if m, err := r.ReadMessage(); err != nil || !reflect.DeepEqual(m, c) {
		t.Fatalf("max chunk frame: %v", err)
	}

	var s Splitter
	if _, err := s.Write(big); !errors.Is(err, ErrMalformed) {
		t.Fatalf("splitter, oversize frame: %v", err)
	}
	s = Splitter{}
	if _, err := s.Write(make([]byte, MaxPiece+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("splitter, oversize piece: %v", err)
	}
}

func TestNegotiateVersion(t *testing.T) {
	for _, tt := range []struct{ theirs, want uint8 }{{1, 1}, {2, 1}, {255, 1}} {
		if got := NegotiateVersion(tt.theirs); got != tt.want {
			t.Errorf("NegotiateVersion(%d) = %d, want %d", tt.theirs, got, tt.want)
		}
	}
}

func TestHaveBits(t *testing.T) {
	h := &Have{Rendition: "v0", Base: 100, Bits: 20, Bitmap: make([]byte, 3)}
	for _, s := range []uint64{100, 107, 108, 119} {
		h.Set(s)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(90); seq < 130; seq++ {
		want := seq == 100 || seq == 107 || seq == 108 || seq == 119
		if h.Has(seq) != want {
			t.Errorf("Has(%d) = %v", seq, !want)
		}
	}
	if !bytes.Equal(h.Bitmap, []byte{0x81, 0x80, 0x10}) {
		t.Errorf("bitmap %08b", h.Bitmap)
	}
}

func TestFragments(t *testing.T) {
	data := fragment(2*MaxFragment + 5)
	id := manifest.Sum(data)
	fs := Fragments(nil, 9, id, data)
	if len(fs) != 3 || len(fs[2].Data) != 5 || fs[1].Offset != MaxFragment {
		t.Fatalf("fragments %d", len(fs))
	}
	r := NewReassembler(ReassemblerParams{})
	var got []byte
	for i := range fs {
		if err := fs[i].Validate(); err != nil {
			t.Fatal(err)
		}
		out, err := r.Add(&fs[i])
		if err != nil {
			t.Fatal(err)
		}
		if out != nil {
			got = out
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("reassembled bytes differ")
	}
}
