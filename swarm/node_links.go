package swarm

import (
	"context"
	"errors"
	"time"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker"
)

// peer is one open link and what the node knows of the peer behind it.
type peer struct {
	lk  *Link
	id  string // the planner's name for this link (peer id and direction)
	up  bool   // this node dialed it: an upstream
	re  *wire.Reassembler
	rep struct{ stalled bool } // reported stalled to the tracker

	// As a source.
	have    scheduler.SeqSet  // keys it announced or sent
	choked  bool              // it choked us
	refused time.Time         // it rejected a request for lack of budget at
	subsTo  map[int]bool      // substreams subscribed from it (upstream links)
	subAt   map[int]time.Time // when each was subscribed
	// push is what the stall and grace policies see of it as a pusher
	// (scheduler.Stalled, scheduler.WaitForPush).
	push     scheduler.Pusher
	bps      float64 // measured throughput of its answers
	rtt      time.Duration
	inflight map[uint32]*inflight

	// As a downstream.
	subs      map[subKey]bool
	sentBatch scheduler.SeqSet // manifest batches sent to it
	bufferMs  uint32           // what its stats say it has buffered
	relays    bool             // its hello offers a relay budget
	queued    int              // upload jobs waiting for it
	chokedIt  bool             // we sent it Choke
}

// haveSpan is how far from its own newest chunk a node records what peers
// announce.
const haveSpan = 1024

// seqMemory bounds the sequence-number sets a node keeps (chunks held,
// batches sent to a peer): far more than any window, and a few KB.
const seqMemory = 16384

// noteBatchSent records that the peer has batch b.
func (p *peer) noteBatchSent(b uint64) {
	p.sentBatch.Add(b)
	p.sentBatch.Advance(b - min(b, seqMemory))
}

type inflight struct {
	w    *want
	sent time.Time
}

type subKey struct {
	rendition string
	index     int
}

func (n *Node) newPeer(lk *Link, up bool) *peer {
	dir := "/d"
	if up {
		dir = "/u"
	}
	return &peer{
		lk: lk, id: string(lk.Peer) + dir, up: up, re: wire.NewReassembler(wire.ReassemblerParams{}),
		subsTo: map[int]bool{}, subAt: map[int]time.Time{}, inflight: map[uint32]*inflight{}, subs: map[subKey]bool{},
	}
}

// httpFedLocked reports whether some substream has no usable upstream link
// and so comes over HTTP.
func (n *Node) httpFedLocked() bool {
	if n.p.Seed {
		return false
	}
	for k := range n.upstreams {
		if n.httpSubLocked(k, time.Now()) {
			return true
		}
	}
	return false
}

// httpSubLocked reports whether substream k is fetched from the origin over
// HTTP as soon as it is listed: it has no upstream, or its upstream is the
// origin and its seed cannot be reached.
func (n *Node) httpSubLocked(k int, now time.Time) bool {
	u := n.upstreams[k]
	if u == "" {
		return true
	}
	if u != tracker.OriginPeer || n.ups[u] != nil || n.dialing[u] {
		return false
	}
	return now.Before(n.backoff[u])
}

// pusherLocked returns the live upstream link that pushes substream k.
func (n *Node) pusherLocked(k int) *peer {
	u := n.upstreams[k]
	if u == "" {
		return nil
	}
	p := n.ups[u]
	if p == nil || p.choked || p.rep.stalled || !p.subsTo[k] {
		return nil
	}
	return p
}

