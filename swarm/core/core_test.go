package core

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// TestPushedChunksArePlayed: an upstream's pushed chunk, preceded by its
// signed batch, is verified, stored, said ready with its deadline, and
// counted on time; the node dials its upstream and subscribes every
// substream of every rendition.
func TestPushedChunksArePlayed(t *testing.T) {
	r := newRig(t, 0, "up")
	if d := find(r.outs, OutDial); len(d) != 1 || d[0].Peer != "up" {
		t.Fatalf("dials %+v, want one to up", d)
	}
	r.link(1, "up", true)
	subs := 0
	for _, o := range find(r.outs, OutSend) {
		if _, ok := o.Msg.(*wire.Subscribe); ok && o.Link == 1 {
			subs++
		}
	}
	if subs != 8 {
		t.Errorf("%d subscriptions, want 4 substreams × 2 renditions", subs)
	}
	b := r.slot(8)
	outs := r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b)}})
	for _, e := range b.Entries {
		outs = append(outs, r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Data: r.data[e.Hash]})...)
	}
	ready := find(outs, OutReady)
	if len(ready) != 2 {
		t.Fatalf("ready %+v, want the two chunks", ready)
	}
	for _, o := range ready {
		if want := r.n.deadline(o.Entry); !o.Deadline.Equal(want) || !o.Deadline.After(r.now) {
			t.Errorf("deadline %v, want %v, after now %v", o.Deadline, want, r.now)
		}
	}
	s := r.n.Stats()
	if s.Chunks != 2 || s.Pushed != 2 || s.BytesFromPeers != int64(len(r.data[b.Entries[0].Hash])+len(r.data[b.Entries[1].Hash])) || s.ChunksOnTime != 2 {
		t.Errorf("stats %+v", s)
	}
	if s.BytesUploaded != 0 {
		t.Errorf("relay off uploaded %d bytes", s.BytesUploaded)
	}
}

// TestPoisoningUpstream: an upstream that pushes a tampered chunk, relays a
// forged manifest batch, or sends garbage is cut off at once and reported
// to the tracker; nothing it sent is stored or learnt, and the node goes
// on from the origin.
func TestPoisoningUpstream(t *testing.T) {
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	attacks := []struct {
		name     string
		reason   protocol.ComplaintReason
		rejected bool
		send     func(r *rig, target manifest.Entry, b manifest.Batch)
	}{
		{"tampered chunk", protocol.ComplaintBadChunk, true, func(r *rig, e manifest.Entry, b manifest.Batch) {
			r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(r.t, b)}})
			r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Data: make([]byte, e.Size)})
		}},
		{"batch with an altered entry under its real signature", protocol.ComplaintForgedManifest, true, func(r *rig, _ manifest.Entry, b manifest.Batch) {
			b.Entries = slices.Clone(b.Entries)
			b.Entries[0].Hash = manifest.Sum([]byte("not the chunk"))
			enc, _ := b.Encode()
			r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{{Encoded: enc, Signature: b.Signature}}})
		}},
		{"batch signed by another key", protocol.ComplaintForgedManifest, true, func(r *rig, _ manifest.Entry, b manifest.Batch) {
			b.N += 1 << 40
			if err := b.Sign(otherKey); err != nil {
				r.t.Fatal(err)
			}
			r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(r.t, b)}})
		}},
		{"garbage frame", protocol.ComplaintBadMessage, false, func(r *rig, _ manifest.Entry, _ manifest.Batch) {
			r.n.ReceiveFrame(r.now, 1, []byte{0, 0, 0, 3, byte(wire.TypeChunk), 1, 2})
			r.drain()
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			r := newRig(t, 1000, "bad")
			r.link(1, "bad", true)
			r.link(2, "down", false) // a downstream that must get nothing of it
			r.send(2, &wire.Subscribe{Rendition: "v0", K: 4, Index: 0})
			b := r.slot(8)
			target := b.Entries[0]
			mark := len(r.outs)
			a.send(r, target, b)
			outs := r.outs[mark:]
			closed := find(outs, OutClose)
			if len(closed) != 1 || closed[0].Link != 1 {
				t.Fatalf("closes %+v, want link 1 cut", closed)
			}
			reps := find(outs, OutReport)
			if len(reps) != 1 || reps[0].Report.Complaint == nil || reps[0].Report.Complaint.Peer != "bad" || reps[0].Report.Complaint.Reason != a.reason {
				t.Fatalf("reports %+v, want a %s complaint about bad", reps, a.reason)
			}
			if s := r.n.Stats(); a.rejected != (s.Rejected > 0) || s.Complaints != 1 {
				t.Errorf("stats %+v", s)
			}
			if data, ok := r.n.store.Get(target.Hash); ok && manifest.Sum(data) != target.Hash {
				t.Error("tampered bytes in the store")
			}
			if _, ok := r.n.verify.Entry(manifest.Sum([]byte("not the chunk"))); ok {
				t.Error("the forged entry was learnt")
			}
			for _, o := range find(outs, OutSend) {
				if _, media := o.Msg.(*wire.Chunk); media && o.Link == 2 {
					t.Error("the attacker's chunk was relayed")
				}
			}
			// Messages on the cut link are ignored; the node goes on from
			// the origin.
			if got := r.send(1, &wire.Have{Rendition: "v0", Base: 0, Bits: 8, Bitmap: []byte{0xff}}); len(got) != 0 {
				t.Errorf("a closed link still acts: %+v", got)
			}
			r.publish(9)
			outs = r.advance(3 * time.Second)
			r.answerOrigin(outs)
			if r.n.Stats().Chunks == 0 {
				t.Error("nothing came from the origin after the attack")
			}
		})
	}
}

