package swarm

import (
	"context"
	"time"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker"
)

// originID is the planner's name for the origin over HTTP.
const originID = "origin/http"

// learn takes newly verified entries (of the batches fresh): the chunks this
// node needs become wants, substreams fed over HTTP are fetched at once, and
// the batches are relayed to the downstreams.
func (n *Node) learn(entries []chunker.Entry, fresh []uint64) {
	if len(entries) == 0 {
		return
	}
	now := time.Now()
	var fetch []chunker.Entry
	n.mu.Lock()
	for _, b := range fresh {
		n.batches.Add(b)
	}
	for n.batches.Has(uint64(n.contig + 1)) {
		n.contig++
	}
	n.batches.Advance(uint64(n.contig + 1))
	for _, e := range entries {
		ri, ok := n.ri[e.Rendition]
		if !ok || n.store.Has(e.Hash) || n.fetching[e.Hash] {
			continue
		}
		if n.p.Seed || e.Kind == chunker.KindInit {
			n.fetching[e.Hash] = true
			fetch = append(fetch, e)
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
			n.judgeLocked(e, false) // listed too late to make it
			continue
		}
		n.wants[e.Hash], n.byKey[w.key] = w, w
		n.listed[w.sub] = now
		if n.httpSubLocked(w.sub, now) {
			n.stats.HTTPFed++
			n.fetching[e.Hash] = true
			w.pending = append(w.pending, originID)
			n.originIn++
			fetch = append(fetch, e)
		}
	}
	targets := n.batchTargetsLocked(fresh, now)
	n.mu.Unlock()
	for _, e := range fetch {
		n.goRun(func() { n.fetch(e) })
	}
	for _, t := range targets {
		n.sendFrameCharged(t.p, t.frame, true)
	}
}

type batchSend struct {
	p     *peer
	frame []byte
}

// batchTargetsLocked builds the Manifest messages that relay fresh batches
// to downstream peers that have not had them.
func (n *Node) batchTargetsLocked(fresh []uint64, now time.Time) []batchSend {
	if len(fresh) == 0 || n.rate <= 0 {
		return nil
	}
	var out []batchSend
	for _, p := range n.peers {
		if len(p.subs) == 0 || p.chokedIt {
			continue
		}
		var m wire.Manifest
		for _, b := range fresh {
			if p.sentBatch.Has(b) {
				continue
			}
			if sb, ok := n.verify.Signed(b); ok {
				m.Batches = append(m.Batches, sb)
				p.noteBatchSent(b)
			}
			if len(m.Batches) == wire.MaxBatches {
				break
			}
		}
		if len(m.Batches) == 0 {
			continue
		}
		if frame, err := wire.AppendFrame(nil, &m); err == nil {
			out = append(out, batchSend{p, frame})
		}
	}
	return out
}

// fetch gets a chunk from the origin (verified like any other).
func (n *Node) fetch(e chunker.Entry) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	data, err := n.src.Chunk(ctx, e.Hash)
	cancel()
	if err == nil {
		if _, err = n.verify.Check(e.Hash, data); err != nil {
			n.mu.Lock()
			n.stats.Rejected++
			n.mu.Unlock()
			n.log.Warn("origin chunk refused", "err", err)
		}
	}
	n.mu.Lock()
	delete(n.fetching, e.Hash)
	if w := n.wants[e.Hash]; w != nil {
		w.pending = remove(w.pending, originID)
	}
	if e.Kind == chunker.KindChunk && !n.p.Seed {
		n.originIn--
	}
	n.mu.Unlock()
	if err == nil {
		n.accept(e, data, nil, false)
	} else if n.ctx.Err() == nil {
		n.log.Debug("origin fetch", "chunk", e.Hash, "err", err)
	}
}