// linkUpstreams brings the links to the assigned upstreams in line with the
// substream table: it dials missing upstreams, subscribes and unsubscribes
// substreams, and closes links no substream uses any more.
func (n *Node) linkUpstreams() {
	if n.p.Seed {
		return
	}
	now := time.Now()
	type send struct {
		lk *Link
		m  wire.Message
	}
	var sends []send
	var closes []*Link
	n.mu.Lock()
	want := map[tracker.PeerID]map[int]bool{}
	for k, u := range n.upstreams {
		if u == "" {
			continue
		}
		if want[u] == nil {
			want[u] = map[int]bool{}
		}
		want[u][k] = true
	}
	for id, p := range n.ups {
		ks := want[id]
		for k := range p.subsTo {
			if !ks[k] {
				delete(p.subsTo, k)
				for _, r := range n.rends {
					sends = append(sends, send{p.lk, &wire.Unsubscribe{Rendition: r, K: uint16(n.k), Index: uint16(k)}})
				}
			}
		}
		for k := range ks {
			if !p.subsTo[k] {
				p.subsTo[k], p.subAt[k] = true, now
				for _, r := range n.rends {
					sends = append(sends, send{p.lk, &wire.Subscribe{Rendition: r, K: uint16(n.k), Index: uint16(k)}})
				}
			}
		}
		if len(p.subsTo) == 0 {
			closes = append(closes, p.lk)
			delete(n.ups, id)
		}
	}
	for id, until := range n.backoff {
		if now.After(until) {
			delete(n.backoff, id)
		}
	}
	var dials []tracker.PeerID
	for id := range want {
		if n.ups[id] == nil && !n.dialing[id] && !now.Before(n.backoff[id]) {
			n.dialing[id] = true
			dials = append(dials, id)
		}
	}
	n.mu.Unlock()
	for _, s := range sends {
		n.sendControl(s.lk, s.m)
	}
	for _, lk := range closes {
		lk.Close()
	}
	for _, id := range dials {
		n.goRun(func() { n.dial(id) })
	}
}

// dial links to an upstream; on failure it backs off, and a peer (not the
// origin) is reported stalled so that the tracker reassigns its substreams.
func (n *Node) dial(id tracker.PeerID) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	lk, err := n.linker.Dial(ctx, id)
	cancel()
	n.mu.Lock()
	delete(n.dialing, id)
	if err != nil {
		n.backoff[id] = time.Now().Add(5 * time.Second)
		if id != tracker.OriginPeer && n.ctx.Err() == nil {
			n.stalled = append(n.stalled, id)
		}
		n.mu.Unlock()
		if n.ctx.Err() == nil {
			n.log.Debug("dial upstream", "remote", id, "err", err)
			n.kickReport()
		}
		return
	}
	p := n.newPeer(lk, true)
	p.push.LastPush = time.Now()
	p.push.LastHave = p.push.LastPush
	n.ups[id] = p
	n.peers[lk] = p
	n.mu.Unlock()
	n.sendControl(lk, &wire.Hello{Version: wire.Version, Renditions: n.rends, BudgetKbps: uint32(n.p.BudgetKbps)})
	n.goRun(func() { n.readLink(p) })
	n.linkUpstreams()
}

// acceptLoop takes the links downstream peers open.
func (n *Node) acceptLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case lk := <-n.linker.Accepted():
			p := n.newPeer(lk, false)
			n.mu.Lock()
			n.peers[lk] = p
			choke := n.rate <= 0
			p.chokedIt = choke
			n.mu.Unlock()
			n.sendControl(lk, &wire.Hello{Version: wire.Version, Renditions: n.rends, BudgetKbps: uint32(n.p.BudgetKbps)})
			if choke {
				n.sendControl(lk, &wire.Choke{Reason: wire.ChokeBudget})
			}
			n.goRun(func() { n.readLink(p) })
		}
	}
}

// readLink handles one link's frames until it closes. A peer that sends a
// malformed message, a bad chunk or a forged manifest is cut off and
// reported; unknown message types are skipped.
func (n *Node) readLink(p *peer) {
	lk := p.lk
	var split wire.Splitter
	defer n.dropPeer(p)
	for {
		var frame []byte
		select {
		case <-n.ctx.Done():
			return
		case <-lk.Done():
			return
		case frame = <-lk.Recv():
		}
		// Data-channel messages are pieces of a byte stream of frames.
		if _, err := split.Write(frame); err != nil {
			n.complain(p, "bad-message", err)
			return
		}
		for {
			f, err := split.Next()
			if err != nil {
				n.complain(p, "bad-message", err)
				return
			}
			if f == nil {
				break
			}
			m, err := wire.Decode(f)
			if errors.Is(err, wire.ErrUnknownType) {
				continue
			}
			if err != nil {
				n.complain(p, "bad-message", err)
				return
			}
			if !n.handle(p, m) {
				return
			}
		}
	}
}