// TestHostileHints: an upstream that announces absurd have windows (far
// beyond the stream, at the top of the seq space) cannot make the node's
// memory grow: a have set spans its lowest to its highest member, and one
// such window used to ask for exabytes.
func TestHostileHints(t *testing.T) {
	r := newRig(t, 0, "bad")
	r.link(1, "bad", true)
	ones := bytes.Repeat([]byte{0xff}, wire.MaxHaveBits/8)
	for _, base := range []uint64{1 << 58, math.MaxUint64 - wire.MaxHaveBits + 1, 0, 1 << 40} {
		r.send(1, &wire.Have{Rendition: "v0", Base: base, Bits: wire.MaxHaveBits, Bitmap: ones})
	}
	for seq := uint64(8); seq < 40; seq++ {
		r.publish(seq)
		r.answerOrigin(r.advance(rigD))
	}
	for _, p := range r.n.plist {
		if n := p.have.Len(); n > 2*haveSpan {
			t.Errorf("peer %s: %d seqs recorded from haves", p.id, n)
		}
	}
	if r.n.Stats().Chunks == 0 {
		t.Error("the node stopped playing")
	}
}

// TestRejectsBadParams: New refuses params it cannot run with.
func TestRejectsBadParams(t *testing.T) {
	r := newRig(t, 0, "")
	good := Params{Stream: "demo", Renditions: []string{"v0"}, Manifest: &manifest.Manifest{}, Verifier: r.n.verify, Store: NewStore(0), Now: r.now}
	for name, mut := range map[string]func(*Params){
		"no verifier":   func(p *Params) { p.Verifier = nil },
		"no renditions": func(p *Params) { p.Renditions = nil },
		"too many renditions": func(p *Params) {
			p.Renditions = make([]string, wire.MaxRenditions+1)
		},
		"too many substreams": func(p *Params) { p.Substreams = wire.MaxSubstreams + 1 },
	} {
		p := good
		mut(&p)
		if _, err := New(p); !errors.Is(err, ErrParams) {
			t.Errorf("%s: %v, want ErrParams", name, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Errorf("good params: %v", err)
	}
}

// TestSetRenditions: changing the quality while running unsubscribes the
// upstream from the dropped rendition on every substream, forgets its
// wants, stops playing it, and subscribes again when it comes back.
func TestSetRenditions(t *testing.T) {
	r := newRig(t, 0, "up")
	r.link(1, "up", true)
	subs := func(outs []Output) (sub, unsub int) {
		for _, o := range find(outs, OutSend) {
			switch m := o.Msg.(type) {
			case *wire.Subscribe:
				if m.Rendition == "v0" {
					sub++
				}
			case *wire.Unsubscribe:
				if m.Rendition == "v0" {
					unsub++
				}
			}
		}
		return sub, unsub
	}
	mark := len(r.outs)
	if err := r.n.SetRenditions(r.now, []string{"a0"}); err != nil {
		t.Fatal(err)
	}
	if s, u := subs(r.drain()); s != 0 || u != 4 {
		t.Errorf("dropping v0: %d subscribes, %d unsubscribes; want 0 and 4", s, u)
	}
	for _, w := range r.n.wantList {
		if w.e.Rendition == "v0" {
			t.Errorf("still wants v0/%d", w.e.Seq)
		}
	}
	b := r.slot(8)
	outs := r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b)}})
	for _, e := range b.Entries {
		outs = append(outs, r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Data: r.data[e.Hash]})...)
	}
	for _, o := range find(outs, OutReady) {
		if o.Entry.Rendition != "a0" {
			t.Errorf("played %s/%d after dropping it", o.Entry.Rendition, o.Entry.Seq)
		}
	}
	if err := r.n.SetRenditions(r.now, []string{"v0", "a0"}); err != nil {
		t.Fatal(err)
	}
	r.drain()
	if s, u := subs(r.outs[mark:]); s != 4 || u != 4 {
		t.Errorf("v0 back: %d subscribes, %d unsubscribes in all; want 4 and 4", s, u)
	}
	for _, bad := range [][]string{nil, {"a0", "a0"}, {"../x"}} {
		if err := r.n.SetRenditions(r.now, bad); !errors.Is(err, ErrRenditions) {
			t.Errorf("SetRenditions(%q): %v, want ErrRenditions", bad, err)
		}
	}
}

