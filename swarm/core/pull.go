package core

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// originID is the planner's name for the origin over HTTP.
const originID = "origin/http"

// announce sends each linked peer what this node holds (a Have per
// rendition over the last haveWindow seqs) when that changed, every
// haveEvery at most, and only when it relays at all.
const (
	haveWindow = 128
	haveEvery  = 250 * time.Millisecond
)

// staleSlots is how far before the playback start a batch may lie and
// still be learnt from a manifest: peers may ask this node for a little of
// the past, nobody for more.
const staleSlots = 16

// stale reports whether a manifest batch holds only chunks well before the
// slot playback started at. A new viewer's first manifest holds the whole
// window (a minute): checking every batch's signature would cost it most
// of its start-up in a browser (~2 ms an Ed25519 check in WebAssembly), for
// chunks it will never play. Batches with init segments are never stale.
func (n *Node) stale(b *manifest.Batch) bool {
	if n.p.Seed || !n.anchored || n.startSeq < staleSlots {
		return false
	}
	for _, e := range b.Entries {
		if e.Kind != manifest.KindChunk || e.Seq+staleSlots >= n.startSeq {
			return false
		}
	}
	return len(b.Entries) > 0
}

// learnManifest learns a manifest document from the origin.
func (n *Node) learnManifest(now time.Time, m *manifest.Manifest) error {
	batches, err := m.SignedBatches()
	if err != nil {
		n.stats.Rejected++
		return err
	}
	var fresh []uint64
	var entries []manifest.Entry
	for i := range batches {
		if n.stale(&batches[i]) {
			continue // no use to this node: not worth a signature check
		}
		var es []manifest.Entry
		if es, err = n.verify.Learn(&batches[i]); err != nil {
			n.stats.Rejected++
			break
		}
		if es != nil {
			fresh = append(fresh, batches[i].N)
			entries = append(entries, es...)
		}
	}
	n.learn(now, entries, fresh)
	return err
}

// learn takes newly verified entries (of the batches fresh): the chunks this
// node needs become wants, substreams fed over HTTP are fetched at once, and
// the batches are relayed to the downstreams.
func (n *Node) learn(now time.Time, entries []manifest.Entry, fresh []uint64) {
	if len(entries) == 0 {
		return
	}
	for _, b := range fresh {
		n.batches.Add(b)
	}
	for n.batches.Has(uint64(n.contig + 1)) {
		n.contig++
	}
	n.batches.Advance(uint64(n.contig + 1))
	for _, e := range entries {
		if e.Kind == manifest.KindInit {
			n.remember(e)
		}
		ri, ok := n.ri[e.Rendition]
		if !ok || n.store.Has(e.Hash) {
			continue
		}
		if _, busy := n.fetching[e.Hash]; busy {
			continue
		}
		if n.p.Seed || e.Kind == manifest.KindInit {
			if n.originBusy(now) {
				n.retryInit(e)
			} else {
				n.fetch(e)
			}
			continue
		}
		if !n.anchored {
			n.anchorAt(now, e.MediaTime+e.Duration)
			n.startSeq = e.Seq
		}
		if e.Seq < n.startSeq || n.wants[e.Hash] != nil || n.judged[e.Hash] {
			continue
		}
		w := &want{e: e, key: keyOf(e.Seq, ri), sub: int(e.Seq % uint64(n.k)), since: now, deadline: n.deadline(e)}
		if !now.Before(w.deadline) {
			n.judge(e, false) // listed too late to make it
			continue
		}
		n.wants[e.Hash], n.byKey[w.key] = w, w
		n.addWant(w)
		n.listed[w.sub] = now
		if n.httpSub(w.sub, now) && !n.originBusy(now) {
			n.stats.HTTPFed++
			w.pending = append(w.pending, originID)
			n.originIn++
			n.fetch(e)
		}
	}
	n.relayBatches(now, fresh)
}

// remember keeps the newest init segment entry of every rendition, carried
// or not, so that a rendition taken up later (SetRenditions) starts with
// its init segment. At most wire.MaxRenditions are kept.
func (n *Node) remember(e manifest.Entry) {
	if _, known := n.inits[e.Rendition]; known || len(n.inits) < wire.MaxRenditions {
		n.inits[e.Rendition] = e
	}
}

