package sfu

// maxReorder is how far (in packets) behind the newest forwarded packet a
// late packet may arrive and still be forwarded. Older packets are dropped.
const maxReorder = 1000

// rewriter maps the RTP sequence numbers and timestamps of a succession of
// sources (simulcast layers, publisher sessions) onto one continuous output
// stream, so that a subscriber sees a single stream whatever the SFU forwards
// to it. It is the "offset bookkeeping" of Galene's and ion-sfu's forwarders:
// within a source, output = input + offset, which keeps gaps (so the
// subscriber can NACK them) and reordering; on a source switch the offsets are
// recomputed so the next output sequence number is the last one + 1 and the
// timestamp advances by the wall-clock time elapsed since the last packet.
//
// A rewriter is a pure value: time is passed in, and it is not safe for
// concurrent use.
type rewriter struct {
	clockRate uint32 // of the output stream, Hz

	started   bool
	source    uint64 // id of the source being forwarded
	seqOffset uint16
	tsOffset  uint32

	switchSeq uint16 // output sequence number of a source's first packet
	maxSeq    uint16 // highest output sequence number so far
	maxTS     uint32 // output timestamp of the packet with maxSeq
	maxTime   int64  // arrival time (ns) of that packet
}

// newRewriter returns a rewriter for a stream with the given clock rate.
func newRewriter(clockRate uint32) rewriter {
	if clockRate == 0 {
		clockRate = 90000
	}
	return rewriter{clockRate: clockRate}
}

// rewrite returns the output sequence number and timestamp for a packet of
// source src with input seq and ts that arrived at now (Unix ns). ok is false
// when the packet must be dropped: it is older than the switch to its source,
// or too late to be useful.
//
// A packet from a source other than the current one switches the stream to
// that source; callers decide when a switch is allowed (e.g. at a keyframe).
func (r *rewriter) rewrite(src uint64, seq uint16, ts uint32, now int64) (oseq uint16, ots uint32, ok bool) {
	if !r.started || src != r.source {
		if !r.started {
			// The first source passes through unchanged.
			r.started = true
			r.seqOffset, r.tsOffset = 0, 0
			r.maxSeq, r.maxTS = seq, ts
		} else {
			next := r.maxSeq + 1
			r.seqOffset = next - seq
			r.tsOffset = r.maxTS + r.elapsedTicks(now) - ts
			r.maxSeq, r.maxTS = next, ts+r.tsOffset
		}
		r.source = src
		r.switchSeq = r.maxSeq
		r.maxTime = now
		return r.maxSeq, r.maxTS, true
	}

	oseq = seq + r.seqOffset
	ots = ts + r.tsOffset
	d := int16(oseq - r.maxSeq)
	if d > 0 {
		r.maxSeq, r.maxTS, r.maxTime = oseq, ots, now
		return oseq, ots, true
	}
	// A late, retransmitted or duplicate packet.
	if uint16(-d) > maxReorder {
		return 0, 0, false
	}
	if uint16(r.maxSeq-r.switchSeq) < maxReorder && int16(oseq-r.switchSeq) < 0 {
		// Sent by this source before the point we switched to it: its
		// output sequence numbers belong to the previous source.
		return 0, 0, false
	}
	return oseq, ots, true
}

// elapsedTicks converts the wall-clock time since the newest packet into
// clock ticks, at least 1 so a new source's first frame gets a new timestamp.
func (r *rewriter) elapsedTicks(now int64) uint32 {
	el := now - r.maxTime
	if el <= 0 {
		return 1
	}
	const maxElapsed = int64(3600e9) // an hour: keeps the product below 2^63
	if el > maxElapsed {
		el = maxElapsed
	}
	ticks := uint32(uint64(el) * uint64(r.clockRate) / 1e9)
	if ticks == 0 {
		ticks = 1
	}
	return ticks
}