// TestStartAtIndependentChunk: playback starts at the newest independent
// video chunk at or before the point Buffer behind the live edge, so that
// a player can decode from its first chunk; the playback clock stays where
// Buffer puts it.
func TestStartAtIndependentChunk(t *testing.T) {
	m := &manifest.Manifest{ChunkDurationMs: 250,
		Renditions: []manifest.RenditionInfo{{Name: "v0", Kind: "video"}, {Name: "a0", Kind: "audio"}}}
	for seq := range uint64(12) { // keyframes at 0, 4, 8; audio always independent
		for _, r := range []string{"v0", "a0"} {
			m.Entries = append(m.Entries, manifest.JSONEntry{Rendition: r, Seq: seq,
				MediaTimeUs: int64(seq) * 250_000, DurationUs: 250_000, Independent: r == "a0" || seq%4 == 0})
		}
	}
	now := rigStart
	for _, tc := range []struct {
		buffer, age time.Duration // age: of the manifest, fetched while the node loaded
		want        uint64
	}{
		{750 * time.Millisecond, 0, 8},                       // the edge is 3 s: play from 2.25 s (slot 9), keyframe 8
		{1250 * time.Millisecond, 0, 4},                      // play from 1.75 s (slot 7), keyframe 4
		{1250 * time.Millisecond, 500 * time.Millisecond, 8}, // the edge is 3.5 s by now: from 2.25 s, keyframe 8
		{3 * time.Second, 0, 0},                              // from 0: slot 0 is a keyframe
		{100 * time.Millisecond, 0, 8},                       // past the last slot: still from keyframe 8
	} {
		n := &Node{p: Params{Buffer: tc.buffer, Startup: 500 * time.Millisecond}}
		n.anchor(now, m, tc.age)
		if n.startSeq != tc.want {
			t.Errorf("buffer %v, age %v: start at slot %d, want %d", tc.buffer, tc.age, n.startSeq, tc.want)
		}
		if want := 3*time.Second + tc.age - tc.buffer; n.playFrom != want || !n.t0.Equal(now.Add(500*time.Millisecond)) {
			t.Errorf("buffer %v: clock from %v at %v, want %v at now+500ms", tc.buffer, n.playFrom, n.t0, want)
		}
	}
}

// TestSetRenditionsInit: a rendition taken up while the node runs starts
// with its init segment (fetched when not held, said ready again when held,
// since a player switching back must append it anew).
func TestSetRenditionsInit(t *testing.T) {
	r := newRig(t, 0, "up")
	r.link(1, "up", true)
	b := manifest.Batch{Stream: "demo", N: 100}
	for _, rend := range []string{"v0", "v1", "a0"} {
		d := []byte("init segment of " + rend)
		r.data[manifest.Sum(d)] = d
		b.Entries = append(b.Entries, manifest.Entry{Kind: manifest.KindInit, Rendition: rend,
			IngestTime: rigStart, Size: uint32(len(d)), Hash: manifest.Sum(d)})
	}
	if err := b.Sign(streamKey); err != nil {
		t.Fatal(err)
	}
	fetches := func(outs []Output) (got []string) {
		for _, o := range find(outs, OutFetchChunk) {
			if o.Entry.Kind == manifest.KindInit {
				got = append(got, o.Entry.Rendition)
			}
		}
		slices.Sort(got)
		return got
	}
	readyInits := func(outs []Output) (got []string) {
		for _, o := range find(outs, OutReady) {
			if o.Entry.Kind == manifest.KindInit {
				got = append(got, o.Entry.Rendition)
			}
		}
		slices.Sort(got)
		return got
	}
	outs := r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b)}})
	if got := fetches(outs); !slices.Equal(got, []string{"a0", "v0"}) {
		t.Fatalf("init segments fetched %v, want those of the carried a0 and v0", got)
	}
	r.answerOrigin(outs)
	if got := readyInits(r.outs); !slices.Equal(got, []string{"a0", "v0"}) {
		t.Fatalf("init segments ready %v", got)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.n.SetRenditions(r.now, []string{"v1", "a0"}))
	outs = r.drain()
	if got := fetches(outs); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("switching to v1 fetched %v, want v1's init segment", got)
	}
	r.answerOrigin(outs)
	if got := readyInits(r.outs[len(r.outs)-1:]); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("v1's init segment not ready after its fetch: %v", got)
	}
	must(r.n.SetRenditions(r.now, []string{"v0", "a0"}))
	outs = r.drain()
	if got, f := readyInits(outs), fetches(outs); !slices.Equal(got, []string{"v0"}) || len(f) != 0 {
		t.Fatalf("back to v0: ready %v, fetched %v; want v0's held init segment ready again, no fetch", got, f)
	}
}

