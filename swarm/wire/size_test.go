package wire

import (
	"testing"

	"github.com/seedcast/seedcast/manifest"
)

// TestFrameSize: FrameSize is the length Append writes, for every type.
func TestFrameSize(t *testing.T) {
	id := manifest.Sum([]byte("x"))
	b := manifest.Batch{Stream: "demo", N: 3, Entries: []manifest.Entry{{Rendition: "v0", Seq: 3, Size: 5, Hash: id}}, Signature: make([]byte, 64)}
	sb, err := manifest.NewSignedBatch(&b)
	if err != nil {
		t.Fatal(err)
	}
	have := &Have{Rendition: "v0", Base: 64, Bits: 128, Bitmap: make([]byte, 16)}
	for _, m := range []Message{
		&Hello{Version: 1, Renditions: []string{"v0", "audio"}, BudgetKbps: 9, Slots: 2},
		&Hello{Version: 2, Renditions: []string{"v0"}, Extension: []byte{1, 2, 3}},
		have, &Subscribe{Rendition: "v0", K: 4, Index: 1}, &Unsubscribe{Rendition: "a00", K: 4, Index: 3},
		&Request{ReqID: 1, ID: id, Rendition: "v0", Seq: 9}, &Cancel{ReqID: 1, ID: id},
		&Chunk{ReqID: 0, ID: id, Size: 100, Offset: 10, Data: make([]byte, 50)},
		&Choke{Reason: ChokeBudget}, &Unchoke{}, &Reject{ReqID: 2, Reason: RejectBusy}, &Stats{BufferMs: 1},
		&Manifest{Batches: []manifest.SignedBatch{sb, sb}},
	} {
		f, err := AppendFrame(nil, m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if got := FrameSize(m); got != len(f) {
			t.Errorf("%T: FrameSize %d, frame %d bytes", m, got, len(f))
		}
	}
}