// fetch asks the driver for a chunk from the origin over HTTP.
func (n *Node) fetch(e manifest.Entry) {
	n.fetching[e.Hash] = e
	n.emit(Output{Kind: OutFetchChunk, Entry: e})
}

// relayBatches sends fresh batches to the downstream peers that have not
// had them.
func (n *Node) relayBatches(now time.Time, fresh []uint64) {
	if len(fresh) == 0 || n.rate <= 0 {
		return
	}
	for _, p := range n.plist {
		if len(p.subs) == 0 || p.chokedIt {
			continue
		}
		m := &wire.Manifest{}
		var sent []uint64
		for _, b := range fresh {
			if p.sentBatch.Has(b) {
				continue
			}
			if sb, ok := n.verify.Signed(b); ok {
				m.Batches = append(m.Batches, sb)
				sent = append(sent, b)
			}
			if len(m.Batches) == wire.MaxBatches {
				break
			}
		}
		if len(m.Batches) > 0 && n.sendCharged(now, p, m) {
			for _, b := range sent {
				p.noteBatchSent(b)
			}
		}
	}
}

// ChunkFetched takes the answer to an OutFetchChunk: the bytes (verified
// like any other) or the failure.
func (n *Node) ChunkFetched(now time.Time, id manifest.ID, data []byte, err error) error {
	e, ok := n.fetching[id]
	if !ok {
		return nil // not asked, or asked and answered already
	}
	delete(n.fetching, id)
	if w := n.wants[id]; w != nil {
		w.pending = remove(w.pending, originID)
	}
	if e.Kind == manifest.KindChunk && !n.p.Seed {
		n.originIn--
	}
	switch {
	case errors.Is(err, ErrOriginBusy):
		n.refused(now)
		if e.Kind == manifest.KindInit {
			n.retryInit(e) // asked again by the first tick after the wait
		}
	case err == nil:
		n.busyStrikes = 0
	}
	if err == nil {
		if _, err = n.verify.Check(id, data); err != nil {
			n.stats.Rejected++
		}
	}
	switch {
	case err == nil:
		if e.Kind == manifest.KindInit {
			n.initStrikes = 0
		}
		n.accept(now, e, data, nil, false)
	case e.Kind == manifest.KindInit && !errors.Is(err, ErrOriginBusy):
		n.initFailed(now, e)
	}
	n.pump(now)
	return err
}

// initFailed lists init segment e, whose fetch failed other than for load,
// to be fetched again after a jittered wait that grows with each failure
// in a row: a rendition cannot play without its init segment, and the
// manifest lists it only once.
func (n *Node) initFailed(now time.Time, e manifest.Entry) {
	wait := min(busyBase<<n.initStrikes, busyMax)
	n.initStrikes = min(n.initStrikes+1, 5)
	n.initUntil = now.Add(wait/2 + time.Duration(n.rng.Int64N(int64(wait))))
	n.retryInit(e)
}

// Waits after the origin refuses a fetch for load: busyBase, doubling with
// each refusal in a row up to busyMax, each jittered to 0.5–1.5× so that
// the viewers refused together do not come back together.
const (
	busyBase = 250 * time.Millisecond
	busyMax  = 4 * time.Second
)

// refused notes that the origin refused a fetch for load (ErrOriginBusy):
// it is not asked over HTTP again until the wait ends, and the chunks meant
// for it are left to the planner, which asks peers. Refusals of fetches
// sent before the wait began do not lengthen it.
func (n *Node) refused(now time.Time) {
	n.stats.OriginBusy++
	if n.originBusy(now) {
		return
	}
	wait := min(busyBase<<n.busyStrikes, busyMax)
	n.busyStrikes = min(n.busyStrikes+1, 5)
	n.busyUntil = now.Add(wait/2 + time.Duration(n.rng.Int64N(int64(wait))))
}

// originBusy reports whether the origin is being left alone after a
// refusal.
func (n *Node) originBusy(now time.Time) bool { return now.Before(n.busyUntil) }

// retryInits asks the origin again for the init segments it refused for
// load or failed to give (a rendition cannot play without its own), in the
// order they were listed: a core's outputs follow from its inputs alone.
func (n *Node) retryInits(now time.Time) {
	if len(n.initRetry) == 0 || n.originBusy(now) || now.Before(n.initUntil) {
		return
	}
	retry := n.initRetry
	n.initRetry = nil
	for _, e := range retry {
		_, fetching := n.fetching[e.Hash]
		if _, carried := n.ri[e.Rendition]; carried && !fetching && !n.store.Has(e.Hash) {
			n.fetch(e)
		}
	}
}

