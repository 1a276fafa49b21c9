package core

import (
	"slices"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/wire"
)

// Upload limits.
const (
	// maxJobsPerPeer bounds the chunks queued for one peer; requests past
	// it are rejected as busy, pushes dropped (the peer pulls them).
	maxJobsPerPeer = 32
	// pushTTL and requestTTL: a job not started by then is dropped; the
	// chunk is of no use to the peer any more, or it has asked elsewhere.
	pushTTL    = 1500 * time.Millisecond
	requestTTL = 2 * time.Second
	// maxBuffered is the link backlog past which a peer gets no more media
	// until it drains: a slow peer must not take the budget.
	maxBuffered = 1 << 20
	// burstTime is the token bucket's depth in time at the relay rate: over
	// any second the node sends at most (1 + burstTime/1s) × its budget.
	burstTime = 40 * time.Millisecond
	minBurst  = 2048
	// urgentBuffer: requests from peers buffered below this go before
	// pushes; the others after them.
	urgentBuffer = time.Second
	// backfill is how many recent seqs a new subscription gets pushed at
	// once: a joining downstream starts a few seconds behind live, and
	// these are the chunks it needs first.
	backfill = 8
	// PushShare is the percentage of the relay budget a node announces to
	// the tracker for subscriptions; the rest answers repairs, backfills
	// and relays batches.
	PushShare = 80
)

// upJob is one chunk on its way to one peer, sent fragment by fragment.
type upJob struct {
	p     *peer
	e     manifest.Entry
	data  []byte   // the chunk; nil while src brings it
	src   *inbound // the chunk still arriving (cut-through), else nil
	reqID uint32   // 0 for a push
	kind  scheduler.UploadKind
	at    time.Time
	off   int  // bytes of data sent so far
	obOK  bool // the outboard went, or none is due
}

// bytes returns the chunk's bytes that may be sent: all of it, or while it
// arrives the pieces verified so far.
func (j *upJob) bytes() []byte {
	if j.src != nil {
		return j.src.data
	}
	return j.data
}

// ready reports whether the job has bytes to send now.
func (j *upJob) ready() bool { return j.off < len(j.bytes()) || !j.obOK && j.off == 0 }

func (j *upJob) done() bool { return j.off >= int(j.e.Size) }

// inbound is a chunk being pushed to this node with its outboard: verified
// piece by piece as it arrives, and pushed on to subscribers before it is
// whole (cut-through, docs/protocol.md §5.8).
type inbound struct {
	e        manifest.Entry
	from     *peer // the pusher; nil once it went away or lied
	outboard []byte
	data     []byte  // the verified bytes from offset 0 (all of them once whole)
	to       []*peer // the subscribers given a job for it
}

// obCacheLen is how many outboards of chunks held a node keeps, so that a
// chunk pushed to several relays is hashed for them once.
const obCacheLen = 64

// outboard returns the outboard of the chunk of job j.
func (n *Node) outboard(j *upJob) []byte {
	if j.src != nil {
		return j.src.outboard
	}
	if ob, ok := n.obs.Get(j.e.Hash); ok {
		return ob
	}
	ob := n.verify.Outboard(j.e.Hash, j.data)
	n.obs.Add(j.e.Hash, ob)
	return ob
}

func dropJobs(jobs []*upJob, drop func(*upJob) bool) []*upJob {
	return slices.DeleteFunc(jobs, func(j *upJob) bool {
		if drop(j) {
			j.p.queued--
			return true
		}
		return false
	})
}

// queue adds an upload job; false when the peer has too many waiting.
func (n *Node) queue(j *upJob) bool {
	if j.p.queued >= maxJobsPerPeer {
		return false
	}
	j.p.queued++
	n.jobs = append(n.jobs, j)
	return true
}

// backfill queues the held chunks of a newly subscribed substream from the
// last backfill seqs.
func (n *Node) backfill(p *peer, key subKey, now time.Time) {
	ri, ok := n.ri[key.rendition]
	if !ok || n.rate <= 0 || p.chokedIt {
		return
	}
	for seq := n.newest + 1 - min(n.newest+1, backfill); seq <= n.newest; seq++ {
		if int(seq%uint64(n.k)) != key.index || !n.held[ri].Has(seq) {
			continue
		}
		id, ok := n.heldID[keyOf(seq, ri)]
		if !ok {
			continue
		}
		e, known := n.verify.Entry(id)
		data, held := n.store.Get(id)
		if known && held {
			n.queue(&upJob{p: p, e: e, data: data, kind: scheduler.UploadPush, at: now})
		}
	}
}

