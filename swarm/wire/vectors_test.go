package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/seedcast/seedcast/manifest"
)

// wireVectors are the messages of the test vectors of docs/protocol.md §5.
// A nil message is a frame of an unknown type, which must be skipped.
func wireVectors(t testing.TB) map[string]Message {
	return map[string]Message{
		"wire-hello":     &Hello{Version: 1, Renditions: []string{"v0", "a0"}, BudgetKbps: 2500, Slots: 4},
		"wire-have":      &Have{Rendition: "v0", Base: 1200, Bits: 12, Bitmap: []byte{0xb0, 0x50}},
		"wire-subscribe": &Subscribe{Rendition: "v0", K: 4, Index: 2},
		"wire-request":   &Request{ReqID: 7, ID: vectorID(), Rendition: "v0", Seq: 1200},
		"wire-cancel":    &Cancel{ReqID: 7, ID: vectorID()},
		"wire-chunk":     &Chunk{ReqID: 7, ID: vectorID(), Size: 48213, Offset: 48200, Data: []byte("seedcast-wire")},
		"wire-manifest":  &Manifest{Batches: []manifest.SignedBatch{vectorSignedBatch(t)}},
		"wire-choke":     &Choke{Reason: ChokeBudget},
		"wire-unchoke":   &Unchoke{},
		"wire-reject":    &Reject{ReqID: 7, Reason: RejectNotHeld},
		"wire-stats":     &Stats{BufferMs: 3200, UploadKbps: 800, Peers: 5},
		"wire-outboard":  vectorOutboard(),
		"wire-unknown":   nil,
	}
}

func TestProtocolVectors(t *testing.T) {
	doc := docVectors(t)
	want := wireVectors(t)
	for name := range doc {
		if _, ok := want[name]; strings.HasPrefix(name, "wire-") && !ok {
			t.Errorf("%s has vector %q that no test checks", protocolDoc, name)
		}
	}
	for name, m := range want {
		frame := docHex(t, doc, name)
		got, err := Decode(frame)
		if m == nil {
			if !errors.Is(err, ErrUnknownType) {
				t.Errorf("%s: err %v, want ErrUnknownType", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: decoded %#v\nwant %#v", name, got, m)
		}
		if re := m.Append(nil); !bytes.Equal(re, frame) {
			t.Errorf("%s: code encodes\n%x\ndoc says\n%x", name, re, frame)
		}
	}
}