// retryInit lists init segment e to be fetched again after the waits, once.
func (n *Node) retryInit(e manifest.Entry) {
	if !slices.ContainsFunc(n.initRetry, func(r manifest.Entry) bool { return r.Hash == e.Hash }) && len(n.initRetry) < wire.MaxRenditions {
		n.initRetry = append(n.initRetry, e)
	}
}

// accept stores a verified chunk, counts it, says it is ready, and queues it
// for the downstreams subscribed to its substream.
func (n *Node) accept(now time.Time, e manifest.Entry, data []byte, from *peer, pushed bool) {
	if _, carried := n.ri[e.Rendition]; !carried || n.store.Has(e.Hash) {
		return // a rendition dropped since it was asked for, or a duplicate
	}
	n.store.Put(e.Hash, data)
	n.stats.Chunks++
	var begun []*peer // subscribers whose push began as the chunk arrived
	if in := n.inbound[e.Hash]; in != nil {
		in.data, in.from = data, nil
		begun = in.to
		delete(n.inbound, e.Hash)
		n.obs.Add(e.Hash, in.outboard)
	}
	switch {
	case from != nil && from.remote == protocol.OriginPeer:
		// The origin's seed over a data channel is still the origin.
		n.stats.BytesFromOrigin += int64(len(data))
		n.stats.BytesFromSeed += int64(len(data))
	case from != nil:
		n.stats.BytesFromPeers += int64(len(data))
	default:
		n.stats.BytesFromOrigin += int64(len(data))
	}
	if from != nil {
		if pushed {
			n.stats.Pushed++
		} else {
			n.stats.Pulled++
		}
	}
	if e.Kind != manifest.KindChunk {
		n.emit(Output{Kind: OutReady, Entry: e})
		return
	}
	if ri, ok := n.ri[e.Rendition]; ok {
		n.held[ri].Add(e.Seq)
		n.newest = max(n.newest, e.Seq)
		// Only what haves announce is kept: nothing reads an older seq.
		n.held[ri].Advance(n.newest + 1 - min(n.newest+1, haveWindow))
		n.heldID[keyOf(e.Seq, ri)] = e.Hash
		if len(n.heldID) > 4*backfill*len(n.rends) {
			low := keyOf(n.newest+1-min(n.newest+1, backfill), 0)
			for k := range n.heldID {
				if k < low {
					delete(n.heldID, k)
				}
			}
		}
	}
	if w := n.wants[e.Hash]; w != nil {
		n.cancel(w, from)
		n.dropWant(w)
		n.judge(e, now.Before(w.deadline))
	}
	n.headOff(now, e, from, pushed)
	if !n.p.Seed {
		n.emit(Output{Kind: OutReady, Entry: e, Deadline: n.deadline(e)})
	}
	lat := now.Sub(e.IngestTime)
	if len(n.latencies) < 512 {
		n.latencies = append(n.latencies, lat)
	} else {
		n.latencies[n.latNext] = lat
		n.latNext = (n.latNext + 1) % len(n.latencies)
	}
	if n.rate <= 0 {
		return
	}
	for _, p := range n.plist {
		if n.pushesTo(p, e, from) && !slices.Contains(begun, p) {
			n.queue(&upJob{p: p, e: e, data: data, kind: scheduler.UploadPush, at: now})
		}
	}
}

// headOff tells the pusher of a chunk's substream at once that this node
// holds it, when the chunk came another way (pulled, from the origin, or
// pushed by another): its push, queued or begun, is then of no use, and the
// pusher drops it (takeHave) instead of spending its budget on a duplicate
// while its other downstreams wait. Without it the pusher learns of it from
// the next have, up to haveEvery later, and never from a node relaying
// nothing, which announces nothing.
func (n *Node) headOff(now time.Time, e manifest.Entry, from *peer, pushed bool) {
	if n.p.Seed {
		return
	}
	k := int(e.Seq % uint64(n.k))
	q := n.ups[n.upstreams[k]]
	if q == nil || !q.subsTo[k] || q == from && pushed {
		return
	}
	// Not charged to the relay budget, as requests are not: a node
	// relaying nothing sends it too.
	n.send(q, n.haveOf(e.Rendition))
}