// serveRequest answers a pull: queued if held and within budget, else
// rejected with the reason.
func (n *Node) serveRequest(p *peer, m *wire.Request, now time.Time) {
	reason := wire.RejectReason(0)
	e, known := n.verify.Entry(m.ID)
	data, held := n.store.Get(m.ID)
	switch {
	case n.rate <= 0:
		reason = wire.RejectNoBudget
	case !held || !known:
		reason = wire.RejectNotHeld
	case !n.queue(&upJob{p: p, e: e, data: data, reqID: m.ReqID, kind: scheduler.UploadRequest, at: now}):
		reason = wire.RejectBusy
	}
	if reason != 0 {
		n.send(p, &wire.Reject{ReqID: m.ReqID, Reason: reason})
	}
}

// pump sends queued chunks while the token bucket holds their frames:
// requests before pushes, peers with low buffers first, fair among equals
// (scheduler.OrderUploads). When the bucket runs dry it notes when it holds
// the next frame, for NextWake.
func (n *Node) pump(now time.Time) {
	n.upWake = time.Time{}
	for {
		// A job begun goes on before a new one begins; one whose next
		// pieces have not arrived waits, and others go meanwhile.
		var j *upJob
		for _, a := range n.active {
			if a.ready() {
				j = a
				break
			}
		}
		if j == nil {
			if j = n.nextJob(now); j == nil {
				return
			}
			// A relay-off peer, or a chunk of one piece, has no use for an
			// outboard.
			j.obOK = !n.p.CutThrough || j.kind != scheduler.UploadPush || !j.p.relays || j.e.Size <= manifest.PieceSize
			if j.src != nil && len(j.src.data) < int(j.e.Size) {
				n.stats.CutThrough++
			}
			n.active = append(n.active, j)
		}
		msgs, batch := n.frames(j)
		size := 0
		for _, m := range msgs {
			size += wire.FrameSize(m)
		}
		if !n.bucket.Allow(now, size) {
			at, ok := n.bucket.ReadyAt(now, size)
			if !ok { // relay off, or cut to nothing: the peer pulls elsewhere
				n.finish(j)
				continue
			}
			// A microsecond past the bucket's own estimate, so that float
			// rounding cannot leave the wake short of the tokens.
			n.upWake = maxTime(at, now).Add(time.Microsecond)
			return
		}
		if _, ok := msgs[0].(*wire.Manifest); ok {
			j.p.noteBatchSent(batch)
		}
		if c, ok := msgs[len(msgs)-1].(*wire.Chunk); ok {
			j.off += len(c.Data)
		}
		for _, m := range msgs {
			b := wire.FrameSize(m)
			_, media := m.(*wire.Chunk)
			if _, ob := m.(*wire.Outboard); ob {
				j.obOK = true
			}
			if media {
				n.stats.BytesUploaded += int64(b)
			} else {
				n.stats.BytesControl += int64(b)
			}
			n.emit(Output{Kind: OutSend, Link: j.p.link, Peer: j.p.remote, Msg: m, Bytes: b, Charged: true, Media: media})
		}
		if j.done() {
			n.finish(j)
		}
	}
}

// finish forgets a job begun: sent whole, or given up.
func (n *Node) finish(j *upJob) {
	if i := slices.Index(n.active, j); i >= 0 {
		n.active = slices.Delete(n.active, i, i+1)
		j.p.queued--
	}
}

// dropSource gives up the jobs whose chunk was arriving from in, which
// will not be whole: those not begun are dropped, those begun end where
// they are (their receivers discard the part, docs/protocol.md §5.5).
func (n *Node) dropSource(in *inbound) {
	n.jobs = dropJobs(n.jobs, func(j *upJob) bool { return j.src == in })
	n.active = dropJobs(n.active, func(j *upJob) bool { return j.src == in })
}

