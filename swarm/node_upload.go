package swarm

import (
	"slices"
	"time"

	"github.com/seedcast/seedcast/chunker"
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
	// maxBuffered is the data-channel backlog past which a peer gets no
	// more media until it drains: a slow peer must not take the budget.
	maxBuffered = 1 << 20
	// burstTime is the token bucket's depth in time at the relay rate: over
	// any second the node sends at most (1 + burstTime/1s) × its budget.
	burstTime = 40 * time.Millisecond
	minBurst  = 2048
	// urgentBuffer: requests from peers buffered below this go before
	// pushes; the others after them.
	urgentBuffer = time.Second
)

// upJob is one chunk on its way to one peer, sent fragment by fragment.
type upJob struct {
	p     *peer
	e     chunker.Entry
	data  []byte
	reqID uint32 // 0 for a push
	kind  scheduler.UploadKind
	at    time.Time
	off   int // bytes of data sent so far
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

// queueLocked adds an upload job and wakes the uploader.
func (n *Node) queueLocked(j *upJob) bool {
	if j.p.queued >= maxJobsPerPeer {
		return false
	}
	j.p.queued++
	n.jobs = append(n.jobs, j)
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return true
}

// backfill is how many recent seqs a new subscription gets pushed at once:
// a joining downstream starts a few seconds behind live, and these are the
// chunks it needs first.
const backfill = 8

// pushShare is the percentage of the relay budget announced to the tracker
// for subscriptions.
const pushShare = 80

// backfillLocked queues the held chunks of a newly subscribed substream
// from the last backfill seqs.
func (n *Node) backfillLocked(p *peer, key subKey, now time.Time) {
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
			n.queueLocked(&upJob{p: p, e: e, data: data, kind: scheduler.UploadPush, at: now})
		}
	}
}

// serveRequest answers a pull: queued if held and within budget, else
// rejected with the reason.
func (n *Node) serveRequest(p *peer, m *wire.Request, now time.Time) {
	reason := wire.RejectReason(0)
	n.mu.Lock()
	e, known := n.verify.Entry(m.ID)
	data, held := n.store.Get(m.ID)
	switch {
	case n.rate <= 0:
		reason = wire.RejectNoBudget
	case !held || !known:
		reason = wire.RejectNotHeld
	case !n.queueLocked(&upJob{p: p, e: e, data: data, reqID: m.ReqID, kind: scheduler.UploadRequest, at: now}):
		reason = wire.RejectBusy
	}
	n.mu.Unlock()
	if reason != 0 {
		n.sendControl(p.lk, &wire.Reject{ReqID: m.ReqID, Reason: reason})
	}
}

// uploadLoop sends queued chunks: requests before pushes, peers with low
// buffers first, fair among equals (scheduler.OrderUploads), each fragment
// only when the token bucket holds its bytes.
func (n *Node) uploadLoop() {
	var cur *upJob
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		n.mu.Lock()
		if cur == nil {
			cur = n.nextJobLocked(now)
		}
		if cur == nil {
			n.mu.Unlock()
			select {
			case <-n.ctx.Done():
				return
			case <-n.wake:
			}
			continue
		}
		frame, commit := n.frameLocked(cur)
		if !n.bucket.Allow(now, len(frame)) {
			at, ok := n.bucket.ReadyAt(now, len(frame))
			if !ok { // relay off, or cut to nothing: the peer pulls elsewhere
				cur.p.queued--
				cur = nil
				n.mu.Unlock()
				continue
			}
			n.mu.Unlock()
			timer.Reset(at.Sub(now))
			select {
			case <-n.ctx.Done():
				return
			case <-timer.C:
			}
			continue
		}
		commit()
		j := cur
		done := j.off >= len(j.data)
		if done {
			j.p.queued--
			cur = nil
		}
		n.stats.BytesUploaded += int64(len(frame))
		n.mu.Unlock()
		if n.p.OnUpload != nil {
			n.p.OnUpload(now, len(frame))
		}
		if err := j.p.lk.sendFrame(frame); err != nil && !done {
			n.mu.Lock()
			j.p.queued--
			n.mu.Unlock()
			cur = nil
		}
	}
}

