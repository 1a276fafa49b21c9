package core

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// peer is one open link and what the node knows of the peer behind it.
type peer struct {
	link    LinkID
	remote  protocol.PeerID
	id      string // the planner's name for this link (peer id and direction)
	up      bool   // this node dialed it: an upstream
	re      *wire.Reassembler
	stalled bool   // reported stalled to the tracker
	backlog uint64 // the driver's send backlog on this link

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

// seqMemory bounds the batches a node remembers sending to a peer: far
// more than any window, and a few KB.
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

// LinkOpened says a link is open: to an upstream this node dialed (up), or
// from a downstream that dialed it. The node greets the peer, subscribes an
// upstream's substreams, and chokes a downstream when it relays nothing.
func (n *Node) LinkOpened(now time.Time, id LinkID, remote protocol.PeerID, up bool) {
	if old := n.peers[id]; old != nil {
		n.drop(now, old)
	}
	dir := "/d"
	if up {
		dir = "/u"
	}
	p := &peer{
		link: id, remote: remote, id: string(remote) + dir, up: up, re: wire.NewReassembler(wire.ReassemblerParams{Owned: n.p.OwnedFrames, Stale: n.unwanted}),
		subsTo: map[int]bool{}, subAt: map[int]time.Time{}, inflight: map[uint32]*inflight{}, subs: map[subKey]bool{},
	}
	if prev := n.byID[p.id]; prev != nil { // the same peer again: the old link is gone
		n.closeLink(now, prev, errors.New("replaced by a new link"))
	}
	n.peers[id], n.byID[p.id] = p, p
	n.plist = append(n.plist, p)
	n.send(p, &wire.Hello{Version: wire.Version, Renditions: n.rends, BudgetKbps: uint32(n.budget)})
	if up {
		delete(n.dialing, remote)
		if n.ups[remote] != nil || !n.wanted(remote) {
			// Dialed twice, or no longer wanted: keep the first, or none.
			n.closeLink(now, p, errors.New("upstream not wanted"))
			n.linkUpstreams(now)
			return
		}
		p.push.LastPush, p.push.LastHave = now, now
		n.ups[remote] = p
		n.linkUpstreams(now)
	} else if n.rate <= 0 {
		p.chokedIt = true
		n.send(p, &wire.Choke{Reason: chokeReason(n.budget)})
	}
	n.pump(now)
}

// wanted reports whether some substream has remote as its upstream.
func (n *Node) wanted(remote protocol.PeerID) bool {
	for _, u := range n.upstreams {
		if u == remote {
			return true
		}
	}
	return false
}

// DialFailed says a dial to an upstream failed: the node backs off from it,
// and a peer (not the origin) is reported stalled so that the tracker
// reassigns its substreams.
func (n *Node) DialFailed(now time.Time, remote protocol.PeerID) {
	if !n.dialing[remote] {
		return
	}
	delete(n.dialing, remote)
	n.backoff[remote] = now.Add(n.p.DialBackoff)
	if remote != protocol.OriginPeer {
		n.stalled = append(n.stalled, remote)
		n.nextReport = now
	}
	n.Tick(now)
}

// LinkClosed says a link closed. Its requests are pending no more, its
// upload jobs go, and a lost upstream is reported at once.
func (n *Node) LinkClosed(now time.Time, id LinkID) {
	if p := n.peers[id]; p != nil {
		n.drop(now, p)
		n.Tick(now)
	}
}

// LinkBacklog tells the core how many bytes wait in a link's send buffer: a
// link backlogged past maxBuffered gets no more media until it drains.
func (n *Node) LinkBacklog(now time.Time, id LinkID, bytes uint64) {
	if p := n.peers[id]; p != nil {
		was := p.backlog
		p.backlog = bytes
		if was > maxBuffered && bytes <= maxBuffered {
			n.pump(now)
		}
	}
}

// closeLink drops a peer and asks the driver to close its link.
func (n *Node) closeLink(now time.Time, p *peer, why error) {
	n.drop(now, p)
	n.emit(Output{Kind: OutClose, Link: p.link, Peer: p.remote, Err: why})
}

// drop forgets a peer.
func (n *Node) drop(now time.Time, p *peer) {
	if n.peers[p.link] != p {
		return
	}
	delete(n.peers, p.link)
	n.plist = slices.DeleteFunc(n.plist, func(q *peer) bool { return q == p })
	if n.byID[p.id] == p {
		delete(n.byID, p.id)
	}
	for _, f := range p.inflight {
		f.w.pending = remove(f.w.pending, p.id)
	}
	clear(p.inflight)
	n.jobs = dropJobs(n.jobs, func(j *upJob) bool { return j.p == p })
	n.active = dropJobs(n.active, func(j *upJob) bool { return j.p == p })
	for _, in := range n.inbound {
		if in.from == p {
			// Its pushes on wait for the chunk to come another way.
			in.from = nil
		}
	}
	if p.up && n.ups[p.remote] == p {
		delete(n.ups, p.remote)
		if len(p.subsTo) > 0 {
			// Not dialed again until the tracker says otherwise (or the
			// backoff ends); a peer is reported, the origin is not.
			n.backoff[p.remote] = now.Add(n.p.DialBackoff)
			if p.remote != protocol.OriginPeer {
				n.stalled = append(n.stalled, p.remote)
				n.nextReport = now
			}
		}
	}
}

// httpFed reports whether some substream has no usable upstream link and so
// comes over HTTP.
func (n *Node) httpFed(now time.Time) bool {
	if n.p.Seed {
		return false
	}
	for k := range n.upstreams {
		if n.httpSub(k, now) {
			return true
		}
	}
	return false
}

// httpSub reports whether substream k is fetched from the origin over HTTP
// as soon as it is listed: it has no upstream, or its upstream is the origin
// and its seed cannot be reached.
func (n *Node) httpSub(k int, now time.Time) bool {
	u := n.upstreams[k]
	if u == "" {
		return true
	}
	if u != protocol.OriginPeer || n.ups[u] != nil || n.dialing[u] {
		return false
	}
	return now.Before(n.backoff[u])
}

// pusher returns the live upstream link that pushes substream k.
func (n *Node) pusher(k int) *peer {
	u := n.upstreams[k]
	if u == "" {
		return nil
	}
	p := n.ups[u]
	if p == nil || p.choked || p.stalled || !p.subsTo[k] {
		return nil
	}
	return p
}

// linkUpstreams brings the links to the assigned upstreams in line with the
// substream table: it dials missing upstreams, subscribes and unsubscribes
// substreams, and closes links no substream uses any more.
func (n *Node) linkUpstreams(now time.Time) {
	if n.p.Seed {
		return
	}
	want := map[protocol.PeerID]map[int]bool{}
	for k, u := range n.upstreams {
		if u == "" {
			continue
		}
		if want[u] == nil {
			want[u] = map[int]bool{}
		}
		want[u][k] = true
	}
	for _, id := range sortedPeers(n.ups) {
		p := n.ups[id]
		ks := want[id]
		for _, k := range sortedInts(p.subsTo) {
			if !ks[k] {
				delete(p.subsTo, k)
				for _, r := range n.rends {
					n.send(p, &wire.Unsubscribe{Rendition: r, K: uint16(n.k), Index: uint16(k)})
				}
			}
		}
		for _, k := range sortedInts(ks) {
			if !p.subsTo[k] {
				p.subsTo[k], p.subAt[k] = true, now
				for _, r := range n.rends {
					n.send(p, &wire.Subscribe{Rendition: r, K: uint16(n.k), Index: uint16(k)})
				}
			}
		}
		if len(p.subsTo) == 0 {
			delete(n.ups, id)
			n.closeLink(now, p, errors.New("no substream from this upstream"))
		}
	}
	for id, until := range n.backoff {
		if !now.Before(until) {
			delete(n.backoff, id)
		}
	}
	for _, id := range sortedPeers(want) {
		if n.ups[id] == nil && !n.dialing[id] && !now.Before(n.backoff[id]) {
			n.dialing[id] = true
			n.emit(Output{Kind: OutDial, Peer: id})
		}
	}
}

// ReceiveFrame decodes one wire frame from a link and handles it. Unknown
// message types are skipped; a malformed frame cuts the peer off.
func (n *Node) ReceiveFrame(now time.Time, id LinkID, frame []byte) {
	m, err := wire.Decode(frame)
	if errors.Is(err, wire.ErrUnknownType) {
		return
	}
	if err != nil {
		n.BadInput(now, id, err)
		return
	}
	n.Receive(now, id, m)
}

// BadInput says a link delivered bytes that do not frame or decode: the
// peer is cut off and reported.
func (n *Node) BadInput(now time.Time, id LinkID, err error) {
	if p := n.peers[id]; p != nil {
		n.complain(now, p, protocol.ComplaintBadMessage, err)
		n.pump(now)
	}
}

// Receive handles one decoded message from a link. A peer that sends a
// malformed message, a bad chunk or a forged manifest is cut off and
// reported to the protocol.
func (n *Node) Receive(now time.Time, id LinkID, m wire.Message) {
	p := n.peers[id]
	if p == nil {
		return // a link the core closed already
	}
	if err := m.Validate(); err != nil {
		n.complain(now, p, protocol.ComplaintBadMessage, err)
		n.pump(now)
		return
	}
	n.handle(now, p, m)
	n.pump(now)
}

func (n *Node) handle(now time.Time, p *peer, m wire.Message) {
	switch m := m.(type) {
	case *wire.Hello:
		if m.Version < 1 {
			n.complain(now, p, protocol.ComplaintBadMessage, errors.New("hello version 0"))
			return
		}
		p.relays = m.BudgetKbps > 0
	case *wire.Have:
		n.takeHave(now, p, m)
	case *wire.Subscribe:
		if _, ok := n.ri[m.Rendition]; p.up || int(m.K) != n.k || !ok {
			return // only downstreams subscribe, to what this node carries, on this stream's split
		}
		key := subKey{m.Rendition, int(m.Index)}
		if !p.subs[key] {
			p.subs[key] = true
			n.backfill(p, key, now)
		}
	case *wire.Unsubscribe:
		delete(p.subs, subKey{m.Rendition, int(m.Index)})
	case *wire.Request:
		n.serveRequest(p, m, now)
	case *wire.Cancel:
		n.jobs = dropJobs(n.jobs, func(j *upJob) bool { return j.p == p && j.reqID == m.ReqID && j.off == 0 })
	case *wire.Outboard:
		n.takeOutboard(now, p, m)
	case *wire.Chunk:
		if m.Offset > 0 && !p.re.Pending(m.ID) && n.unwanted(m.ID) {
			return // the rest of a chunk dropped half way (docs/protocol.md §5.5)
		}
		data, err := p.re.Add(m)
		if err != nil {
			n.complain(now, p, protocol.ComplaintBadMessage, err)
			return
		}
		if data != nil {
			n.receive(p, m.ReqID, m.ID, data, now)
		} else if in := n.inbound[m.ID]; in != nil && in.from == p {
			n.advance(now, in)
		}
	case *wire.Manifest:
		n.takeBatches(now, p, m)
	case *wire.Choke:
		p.choked = true
		if p.up && len(p.subsTo) > 0 && !p.stalled && p.remote != protocol.OriginPeer {
			p.stalled = true
			n.stalled = append(n.stalled, p.remote)
			n.nextReport = now
		}
	case *wire.Unchoke:
		p.choked = false
	case *wire.Reject:
		if f := p.inflight[m.ReqID]; f != nil {
			delete(p.inflight, m.ReqID)
			f.w.pending = remove(f.w.pending, p.id)
			if m.Reason == wire.RejectNotHeld {
				p.have.Remove(f.w.key)
			} else {
				p.refused = now
			}
		}
	case *wire.Stats:
		p.bufferMs = m.BufferMs
	}
}

// unwanted reports whether a chunk in progress from a peer is of no more
// use: held already, or not wanted (given up, or never).
func (n *Node) unwanted(id manifest.ID) bool {
	return n.store.Has(id) || n.wants[id] == nil
}

// maxInbound bounds the chunks arriving cut-through at once.
const maxInbound = 64

// takeOutboard keeps the outboard a pusher sends before a chunk, when this
// node will push that chunk on: it then verifies the chunk piece by piece
// and relays each verified piece at once (docs/protocol.md §5.8). An
// outboard this node has no use for is ignored; one that does not fit the
// chunk's signed entry cuts the peer off.
func (n *Node) takeOutboard(now time.Time, p *peer, m *wire.Outboard) {
	e, known := n.verify.Entry(m.ID)
	if !n.p.CutThrough || !known || n.wants[m.ID] == nil || n.inbound[m.ID] != nil || len(n.inbound) >= maxInbound ||
		n.rate <= 0 || p.re.Pending(m.ID) || e.Kind != manifest.KindChunk {
		return
	}
	if m.Size() != int(e.Size) {
		n.stats.Rejected++
		n.complain(now, p, protocol.ComplaintBadChunk, fmt.Errorf("%w: outboard of a chunk of %d bytes, signed %d", ErrBadChunk, m.Size(), e.Size))
		return
	}
	if !slices.ContainsFunc(n.plist, func(q *peer) bool { return n.pushesTo(q, e, p) }) {
		return // nobody to push it on to
	}
	ob := m.Data
	if !n.p.OwnedFrames {
		ob = slices.Clone(ob)
	}
	n.inbound[m.ID] = &inbound{e: e, from: p, outboard: ob}
}

// advance verifies the pieces of in that have arrived whole since the last
// call; the first verified piece starts the pushes on. A piece that fails
// cuts its pusher off; the pushes begun then wait for the chunk to come
// another way.
func (n *Node) advance(now time.Time, in *inbound) {
	p := in.from
	prefix := p.re.Prefix(in.e.Hash)
	end := len(prefix) - len(prefix)%manifest.PieceSize
	if end <= len(in.data) {
		return
	}
	if _, err := n.verify.CheckPieces(in.e.Hash, in.outboard, len(in.data), prefix[len(in.data):end]); err != nil {
		n.stats.Rejected++
		in.from = nil
		n.complain(now, p, protocol.ComplaintBadChunk, err)
		return
	}
	first := len(in.data) == 0
	in.data = prefix[:end]
	if !first || n.rate <= 0 {
		return
	}
	for _, q := range n.plist {
		if n.pushesTo(q, in.e, p) && n.queue(&upJob{p: q, e: in.e, src: in, kind: scheduler.UploadPush, at: now}) {
			in.to = append(in.to, q)
		}
	}
}

// takeHave records a peer's announcement. A have is a hint from an
// untrusted peer: only seqs near what this node knows are recorded, so a
// far-off window cannot make the set grow (a SeqSet spans from its lowest
// to its highest member).
func (n *Node) takeHave(now time.Time, p *peer, m *wire.Have) {
	p.push.LastHave = now
	ri, ok := n.ri[m.Rendition]
	if !ok {
		return
	}
	ref := max(n.newest, n.startSeq)
	lo, hi := ref-min(ref, haveSpan), ref+haveSpan
	if m.Bits == 0 {
		return
	}
	// Only the part of the window near ref counts (a far-off window is
	// skipped whole, without walking its bits). Validate refused windows
	// that overflow the seq space.
	from, to := max(m.Base, lo), min(m.Base+uint64(m.Bits)-1, hi)
	for seq := from; seq <= to && seq >= from; seq++ {
		if !m.Has(seq) {
			p.have.Remove(keyOf(seq, ri))
			continue
		}
		fresh := !p.have.Has(keyOf(seq, ri)) // neither announced nor sent by it before
		p.have.Add(keyOf(seq, ri))
		// Our pusher of this substream holds a chunk we still want, well
		// after it was listed: it is not pushing.
		if !p.up {
			continue
		}
		k := int(seq % uint64(n.k))
		if !p.subsTo[k] || now.Sub(p.subAt[k]) <= n.p.PushGrace {
			continue
		}
		if fresh {
			p.push.LastUnpushed = now
		}
		if w := n.byKey[keyOf(seq, ri)]; w != nil && now.Sub(w.since) > n.p.PushGrace {
			p.push.LastHeldWanted = now
		}
	}
	p.have.Advance(keyOf(max(n.startSeq, n.newest-min(n.newest, haveWindow*2)), 0))
	if !p.up {
		n.dropHeld(p, ri)
	}
}

// dropHeld gives up the pushes to downstream p of chunks its have says it
// holds: those queued, and those begun (the rest of a chunk the peer holds
// is of no use to it, and it discards the part, docs/protocol.md §5.5).
func (n *Node) dropHeld(p *peer, ri int) {
	if p.queued == 0 {
		return // nothing queued or begun for it: no job to walk
	}
	held := func(j *upJob) bool {
		return j.p == p && j.kind == scheduler.UploadPush && n.ri[j.e.Rendition] == ri && p.have.Has(keyOf(j.e.Seq, ri))
	}
	before := len(n.jobs) + len(n.active)
	n.jobs = dropJobs(n.jobs, held)
	n.active = dropJobs(n.active, held)
	n.stats.PushesDropped += before - len(n.jobs) - len(n.active)
}

// takeBatches learns the signed batches a peer relayed. One that does not
// decode, or fails its signature, cuts the peer off.
func (n *Node) takeBatches(now time.Time, p *peer, m *wire.Manifest) {
	var fresh []uint64
	var entries []manifest.Entry
	var err error
	for _, sb := range m.Batches {
		var es []manifest.Entry
		var b uint64
		if b, es, err = n.verify.LearnSigned(sb); err != nil {
			break
		}
		if es != nil {
			fresh = append(fresh, b)
			entries = append(entries, es...)
		}
	}
	for _, b := range fresh {
		p.noteBatchSent(b) // it has them: no need to send them back
	}
	n.learn(now, entries, fresh)
	if err != nil {
		if errors.Is(err, ErrMalformedBatch) {
			n.complain(now, p, protocol.ComplaintBadMessage, err)
		} else {
			n.stats.Rejected++
			n.complain(now, p, protocol.ComplaintForgedManifest, err)
		}
	}
}

// receive takes a whole chunk from a peer: verified, it is kept and
// relayed; a chunk that does not match its signed entry cuts the peer off.
func (n *Node) receive(p *peer, reqID uint32, id manifest.ID, data []byte, now time.Time) {
	var e manifest.Entry
	var err error
	if in := n.inbound[id]; in != nil && in.from == p && len(in.data) < len(data) {
		// Arrived with its outboard: what is left to verify is the pieces
		// after those verified already.
		e, err = n.verify.CheckPieces(id, in.outboard, len(in.data), data[len(in.data):])
	} else {
		e, err = n.verify.Check(id, data)
	}
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
		return
	case err != nil:
		n.stats.Rejected++
		n.complain(now, p, protocol.ComplaintBadChunk, err)
		return
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
	if ri, ok := n.ri[e.Rendition]; ok && e.Kind == manifest.KindChunk {
		p.have.Add(keyOf(e.Seq, ri))
	}
	if p.remote != protocol.OriginPeer {
		// What the peer delivered, duplicates included (it did the
		// work): the tracker measures upstreams by these receipts.
		n.received[p.remote] += uint64(len(data))
	}
	if reqID == 0 {
		p.push.LastPush = now
		// How long after its entry a push from this pusher lands: a deep
		// pusher's chunks come later, and are waited for longer.
		if w := n.wants[e.Hash]; w != nil {
			p.push.Lag = scheduler.SmoothLag(p.push.Lag, now.Sub(w.since))
		}
	}
	n.accept(now, e, data, p, reqID == 0)
}

// complain cuts a lying or broken peer off and reports it to the tracker
// (the origin's seed is never reported: the tracker trusts it).
func (n *Node) complain(now time.Time, p *peer, reason protocol.ComplaintReason, err error) {
	n.stats.Complaints++
	n.closeLink(now, p, fmt.Errorf("%s: %w", reason, err))
	if p.remote == protocol.OriginPeer {
		return
	}
	// The receipts go along: every report covers what peers delivered
	// since the one before.
	n.emit(Output{Kind: OutReport, Peer: p.remote, Err: err, Report: &protocol.Report{
		Complaint: &protocol.Complaint{Peer: p.remote, Reason: reason}, Received: n.receipts(),
	}})
}

func remove(list []string, id string) []string {
	for i, s := range list {
		if s == id {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// sortedPeers returns a map's peer ids in order, so that the core's outputs
// do not depend on map iteration order (the simulator replays bit for bit).
func sortedPeers[V any](m map[protocol.PeerID]V) []protocol.PeerID {
	ids := make([]protocol.PeerID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sortedInts returns a set's members in order.
func sortedInts(m map[int]bool) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// sortedReqs returns a peer's in-flight request ids in order.
func sortedReqs(m map[uint32]*inflight) []uint32 {
	ids := make([]uint32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmp.Compare)
	return ids
}