// nextJob takes the next job in upload order, dropping stale ones and those
// for peers that cannot take more now.
func (n *Node) nextJob(now time.Time) *upJob {
	n.jobs = dropJobs(n.jobs, func(j *upJob) bool {
		ttl := pushTTL
		if j.kind == scheduler.UploadRequest {
			ttl = requestTTL
		}
		if now.Sub(j.at) > ttl || j.p.chokedIt {
			return true
		}
		// A chunk the peer says it holds (it got it elsewhere meanwhile).
		ri, ok := n.ri[j.e.Rendition]
		return j.off == 0 && ok && j.p.have.Has(keyOf(j.e.Seq, ri))
	})
	if len(n.jobs) == 0 {
		return nil
	}
	pending := make([]scheduler.Upload, 0, len(n.jobs))
	for i, j := range n.jobs {
		if j.p.backlog > maxBuffered || !j.ready() {
			continue
		}
		pending = append(pending, scheduler.Upload{
			Peer: j.p.id, Seq: uint64(i), Size: int(j.e.Size), Kind: j.kind,
			Buffer: time.Duration(j.p.bufferMs) * time.Millisecond, Relay: j.p.relays,
		})
	}
	if len(pending) == 0 {
		return nil
	}
	// Seq carries the job's index: within a peer, jobs go in queue order.
	first := scheduler.OrderUploads(pending, scheduler.UploadParams{After: n.lastUp, UrgentBuffer: urgentBuffer})[0]
	j := n.jobs[first.Seq]
	n.jobs = slices.Delete(n.jobs, int(first.Seq), int(first.Seq)+1)
	n.lastUp = j.p.id
	return j
}

// frames builds the next messages of a job without taking them: the
// chunk's signed batch first if the peer has not had it (batch is its
// number), then a fragment of at most fragSize bytes that fits the bucket's
// depth with it (or the batch alone, when no fragment would).
func (n *Node) frames(j *upJob) (msgs []wire.Message, batch uint64) {
	room := n.fragSize
	if j.off == 0 {
		pre := 0
		if b, ok := n.verify.BatchOf(j.e.Hash); ok && !j.p.sentBatch.Has(b) {
			if sb, ok := n.verify.Signed(b); ok {
				m := &wire.Manifest{Batches: []manifest.SignedBatch{sb}}
				msgs, batch = append(msgs, m), b
				pre += wire.FrameSize(m)
			}
		}
		if !j.obOK {
			m := &wire.Outboard{ID: j.e.Hash, Data: n.outboard(j)}
			msgs = append(msgs, m)
			pre += wire.FrameSize(m)
		}
		if pre > 0 {
			room = min(room, n.burst-pre-wire.HeaderSize-wire.ChunkHeaderSize)
		}
		if len(msgs) > 0 && (room < 256 || j.off >= len(j.bytes())) {
			return msgs, batch
		}
	}
	data := j.bytes()
	end := min(j.off+room, len(data))
	return append(msgs, &wire.Chunk{ReqID: j.reqID, ID: j.e.Hash, Size: j.e.Size, Offset: uint32(j.off), Data: data[j.off:end]}), batch
}

// setRate puts the relay rate in force: the budget scaled by the RTT guard.
// The bucket is a few tens of milliseconds deep, so that no second ever
// carries more than a few percent over the budget.
func (n *Node) setRate(now time.Time) {
	rate := float64(n.guard.Apply(int64(n.budget))) * 1000 / 8
	if n.p.Seed {
		rate = float64(n.budget) * 1000 / 8 // the seed's egress is its own
	}
	burst := max(int(rate*burstTime.Seconds()), minBurst)
	n.bucket.SetRate(now, rate, burst)
	n.burst = burst
	n.rate = n.bucket.Rate()
	n.fragSize = max(min(burst-wire.ChunkHeaderSize-16-512, wire.MaxFragment), 1024)
}

// applyRate puts a new rate in force and tells the peers and the tracker:
// downstreams are choked when relay is cut to nothing and unchoked when it
// returns, and the tracker hears the relay budget now in force.
func (n *Node) applyRate(now time.Time) {
	n.setRate(now)
	for _, p := range n.plist {
		switch {
		case n.rate <= 0 && !p.chokedIt && !p.up:
			p.chokedIt = true
			n.send(p, &wire.Choke{Reason: chokeReason(n.budget)})
		case n.rate > 0 && p.chokedIt:
			p.chokedIt = false
			n.send(p, &wire.Unchoke{})
		}
	}
	if n.relayKbps() != n.toldRelay {
		n.nextReport = now // the tracker hears of it at once
	}
}

func chokeReason(budget int) wire.ChokeReason {
	if budget <= 0 {
		return wire.ChokeBudget
	}
	return wire.ChokeCongested
}

// relayKbps is the relay budget in force as the tracker is told it: the
// push share of the budget the RTT guard leaves.
func (n *Node) relayKbps() int {
	kbps := int64(n.budget)
	if !n.p.Seed {
		kbps = n.guard.Apply(kbps)
	}
	return int(kbps) * PushShare / 100
}