// pushesTo reports whether chunk e is pushed to q: q subscribes to its
// substream, is not choked, and is not from, the peer it came from.
func (n *Node) pushesTo(q *peer, e manifest.Entry, from *peer) bool {
	return q != from && !q.chokedIt && q.subs[subKey{e.Rendition, int(e.Seq % uint64(n.k))}]
}

// cancel withdraws the requests still pending for a chunk that came another
// way.
func (n *Node) cancel(w *want, from *peer) {
	for _, pid := range w.pending { // the peers asked, in the order they were
		p := n.byID[pid]
		if p == nil || p == from {
			continue
		}
		for _, id := range sortedReqs(p.inflight) {
			if p.inflight[id].w == w {
				delete(p.inflight, id)
				n.send(p, &wire.Cancel{ReqID: id, ID: w.e.Hash})
			}
		}
	}
	w.pending = w.pending[:0]
}

// addWant lists a want in key order (nearly always at the end: entries
// come in seq order).
func (n *Node) addWant(w *want) {
	i := len(n.wantList)
	for i > 0 && n.wantList[i-1].key > w.key {
		i--
	}
	n.wantList = slices.Insert(n.wantList, i, w)
}

// dropWant forgets a want.
func (n *Node) dropWant(w *want) {
	if in := n.inbound[w.e.Hash]; in != nil {
		// Given up before it came whole: so are the pushes on.
		n.dropSource(in)
		delete(n.inbound, w.e.Hash)
	}
	delete(n.wants, w.e.Hash)
	delete(n.byKey, w.key)
	if i := slices.Index(n.wantList, w); i >= 0 {
		n.wantList = slices.Delete(n.wantList, i, i+1)
	}
}

// judge counts a chunk on time or late, once.
func (n *Node) judge(e manifest.Entry, onTime bool) {
	if n.judged[e.Hash] {
		return
	}
	n.judged[e.Hash] = true
	if onTime {
		n.stats.ChunksOnTime++
	} else {
		n.stats.ChunksLate++
	}
	if len(n.judged) > 16384 {
		clear(n.judged) // what is judged has left the window long ago
	}
}

// tick is one scheduling round: missed deadlines are counted, stale
// requests cancelled, pushers that miss are found out, and the planner's
// pulls are sent.
func (n *Node) tick(now time.Time) {
	var expired []*want
	for _, w := range n.wantList {
		if !now.Before(w.deadline) {
			expired = append(expired, w)
		}
	}
	for _, w := range expired {
		n.judge(w.e, false)
		n.cancel(w, nil)
		n.dropWant(w)
	}
	// Requests outstanding far past what the peer's pace promised.
	for _, p := range n.plist {
		if len(p.inflight) == 0 {
			continue
		}
		for _, id := range sortedReqs(p.inflight) {
			f := p.inflight[id]
			if now.Sub(f.sent) > 4*p.rtt+500*time.Millisecond {
				delete(p.inflight, id)
				f.w.pending = remove(f.w.pending, p.id)
				p.bps /= 2 // it is slower than we thought
				n.send(p, &wire.Cancel{ReqID: id, ID: f.w.e.Hash})
			}
		}
	}
	// A stalled pusher is reported to the tracker; pulls cover it meanwhile.
	for _, p := range n.plist {
		if !p.up || n.ups[p.remote] != p {
			continue
		}
		u := p.push
		for k := range p.subsTo {
			u.LastListed = maxTime(u.LastListed, n.listed[k])
		}
		if !p.stalled && p.remote != protocol.OriginPeer && scheduler.Stalled(now, u, n.pushParams()) {
			p.stalled = true
			n.stalled = append(n.stalled, p.remote)
			n.nextReport = now
		}
	}
	if len(n.wants) > 0 {
		n.plan(now)
	}
	n.retryInits(now)
}

