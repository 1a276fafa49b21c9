package core

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// cutSize is a v0 chunk of five pieces and a bit.
const cutSize = 5*manifest.PieceSize + 100

// cutRig is a relay (10 Mbit/s) fed by upstream "up" on link 1, with a
// relaying downstream on link 2 subscribed to substream 0 of v0, and slot 8
// (whose v0 chunk is in substream 0) signed and relayed by up.
func cutRig(t *testing.T, whole bool) (*rig, manifest.Entry) {
	t.Helper()
	r := newRigSized(t, 10000, "up", cutSize)
	r.n.p.CutThrough = !whole
	r.link(1, "up", true)
	r.link(2, "down", false)
	r.send(2, &wire.Hello{Version: 1, BudgetKbps: 2000, Slots: 2}, &wire.Subscribe{Rendition: "v0", K: 4, Index: 0})
	b := r.slot(8)
	r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b)}})
	return r, b.Entries[0]
}

// sent returns what the node sent on link among outs: the chunk's bytes in
// the order sent (each fragment at the offset where the last ended), and
// whether an outboard for it went first.
func sent(t *testing.T, outs []Output, link LinkID, e manifest.Entry) (got []byte, outboard bool) {
	t.Helper()
	for _, o := range find(outs, OutSend) {
		if o.Link != link {
			continue
		}
		switch m := o.Msg.(type) {
		case *wire.Outboard:
			if m.ID == e.Hash {
				if len(got) > 0 {
					t.Fatal("outboard after the chunk's first fragment")
				}
				outboard = true
				if want := manifest.OutboardSize(int(e.Size)); len(m.Data) != want {
					t.Fatalf("outboard of %d bytes, want %d", len(m.Data), want)
				}
			}
		case *wire.Chunk:
			if m.ID == e.Hash {
				if int(m.Offset) != len(got) {
					t.Fatalf("fragment at %d after %d bytes", m.Offset, len(got))
				}
				got = append(got, m.Data...)
			}
		}
	}
	return got, outboard
}

// pushIn sends chunk e from link 1 in fragments of step bytes, 10 ms apart,
// calling each after every fragment with the bytes sent so far.
func pushIn(r *rig, e manifest.Entry, data []byte, step int, each func(upTo int)) {
	for off := 0; off < len(data); off += step {
		end := min(off+step, len(data))
		r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Offset: uint32(off), Data: data[off:end]})
		r.advance(10 * time.Millisecond) // the origin's fetches stay unanswered: only e moves
		if each != nil {
			each(end)
		}
	}
}

// TestCutThrough: a relay given a chunk's outboard pushes each piece on as
// soon as it has verified it, never a byte beyond; the downstream gets the
// outboard first and then the chunk whole, in order, once. With cut-through
// off, nothing goes before the chunk is whole.
func TestCutThrough(t *testing.T) {
	for _, whole := range []bool{false, true} {
		r, e := cutRig(t, whole)
		data := r.data[e.Hash]
		r.send(1, &wire.Outboard{ID: e.Hash, Data: manifest.Outboard(data)})
		firstAt := -1 // bytes in when the first byte went on
		pushIn(r, e, data, 10000, func(upTo int) {
			got, _ := sent(t, r.outs, 2, e)
			verified := upTo - upTo%manifest.PieceSize
			if upTo < len(data) && len(got) > verified {
				t.Fatalf("whole=%v: %d bytes relayed with %d in, %d of them verified", whole, len(got), upTo, verified)
			}
			if len(got) > 0 && firstAt < 0 {
				firstAt = upTo
			}
		})
		r.advance(time.Second)
		got, ob := sent(t, r.outs, 2, e)
		if !bytes.Equal(got, data) {
			t.Fatalf("whole=%v: downstream got %d bytes, want the chunk's %d", whole, len(got), len(data))
		}
		st := r.n.Stats()
		switch {
		case !whole && (firstAt != 20000 || !ob || st.CutThrough != 1):
			t.Errorf("cut-through: first byte on with %d bytes in (want 20000, the first piece's fragment), outboard %v, CutThrough %d", firstAt, ob, st.CutThrough)
		case whole && (firstAt != len(data) || ob || st.CutThrough != 0):
			t.Errorf("whole chunks: first byte on with %d bytes in (want all %d), outboard %v, CutThrough %d", firstAt, len(data), ob, st.CutThrough)
		}
		if st.Chunks != 1 || st.Rejected != 0 || st.Complaints != 0 {
			t.Errorf("whole=%v: stats %+v", whole, st)
		}
	}
}

