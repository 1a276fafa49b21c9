package core

import (
	"errors"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
)

// FuzzCore feeds arbitrary bytes, as the data-channel messages of one
// upstream and one downstream peer, into a core: splitting, decoding and
// handling every message (haves, subscriptions, requests, chunk fragments,
// relayed batches, chokes, rejects, stats), with the clock moving between
// pieces. Whatever arrives, the core must not panic, must keep its
// bookkeeping bounded, must never store a chunk that does not match a
// signed entry, and must only send on links that are open.
func FuzzCore(f *testing.F) {
	b, data := rigSlot(8)
	sb, err := manifest.NewSignedBatch(&b)
	if err != nil {
		f.Fatal(err)
	}
	frames := func(ms ...wire.Message) []byte {
		var out []byte
		for _, m := range ms {
			out, _ = wire.AppendFrame(out, m)
		}
		return out
	}
	genuine := frames(&wire.Manifest{Batches: []manifest.SignedBatch{sb}},
		&wire.Chunk{ID: b.Entries[0].Hash, Size: b.Entries[0].Size, Data: data[0]},
		&wire.Chunk{ID: b.Entries[1].Hash, Size: b.Entries[1].Size, Offset: 0, Data: data[1][:10]},
		&wire.Chunk{ID: b.Entries[1].Hash, Size: b.Entries[1].Size, Offset: 10, Data: data[1][10:]})
	f.Add(genuine, uint8(0))
	f.Add(frames(&wire.Hello{Version: 1, Renditions: []string{"v0"}, BudgetKbps: 9}, &wire.Subscribe{Rendition: "v0", K: 4, Index: 1},
		&wire.Request{ReqID: 1, ID: b.Entries[0].Hash, Rendition: "v0", Seq: 8}, &wire.Cancel{ReqID: 1, ID: b.Entries[0].Hash}), uint8(1))
	f.Add(frames(&wire.Have{Rendition: "v0", Base: 1 << 60, Bits: 64, Bitmap: make([]byte, 8)}, &wire.Choke{Reason: wire.ChokeBudget},
		&wire.Unchoke{}, &wire.Reject{ReqID: 3, Reason: wire.RejectBusy}, &wire.Stats{BufferMs: 1}), uint8(2))
	f.Add(append(genuine[:20:20], 0xff, 0xff, 0xff, 0xff), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		if len(in) > 1<<16 {
			in = in[:1<<16]
		}
		r := newRig(t, 2000, "up")
		r.link(1, "up", true)
		r.link(2, "down", false)
		open := map[LinkID]bool{1: true, 2: true}
		var splits [2]wire.Splitter
		step := int(cut%61) + 1
		for i := 0; i < len(in); i += step {
			piece := in[i:min(i+step, len(in))]
			id := LinkID(1 + (i/step)%2)
			if !open[id] {
				continue
			}
			sp := &splits[id-1]
			if _, err := sp.Write(piece); err != nil {
				r.n.BadInput(r.now, id, err)
			} else {
				for {
					fr, err := sp.Next()
					if err != nil {
						r.n.BadInput(r.now, id, err)
						break
					}
					if fr == nil {
						break
					}
					r.n.ReceiveFrame(r.now, id, fr)
				}
			}
			outs := r.drain()
			if (i/step)%16 == 15 {
				outs = append(outs, r.advance(20*time.Millisecond)...)
			}
			for _, o := range outs {
				switch o.Kind {
				case OutSend:
					if !open[o.Link] {
						t.Fatalf("sent %T on closed link %d", o.Msg, o.Link)
					}
					if err := o.Msg.Validate(); err != nil && !errors.Is(err, wire.ErrMalformed) {
						t.Fatalf("sent an invalid %T: %v", o.Msg, err)
					} else if err != nil {
						t.Fatalf("sent a malformed %T: %v", o.Msg, err)
					}
				case OutClose:
					delete(open, o.Link)
				}
			}
		}
		for _, p := range r.n.plist {
			if p.have.Len() > 2*haveSpan+haveWindow*4 {
				t.Fatalf("peer %s: have set of %d", p.id, p.have.Len())
			}
			if len(p.subs) > wire.MaxRenditions*wire.MaxSubstreams {
				t.Fatalf("peer %s: %d subscriptions", p.id, len(p.subs))
			}
		}
		if len(r.n.jobs) > maxJobsPerPeer*len(r.n.plist)+1 {
			t.Fatalf("%d upload jobs for %d peers", len(r.n.jobs), len(r.n.plist))
		}
		for _, e := range b.Entries {
			if got, ok := r.n.store.Get(e.Hash); ok && manifest.Sum(got) != e.Hash {
				t.Fatalf("stored bytes that do not match %s/%d", e.Rendition, e.Seq)
			}
		}
	})
}