// dropPeer forgets a closed link: its requests are pending no more, its
// upload jobs go, and a lost upstream is reported at once.
func (n *Node) dropPeer(p *peer) {
	p.lk.Close()
	n.mu.Lock()
	delete(n.peers, p.lk)
	for _, f := range p.inflight {
		f.w.pending = remove(f.w.pending, p.id)
	}
	clear(p.inflight)
	n.jobs = dropJobs(n.jobs, func(j *upJob) bool { return j.p == p })
	lost := false
	if p.up && n.ups[p.lk.Peer] == p {
		delete(n.ups, p.lk.Peer)
		if n.ctx.Err() == nil && len(p.subsTo) > 0 {
			lost = true
			if p.lk.Peer != tracker.OriginPeer {
				n.stalled = append(n.stalled, p.lk.Peer)
			} else {
				n.backoff[p.lk.Peer] = time.Now().Add(5 * time.Second)
			}
		}
	}
	n.mu.Unlock()
	if lost {
		n.log.Debug("upstream lost", "remote", p.lk.Peer)
		n.kickReport()
	}
}

// handle acts on one message; false cuts the link.
func (n *Node) handle(p *peer, m wire.Message) bool {
	now := time.Now()
	switch m := m.(type) {
	case *wire.Hello:
		if m.Version < 1 {
			n.complain(p, "bad-message", errors.New("hello version 0"))
			return false
		}
		n.mu.Lock()
		p.relays = m.BudgetKbps > 0
		n.mu.Unlock()
	case *wire.Have:
		n.mu.Lock()
		p.push.LastHave = now
		// A have is a hint from an untrusted peer: only seqs near what this
		// node knows are recorded, so a far-off window cannot make the set
		// grow (a SeqSet spans from its lowest to its highest member).
		ref := max(n.newest, n.startSeq)
		lo, hi := ref-min(ref, haveSpan), ref+haveSpan
		if ri, ok := n.ri[m.Rendition]; ok {
			for i := range m.Bits {
				seq := m.Base + uint64(i)
				if seq < lo || seq > hi {
					continue
				}
				if !m.Has(seq) {
					p.have.Remove(keyOf(seq, ri))
					continue
				}
				p.have.Add(keyOf(seq, ri))
				// Our pusher of this substream holds a chunk we still want,
				// well after it was listed: it is not pushing.
				k := int(seq % uint64(n.k))
				if w := n.byKey[keyOf(seq, ri)]; w != nil && p.up && p.subsTo[k] && now.Sub(w.since) > n.p.PushGrace && now.Sub(p.subAt[k]) > n.p.PushGrace {
					p.push.LastHeldWanted = now
				}
			}
			p.have.Advance(keyOf(max(n.startSeq, n.newest-min(n.newest, haveWindow*2)), 0))
		}
		n.mu.Unlock()
	case *wire.Subscribe:
		if _, ok := n.ri[m.Rendition]; p.up || int(m.K) != n.k || !ok {
			return true // only downstreams subscribe, to what this node carries, on this stream's split
		}
		n.mu.Lock()
		key := subKey{m.Rendition, int(m.Index)}
		if !p.subs[key] {
			p.subs[key] = true
			n.backfillLocked(p, key, now)
		}
		n.mu.Unlock()
	case *wire.Unsubscribe:
		n.mu.Lock()
		delete(p.subs, subKey{m.Rendition, int(m.Index)})
		n.mu.Unlock()
	case *wire.Request:
		n.serveRequest(p, m, now)
	case *wire.Cancel:
		n.mu.Lock()
		n.jobs = dropJobs(n.jobs, func(j *upJob) bool { return j.p == p && j.reqID == m.ReqID && j.off == 0 })
		n.mu.Unlock()
	case *wire.Chunk:
		data, err := p.re.Add(m)
		if err != nil {
			n.complain(p, "bad-message", err)
			return false
		}
		if data != nil {
			return n.receive(p, m.ReqID, m.ID, data, now)
		}
	case *wire.Manifest:
		batches := make([]chunker.Batch, 0, len(m.Batches))
		for _, sb := range m.Batches {
			b, err := sb.Batch()
			if err != nil {
				n.complain(p, "bad-message", err)
				return false
			}
			batches = append(batches, b)
		}
		fresh, err := n.learnBatches(batches)
		n.mu.Lock()
		for _, b := range fresh {
			p.noteBatchSent(b) // it has them: no need to send them back
		}
		n.mu.Unlock()
		if err != nil {
			n.complain(p, "forged-manifest", err)
			return false
		}
	case *wire.Choke:
		n.mu.Lock()
		p.choked = true
		report := p.up && len(p.subsTo) > 0 && !p.rep.stalled && p.lk.Peer != tracker.OriginPeer
		if report {
			p.rep.stalled = true
			n.stalled = append(n.stalled, p.lk.Peer)
		}
		n.mu.Unlock()
		if report {
			n.kickReport()
		}
	case *wire.Unchoke:
		n.mu.Lock()
		p.choked = false
		n.mu.Unlock()
	case *wire.Reject:
		n.mu.Lock()
		if f := p.inflight[m.ReqID]; f != nil {
			delete(p.inflight, m.ReqID)
			f.w.pending = remove(f.w.pending, p.id)
			if m.Reason == wire.RejectNotHeld {
				p.have.Remove(f.w.key)
			} else {
				p.refused = now
			}
		}
		n.mu.Unlock()
	case *wire.Stats:
		n.mu.Lock()
		p.bufferMs = m.BufferMs
		n.mu.Unlock()
	}
	return true
}