// nextJobLocked takes the next job in upload order, dropping stale ones and
// those for peers that cannot take more now.
func (n *Node) nextJobLocked(now time.Time) *upJob {
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
		if j.p.lk.buffered() > maxBuffered {
			continue
		}
		pending = append(pending, scheduler.Upload{
			Peer: j.p.id, Seq: uint64(i), Size: len(j.data), Kind: j.kind,
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

// frameLocked builds the next frame of a job without taking it: the
// chunk's signed batch first if the peer has not had it, then a fragment of
// at most fragSize bytes. commitLocked takes it once the budget allowed.
func (n *Node) frameLocked(j *upJob) (frame []byte, commit func()) {
	batch, withBatch := uint64(0), false
	if j.off == 0 {
		if b, ok := n.verify.BatchOf(j.e.Hash); ok && !j.p.sentBatch.Has(b) {
			if sb, ok := n.verify.Signed(b); ok {
				if f, err := wire.AppendFrame(nil, &wire.Manifest{Batches: []wire.SignedBatch{sb}}); err == nil {
					frame, batch, withBatch = f, b, true
				}
			}
		}
	}
	end := min(j.off+n.fragSize, len(j.data))
	c := wire.Chunk{ReqID: j.reqID, ID: j.e.Hash, Size: uint32(len(j.data)), Offset: uint32(j.off), Data: j.data[j.off:end]}
	frame, _ = wire.AppendFrame(frame, &c)
	return frame, func() {
		j.off = end
		if withBatch {
			j.p.noteBatchSent(batch)
		}
	}
}

// sendFrameCharged sends a control frame to a peer if the budget holds it
// now; otherwise it is skipped (what it announces comes again).
func (n *Node) sendFrameCharged(p *peer, frame []byte, control bool) {
	now := time.Now()
	n.mu.Lock()
	ok := n.bucket.Allow(now, len(frame))
	if ok {
		if control {
			n.stats.BytesControl += int64(len(frame))
		} else {
			n.stats.BytesUploaded += int64(len(frame))
		}
	}
	n.mu.Unlock()
	if !ok {
		return
	}
	if n.p.OnUpload != nil {
		n.p.OnUpload(now, len(frame))
	}
	_ = p.lk.sendFrame(frame)
}

// setRateLocked puts the relay rate in force: the budget scaled by the RTT
// guard. The bucket is a few tens of milliseconds deep, so that no second
// ever carries more than a few percent over the budget.
func (n *Node) setRateLocked(now time.Time) {
	rate := float64(n.guard.Apply(int64(n.p.BudgetKbps))) * 1000 / 8
	if n.p.Seed {
		rate = float64(n.p.BudgetKbps) * 1000 / 8 // the seed's egress is its own
	}
	burst := max(int(rate*burstTime.Seconds()), minBurst)
	n.bucket.SetRate(now, rate, burst)
	n.rate = n.bucket.Rate()
	n.fragSize = max(min(burst-wire.ChunkHeaderSize-16-512, wire.MaxFragment), 1024)
}

// observeRTT feeds an RTT sample to the guard and applies what it decides:
// downstreams are choked when relay is cut to nothing, and unchoked when it
// comes back.
func (n *Node) observeRTT(now time.Time, rtt time.Duration) {
	if n.p.Seed {
		return
	}
	n.mu.Lock()
	before := n.guard.Factor()
	n.guard.Observe(now, rtt)
	after := n.guard.Factor()
	if after == before {
		n.mu.Unlock()
		return
	}
	n.setRateLocked(now)
	var msgs []ctlSend
	for _, p := range n.peers {
		switch {
		case n.rate <= 0 && !p.chokedIt && !p.up:
			p.chokedIt = true
			msgs = append(msgs, ctlSend{p.lk, &wire.Choke{Reason: wire.ChokeCongested}})
		case n.rate > 0 && p.chokedIt && n.p.BudgetKbps > 0:
			p.chokedIt = false
			msgs = append(msgs, ctlSend{p.lk, &wire.Unchoke{}})
		}
	}
	n.mu.Unlock()
	n.log.Info("relay rate", "factor", after, "rtt", rtt, "kbps", int(n.rate*8/1000))
	for _, m := range msgs {
		n.sendControl(m.lk, m.m)
	}
}