// TestCutThroughBroken: a pusher whose piece or outboard is forged is cut
// off and reported when the piece fails, and one that goes away half way
// just stops; either way the relay has pushed on only verified bytes, and
// finishes its push from the genuine chunk once it has it from the origin.
func TestCutThroughBroken(t *testing.T) {
	for _, c := range []struct {
		name      string
		outboard  func([]byte) []byte
		piece     func([]byte) []byte // what the pusher sends
		gone      bool                // the pusher's link drops after 40,000 bytes
		verified  int                 // bytes the relay may have pushed on before the origin's copy
		complaint bool
	}{
		{"tampered third piece", manifest.Outboard, func(d []byte) []byte {
			d = slices.Clone(d)
			d[2*manifest.PieceSize+5] ^= 1
			return d
		}, false, 2 * manifest.PieceSize, true},
		{"forged outboard", func(d []byte) []byte {
			ob := manifest.Outboard(d)
			ob[20] ^= 1
			return ob
		}, slices.Clone[[]byte], false, 0, true},
		{"pusher gone", manifest.Outboard, slices.Clone[[]byte], true, 2 * manifest.PieceSize, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, e := cutRig(t, false)
			data := r.data[e.Hash]
			r.send(1, &wire.Outboard{ID: e.Hash, Data: c.outboard(data)})
			bad := c.piece(data)
			for off := 0; off < len(bad); off += 10000 {
				if c.gone && off >= 40000 {
					r.n.LinkClosed(r.now, 1)
					r.drain()
					break
				}
				r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Offset: uint32(off), Data: bad[off:min(off+10000, len(bad))]})
				r.answerOrigin(r.advance(10 * time.Millisecond))
			}
			got, _ := sent(t, r.outs, 2, e)
			if len(got) > c.verified || !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("%d bytes pushed on before the origin's copy (at most %d verified), equal to the chunk's: %v", len(got), c.verified, bytes.Equal(got, data[:len(got)]))
			}
			reps := find(r.outs, OutReport)
			complained := slices.ContainsFunc(reps, func(o Output) bool {
				return o.Report.Complaint != nil && o.Report.Complaint.Peer == "up" && o.Report.Complaint.Reason == protocol.ComplaintBadChunk
			})
			if complained != c.complaint {
				t.Errorf("complaint about up: %v, want %v (reports %+v)", complained, c.complaint, reps)
			}
			if c.complaint && len(find(r.outs, OutClose)) == 0 {
				t.Error("the lying pusher's link is still open")
			}
			// The relay pulls the chunk from the origin before its deadline,
			// and its push goes on from there.
			for range 40 {
				r.answerOrigin(r.advance(100 * time.Millisecond))
			}
			got, _ = sent(t, r.outs, 2, e)
			if !bytes.Equal(got, data) {
				t.Fatalf("downstream got %d bytes of the chunk (equal so far: %v), want all %d", len(got), bytes.Equal(got, data[:min(len(got), len(data))]), len(data))
			}
			if d, ok := r.n.store.Get(e.Hash); !ok || !bytes.Equal(d, data) {
				t.Error("the relay does not hold the genuine chunk")
			}
		})
	}
}

// TestCutThroughReceiver: a node that relays nothing, or has no subscriber
// for the chunk, ignores its outboard; the rest of a chunk the node holds
// already (its pusher gave it up half way, then finished it) is discarded
// without cutting the pusher off.
func TestCutThroughReceiver(t *testing.T) {
	r, e := cutRig(t, false)
	r.send(2, &wire.Unsubscribe{Rendition: "v0", K: 4, Index: 0})
	data := r.data[e.Hash]
	r.send(1, &wire.Outboard{ID: e.Hash, Data: manifest.Outboard(data)})
	if len(r.n.inbound) != 0 {
		t.Fatal("an outboard kept with nobody to push the chunk on to")
	}
	pushIn(r, e, data, 10000, nil)
	if !r.n.store.Has(e.Hash) {
		t.Fatal("chunk not taken whole")
	}
	mark := len(r.outs)
	r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Offset: 30000, Data: data[30000:40000]})
	if closed := find(r.outs[mark:], OutClose); len(closed) != 0 {
		t.Fatalf("the tail of a held chunk cut its pusher off: %+v", closed)
	}
	if c, _ := r.n.peers[1].re.InProgress(); c != 0 {
		t.Errorf("%d chunks in progress after a held chunk's tail", c)
	}
}