// plan runs the pull planner: chunks still left to their pusher count as
// pending there; the origin (its seed's link, or HTTP) is asked only near
// deadlines.
func (n *Node) plan(now time.Time) {
	n.chunks = n.chunks[:0]
	for _, w := range n.wantList { // in key order
		pending := w.pending
		if p := n.pusher(w.sub); p != nil && scheduler.WaitForPush(now, w.since, w.deadline, p.push, n.pushParams()) {
			pending = append(pending[:len(pending):len(pending)], p.id)
		}
		n.chunks = append(n.chunks, scheduler.Chunk{Seq: w.key, Deadline: w.deadline, Size: int(w.e.Size), Pending: pending})
	}
	if !n.plannable(now) {
		return
	}
	n.states = n.states[:0]
	seedLink := false
	for _, p := range n.plist {
		st := scheduler.PeerState{
			ID: p.id, Have: &p.have, BytesPerSec: p.bps, RTT: p.rtt, InFlight: len(p.inflight),
			// A downstream relaying nothing serves no request; its haves
			// only head off pushes (headOff).
			Choked: p.choked || now.Sub(p.refused) < time.Second || !p.up && !p.relays,
		}
		if p.remote == protocol.OriginPeer {
			// The origin's seed is the origin: asked only near deadlines,
			// over its data channel rather than HTTP.
			if st.Choked {
				continue
			}
			st.IsOrigin, seedLink = true, true
		}
		n.states = append(n.states, st)
	}
	if !seedLink {
		n.states = append(n.states, scheduler.PeerState{
			ID: originID, IsOrigin: true, InFlight: n.originIn, RTT: n.guard.Status().Smoothed, Choked: n.originBusy(now),
		})
	}
	n.reqs = n.planner.Plan(n.reqs[:0], now, n.chunks, n.states)
	for _, r := range n.reqs {
		w := n.byKey[r.Seq]
		if w == nil {
			continue
		}
		w.pending = append(w.pending, r.Peer)
		if n.pusher(w.sub) == nil {
			n.stats.PullsNoPusher++
		} else {
			n.stats.PullsLatePush++
		}
		p := n.byID[r.Peer]
		if r.Peer == originID || p != nil && p.remote == protocol.OriginPeer {
			n.stats.OriginPulls++
		}
		if r.Peer == originID {
			if _, busy := n.fetching[w.e.Hash]; !busy {
				n.originIn++
				n.fetch(w.e)
			}
			continue
		}
		if p == nil {
			continue
		}
		n.nextReq++
		if n.nextReq == 0 {
			n.nextReq = 1
		}
		p.inflight[n.nextReq] = &inflight{w: w, sent: now}
		n.send(p, &wire.Request{ReqID: n.nextReq, ID: w.e.Hash, Rendition: w.e.Rendition, Seq: w.e.Seq})
	}
}

// plannable reports whether the planner could ask for anything now: some
// chunk is pending nowhere, or near enough its deadline for a duplicate
// request (scheduler.PullParams.DuplicateWindow, at most two asked). When
// none is, Plan would return no request, and is skipped.
func (n *Node) plannable(now time.Time) bool {
	for i := range n.chunks {
		c := &n.chunks[i]
		if len(c.Pending) == 0 || len(c.Pending) < 2 && c.Deadline.Sub(now) < n.pull.DuplicateWindow {
			return true
		}
	}
	return false
}