// accept stores a verified chunk, counts it, and queues it for the
// downstreams subscribed to its substream.
func (n *Node) accept(e chunker.Entry, data []byte, from *peer, pushed bool) {
	if n.store.Has(e.Hash) {
		return
	}
	n.store.Put(e.Hash, data)
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stats.Chunks++
	switch {
	case from != nil && from.lk.Peer == tracker.OriginPeer:
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
	if e.Kind != chunker.KindChunk {
		return
	}
	if ri, ok := n.ri[e.Rendition]; ok {
		n.held[ri].Add(e.Seq)
		n.newest = max(n.newest, e.Seq)
		n.held[ri].Advance(n.newest - min(n.newest, seqMemory)) // bounded on a day-long stream
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
		n.cancelLocked(w, from)
		delete(n.wants, e.Hash)
		delete(n.byKey, w.key)
		n.judgeLocked(e, now.Before(w.deadline))
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
	key := subKey{e.Rendition, int(e.Seq % uint64(n.k))}
	for _, p := range n.peers {
		if p.subs[key] && !p.chokedIt && p != from {
			n.queueLocked(&upJob{p: p, e: e, data: data, kind: scheduler.UploadPush, at: now})
		}
	}
}

// cancelLocked withdraws the requests still pending for a chunk that came
// another way; the cancels go out with the next tick's messages.
func (n *Node) cancelLocked(w *want, from *peer) {
	for _, p := range n.peers {
		for id, f := range p.inflight {
			if f.w == w && p != from {
				delete(p.inflight, id)
				n.cancels = append(n.cancels, ctlSend{p.lk, &wire.Cancel{ReqID: id, ID: w.e.Hash}})
			}
		}
	}
	w.pending = w.pending[:0]
}

// judgeLocked counts a chunk on time or late, once.
func (n *Node) judgeLocked(e chunker.Entry, onTime bool) {
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

// tickLoop runs the scheduler and the health reports.
func (n *Node) tickLoop() {
	tick := time.NewTicker(n.p.TickEvery)
	defer tick.Stop()
	report := time.NewTicker(n.p.ReportEvery)
	defer report.Stop()
	var lastHave time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-tick.C:
			n.tick(now)
			if now.Sub(lastHave) >= haveEvery {
				n.announce(now)
				lastHave = now
			}
		case now := <-report.C:
			n.report(now)
		case <-n.reportC:
			n.report(time.Now())
		}
	}
}

type ctlSend struct {
	lk *Link
	m  wire.Message
}

// tick is one scheduling round: missed deadlines are counted, stale
// requests cancelled, pushers that miss are found out, and the planner's
// pulls are sent.
func (n *Node) tick(now time.Time) {
	if n.p.Seed {
		return
	}
	var sends []ctlSend
	var fetch []chunker.Entry
	stall := false
	n.mu.Lock()
	for id, w := range n.wants {
		if now.Before(w.deadline) {
			continue
		}
		n.judgeLocked(w.e, false)
		n.cancelLocked(w, nil)
		delete(n.wants, id)
		delete(n.byKey, w.key)
	}
	// Requests outstanding far past what the peer's pace promised.
	for _, p := range n.peers {
		for id, f := range p.inflight {
			limit := 4*p.rtt + 500*time.Millisecond
			if now.Sub(f.sent) > limit {
				delete(p.inflight, id)
				f.w.pending = remove(f.w.pending, p.id)
				p.bps /= 2 // it is slower than we thought
				sends = append(sends, ctlSend{p.lk, &wire.Cancel{ReqID: id, ID: f.w.e.Hash}})
			}
		}
	}
	// A stalled pusher is reported to the tracker; pulls cover it meanwhile.
	for _, p := range n.ups {
		u := p.push
		for k := range p.subsTo {
			u.LastListed = maxTime(u.LastListed, n.listed[k])
		}
		if !p.rep.stalled && p.lk.Peer != tracker.OriginPeer && scheduler.Stalled(now, u, n.pushParams()) {
			p.rep.stalled = true
			n.stalled = append(n.stalled, p.lk.Peer)
			stall = true
		}
	}
	// Plan: chunks still left to their pusher count as pending there.
	n.chunks = n.chunks[:0]
	for _, w := range n.wants {
		pending := w.pending
		if p := n.pusherLocked(w.sub); p != nil && scheduler.WaitForPush(now, w.since, w.deadline, p.push, n.pushParams()) {
			pending = append(pending[:len(pending):len(pending)], p.id)
		}
		n.chunks = append(n.chunks, scheduler.Chunk{Seq: w.key, Deadline: w.deadline, Size: int(w.e.Size), Pending: pending})
	}
	n.states = n.states[:0]
	byID := map[string]*peer{}
	seedLink := false
	for _, p := range n.peers {
		byID[p.id] = p
		st := scheduler.PeerState{
			ID: p.id, Have: &p.have, BytesPerSec: p.bps, RTT: p.rtt, InFlight: len(p.inflight),
			Choked: p.choked || now.Sub(p.refused) < time.Second,
		}
		if p.lk.Peer == tracker.OriginPeer {
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
		n.states = append(n.states, scheduler.PeerState{ID: originID, IsOrigin: true, InFlight: n.originIn, RTT: n.guard.Status().Smoothed})
	}
	n.reqs = n.planner.Plan(n.reqs[:0], now, n.chunks, n.states)
	for _, r := range n.reqs {
		w := n.byKey[r.Seq]
		if w == nil {
			continue
		}
		w.pending = append(w.pending, r.Peer)
		if n.pusherLocked(w.sub) == nil {
			n.stats.PullsNoPusher++
		} else {
			n.stats.PullsLatePush++
		}
		if p := byID[r.Peer]; r.Peer == originID || p != nil && p.lk.Peer == tracker.OriginPeer {
			n.stats.OriginPulls++
		}
		if r.Peer == originID {
			if !n.fetching[w.e.Hash] {
				n.fetching[w.e.Hash] = true
				n.originIn++
				fetch = append(fetch, w.e)
			}
			continue
		}
		p := byID[r.Peer]
		n.nextReq++
		if n.nextReq == 0 {
			n.nextReq = 1
		}
		p.inflight[n.nextReq] = &inflight{w: w, sent: now}
		sends = append(sends, ctlSend{p.lk, &wire.Request{ReqID: n.nextReq, ID: w.e.Hash, Rendition: w.e.Rendition, Seq: w.e.Seq}})
	}
	sends = append(sends, n.cancels...)
	clear(n.cancels)
	n.cancels = n.cancels[:0]
	n.mu.Unlock()
	for _, s := range sends {
		n.sendControl(s.lk, s.m)
	}
	for _, e := range fetch {
		n.goRun(func() { n.fetch(e) })
	}
	if stall {
		n.report(now)
	}
}

func (n *Node) pushParams() scheduler.PushParams {
	return scheduler.PushParams{Grace: n.p.PushGrace, StallAfter: n.p.StallAfter, OriginMargin: n.pull.OriginMargin}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// announce sends each linked peer what this node holds (a Have per
// rendition over the last haveWindow seqs) when that changed, every
// haveEvery at most, and only when it relays at all.
const (
	haveWindow = 128
	haveEvery  = 250 * time.Millisecond
)

func (n *Node) announce(now time.Time) {
	n.mu.Lock()
	if n.rate <= 0 || len(n.peers) == 0 || n.stats.Chunks == n.announced {
		n.mu.Unlock()
		return
	}
	n.announced = n.stats.Chunks
	var frames []byte
	base := n.newest + 1 - min(n.newest+1, haveWindow)
	for ri, r := range n.rends {
		h := wire.Have{Rendition: r, Base: base, Bits: haveWindow, Bitmap: make([]byte, haveWindow/8)}
		for seq := base; seq < base+haveWindow; seq++ {
			if n.held[ri].Has(seq) {
				h.Set(seq)
			}
		}
		n.held[ri].Advance(base)
		frames = h.Append(frames)
	}
	var to []*peer
	for _, p := range n.peers {
		if !p.chokedIt {
			to = append(to, p)
		}
	}
	n.mu.Unlock()
	for _, p := range to {
		n.sendFrameCharged(p, frames, true)
	}
}

// report sends the tracker this node's health, and the upstreams found
// stalled since the last report.
func (n *Node) report(now time.Time) {
	n.mu.Lock()
	r := tracker.Report{
		NewestSeq: n.newest, BytesFromPeers: uint64(n.stats.BytesFromPeers), BytesFromOrigin: uint64(n.stats.BytesFromOrigin),
		RTTms: int(n.guard.Status().Smoothed.Milliseconds()), Stalled: n.stalled,
	}
	n.stats.StallReports += len(n.stalled)
	n.stalled = nil
	if !n.lastRep.at.IsZero() {
		if d := now.Sub(n.lastRep.at).Seconds(); d > 0 {
			r.UploadKbps = int(float64(n.stats.BytesUploaded-n.lastRep.uploaded) * 8 / 1000 / d)
		}
	}
	n.lastRep.at, n.lastRep.uploaded = now, n.stats.BytesUploaded
	r.BufferSec = n.bufferLocked(now).Seconds()
	bufMs := uint32(r.BufferSec * 1000)
	var ups []*Link // every peer that might answer our requests
	for _, p := range n.peers {
		ups = append(ups, p.lk)
	}
	peers := len(n.peers)
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	if err := n.tc.Report(ctx, r); err != nil && n.ctx.Err() == nil {
		n.log.Debug("report", "err", err)
	}
	for _, lk := range ups {
		n.sendControl(lk, &wire.Stats{BufferMs: bufMs, UploadKbps: uint32(r.UploadKbps), Peers: uint16(min(peers, 65535))})
	}
}

// bufferLocked is how much media ahead of the playhead is held without a
// gap (of the first rendition).
func (n *Node) bufferLocked(now time.Time) time.Duration {
	if n.p.Seed || len(n.rends) == 0 {
		return 0
	}
	pos := n.playFrom + now.Sub(n.t0) // media time playing now
	var buf time.Duration
	d := n.chunkDur()
	if d <= 0 {
		return 0
	}
	seq := uint64(max(pos, 0) / d)
	for n.held[0].Has(seq) {
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
	return chunker.DefaultChunkDuration
}