// TestStartSkipsStaleBatches: a new node learns the batches it may need,
// from a little before its playback start, and not the rest of the origin's
// window (each would cost a signature check).
func TestStartSkipsStaleBatches(t *testing.T) {
	m := &manifest.Manifest{Version: 1, Stream: "demo", PublicKey: hex.EncodeToString(streamKey.Public().(ed25519.PublicKey)), ChunkDurationMs: 250,
		Renditions: []manifest.RenditionInfo{{Name: "v0", Kind: "video"}, {Name: "a0", Kind: "audio"}}}
	var entries []manifest.Entry
	for seq := range uint64(80) { // a 20 s window
		b, _ := rigSlot(seq)
		for _, e := range b.Entries {
			m.Entries = append(m.Entries, manifest.ToJSON(e, b.N))
		}
		m.Batches = append(m.Batches, manifest.JSONBatch{N: b.N, Signature: hex.EncodeToString(b.Signature)})
		entries = append(entries, b.Entries...)
	}
	v, err := NewVerifier(VerifierParams{Stream: "demo", PublicKey: streamKey.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Params{Stream: "demo", Renditions: []string{"v0", "a0"}, Substreams: 4, Upstreams: make([]protocol.PeerID, 4),
		Manifest: m, Verifier: v, Store: NewStore(0), Now: rigStart.Add(80 * rigD), Buffer: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Buffer 2 s: playback starts at slot 72.
	if n.startSeq != 72 {
		t.Fatalf("start at slot %d, want 72", n.startSeq)
	}
	for _, e := range entries {
		_, known := v.Entry(e.Hash)
		if want := e.Seq+staleSlots >= 72; known != want {
			t.Errorf("slot %d: learnt %v, want %v", e.Seq, known, want)
		}
	}
}

// TestReportReceipts: each report says what each peer delivered since the
// previous one — verified chunk bytes, duplicates included, the most first
// — and a complaint's report carries them too; the origin's seed is left
// out, and a report figure beyond the protocol's limits is clamped.
func TestReportReceipts(t *testing.T) {
	r := newRig(t, 0, "up")
	r.link(1, "up", true)
	r.link(2, "other", false) // a peer that dialed us: it may answer pulls
	b := r.slot(8)
	v0, a0 := b.Entries[0], b.Entries[1]
	r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b)}})
	r.send(1, &wire.Chunk{ID: v0.Hash, Size: v0.Size, Data: r.data[v0.Hash]})
	r.send(2, &wire.Chunk{ID: a0.Hash, Size: a0.Size, Data: r.data[a0.Hash]})
	r.send(2, &wire.Chunk{ID: v0.Hash, Size: v0.Size, Data: r.data[v0.Hash]}) // a duplicate: still delivered
	reports := find(r.advance(2*time.Second), OutReport)
	if len(reports) != 1 {
		t.Fatalf("%d reports in 2 s, want 1", len(reports))
	}
	want := []protocol.Receipt{{Peer: "other", Bytes: uint64(v0.Size + a0.Size)}, {Peer: "up", Bytes: uint64(v0.Size)}}
	if got := reports[0].Report.Received; !slices.Equal(got, want) {
		t.Fatalf("receipts %+v, want %+v", got, want)
	}
	if rep := reports[0].Report; rep.BufferSec > protocol.MaxBufferSec || rep.RTTms > protocol.MaxRTTms || rep.UploadKbps > protocol.MaxBudgetKbps {
		t.Errorf("report beyond the protocol's limits: %+v", rep)
	}
	// Nothing since: the next report has no receipts.
	if reports = find(r.advance(2*time.Second), OutReport); len(reports) != 1 || len(reports[0].Report.Received) != 0 {
		t.Fatalf("next reports %+v, want one without receipts", reports)
	}
	// A chunk, then a forged one from the same peer: the complaint's report
	// carries the receipt of the good one.
	b9 := r.slot(9)
	r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b9)}})
	e := b9.Entries[0]
	r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Data: r.data[e.Hash]})
	bad := slices.Clone(r.data[b9.Entries[1].Hash])
	bad[0] ^= 1
	outs := r.send(1, &wire.Chunk{ID: b9.Entries[1].Hash, Size: b9.Entries[1].Size, Data: bad})
	reports = find(outs, OutReport)
	if len(reports) != 1 || reports[0].Report.Complaint == nil || !slices.Equal(reports[0].Report.Received, []protocol.Receipt{{Peer: "up", Bytes: uint64(e.Size)}}) {
		t.Fatalf("complaint reports %+v", reports)
	}
}