func cmpKey(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (n *Node) pushParams() scheduler.PushParams {
	return scheduler.PushParams{Grace: n.p.PushGrace, StallAfter: n.p.StallAfter, OriginMargin: n.pull.OriginMargin}
}

// announce sends the peers what this node holds, when that changed.
func (n *Node) announce(now time.Time) {
	if n.rate <= 0 || len(n.plist) == 0 || n.stats.Chunks == n.announced {
		return
	}
	n.announced = n.stats.Chunks
	haves := make([]wire.Message, 0, len(n.rends))
	for _, r := range n.rends {
		haves = append(haves, n.haveOf(r))
	}
	for _, p := range n.plist {
		if !p.chokedIt {
			n.sendCharged(now, p, haves...)
		}
	}
}

// haveOf is what this node holds of rendition r over the last haveWindow
// seqs.
func (n *Node) haveOf(r string) *wire.Have {
	ri := n.ri[r]
	base := n.newest + 1 - min(n.newest+1, haveWindow)
	h := &wire.Have{Rendition: r, Base: base, Bits: haveWindow, Bitmap: make([]byte, haveWindow/8)}
	for seq := base; seq < base+haveWindow; seq++ {
		if n.held[ri].Has(seq) {
			h.Set(seq)
		}
	}
	return h
}

// report sends the tracker this node's health, the upstreams found stalled
// and what each peer delivered since the last report; the peers get this
// node's stats. Figures are clamped to the protocol's limits (a node that
// buffered more than protocol.MaxBufferSec says that much).
func (n *Node) report(now time.Time) {
	n.nextReport = now.Add(n.p.ReportEvery)
	r := &protocol.Report{
		NewestSeq: n.newest, BytesFromPeers: uint64(n.stats.BytesFromPeers), BytesFromOrigin: uint64(n.stats.BytesFromOrigin),
		BytesFromSeed: uint64(n.stats.BytesFromSeed), ChunksOnTime: uint64(n.stats.ChunksOnTime), ChunksLate: uint64(n.stats.ChunksLate),
		LatencyMs: int(min(n.latencyP50(), time.Minute).Milliseconds()),
		RTTms:     int(min(n.guard.Status().Smoothed.Milliseconds(), protocol.MaxRTTms)), Stalled: n.stalled,
		Received: n.receipts(),
	}
	n.stats.StallReports += len(n.stalled)
	n.stalled = nil
	if !n.lastRep.at.IsZero() {
		if d := now.Sub(n.lastRep.at).Seconds(); d > 0 {
			r.UploadKbps = int(min(float64(n.stats.BytesUploaded-n.lastRep.uploaded)*8/1000/d, protocol.MaxBudgetKbps))
		}
	}
	n.lastRep.at, n.lastRep.uploaded = now, n.stats.BytesUploaded
	r.BufferSec = min(n.buffer(now).Seconds(), protocol.MaxBufferSec)
	if kbps := n.relayKbps(); kbps != n.toldRelay {
		// The RTT guard or the user moved the relay budget: the tracker
		// sizes this node's slots from what it is told.
		n.toldRelay = kbps
		r.RelayKbps = &kbps
	}
	n.emit(Output{Kind: OutReport, Report: r})
	st := &wire.Stats{BufferMs: uint32(r.BufferSec * 1000), UploadKbps: uint32(r.UploadKbps), Peers: uint16(min(len(n.plist), 65535))}
	for _, p := range n.plist {
		n.send(p, st)
	}
	n.linkUpstreams(now) // an upstream whose backoff ended is dialed again
}

// receipts returns, and forgets, the media bytes each peer delivered since
// the last report: the most first (peer id breaking ties, so that the
// output does not depend on map order), at most protocol.MaxReceipts.
func (n *Node) receipts() []protocol.Receipt {
	if len(n.received) == 0 {
		return nil
	}
	rs := make([]protocol.Receipt, 0, len(n.received))
	for id, b := range n.received {
		rs = append(rs, protocol.Receipt{Peer: id, Bytes: min(b, protocol.MaxReceiptBytes)})
	}
	clear(n.received)
	slices.SortFunc(rs, func(a, b protocol.Receipt) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Peer, b.Peer))
	})
	return rs[:min(len(rs), protocol.MaxReceipts)]
}

// buffer is how much media ahead of the playhead is held without a gap (of
// the first rendition).
func (n *Node) buffer(now time.Time) time.Duration {
	if n.p.Seed || len(n.rends) == 0 {
		return 0
	}
	pos := n.playFrom + now.Sub(n.t0) // media time playing now
	var buf time.Duration
	d := n.chunkDur()
	seq := uint64(max(pos, 0) / d)
	first := n.held[n.ri[n.rends[0]]]
	for first.Has(seq) {
		seq++
		buf = time.Duration(seq)*d - pos
	}
	return max(buf, 0)
}

// chunkDur is the stream's chunk duration.
func (n *Node) chunkDur() time.Duration {
	if n.chunkD > 0 {
		return n.chunkD
	}
	return manifest.DefaultChunkDuration
}

// latencyP50 is the median delivery latency of the last chunks held (0
// before any): what reports tell the operator's dashboard. It sorts a copy
// of at most 512 samples, once a report.
func (n *Node) latencyP50() time.Duration {
	if len(n.latencies) == 0 {
		return 0
	}
	l := slices.Clone(n.latencies)
	slices.Sort(l)
	return max(l[len(l)/2], 0)
}