// receive takes a whole chunk from a peer: verified, it is kept and
// relayed; a chunk that does not match its signed entry cuts the peer off.
func (n *Node) receive(p *peer, reqID uint32, id chunker.ID, data []byte, now time.Time) bool {
	e, err := n.verify.Check(id, data)
	n.mu.Lock()
	var f *inflight
	if reqID != 0 {
		if f = p.inflight[reqID]; f != nil {
			delete(p.inflight, reqID)
			f.w.pending = remove(f.w.pending, p.id)
		}
	}
	switch {
	case errors.Is(err, ErrUnknownChunk):
		// The sender must relay a chunk's batch before the chunk; this one
		// may have left our verifier's window. Dropped, not trusted.
		n.stats.Unknown++
		n.mu.Unlock()
		return true
	case err != nil:
		n.stats.Rejected++
		n.mu.Unlock()
		n.complain(p, "bad-chunk", err)
		return false
	}
	if f != nil {
		// Throughput and RTT of pulls, smoothed.
		el := max(now.Sub(f.sent), time.Millisecond)
		bps := float64(len(data)) / el.Seconds()
		if p.bps == 0 {
			p.bps, p.rtt = bps, el
		} else {
			p.bps += (bps - p.bps) / 4
			p.rtt += (el - p.rtt) / 4
		}
	}
	if ri, ok := n.ri[e.Rendition]; ok && e.Kind == chunker.KindChunk {
		p.have.Add(keyOf(e.Seq, ri))
	}
	if reqID == 0 {
		p.push.LastPush = now
		// How long after its entry a push from this pusher lands: a deep
		// pusher's chunks come later, and are waited for longer.
		if w := n.wants[e.Hash]; w != nil {
			p.push.Lag = scheduler.SmoothLag(p.push.Lag, now.Sub(w.since))
		}
	}
	n.mu.Unlock()
	n.accept(e, data, p, reqID == 0)
	return true
}

// complain cuts a lying or broken peer off and reports it to the tracker.
func (n *Node) complain(p *peer, reason string, err error) {
	n.log.Warn("peer cut off", "remote", p.lk.Peer, "reason", reason, "err", err)
	p.lk.Close()
	if p.lk.Peer == tracker.OriginPeer || n.tc == nil { // nil: a node without a tracker (FuzzNodeHandle)
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	_ = n.tc.Report(ctx, tracker.Report{Complaint: &tracker.Complaint{Peer: p.lk.Peer, Reason: reason}})
}

// sendControl sends a small control message, counted apart from media.
func (n *Node) sendControl(lk *Link, m wire.Message) {
	frame, err := wire.AppendFrame(nil, m)
	if err != nil {
		return
	}
	if lk.sendFrame(frame) == nil {
		n.mu.Lock()
		n.stats.BytesControl += int64(len(frame))
		n.mu.Unlock()
	}
}

func (n *Node) kickReport() {
	select {
	case n.reportC <- struct{}{}:
	default:
	}
}

func remove(list []string, id string) []string {
	for i, s := range list {
		if s == id {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}
