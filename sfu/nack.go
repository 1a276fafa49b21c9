package sfu

import "time"

// The SFU asks publishers to retransmit lost video packets itself, rather
// than with pion's NACK generator: that one never learns of packets
// repaired over RTX (they reach the track reader, not the primary stream's
// interceptors; pion/interceptor#320), so it asks for every lost packet
// again every 100 ms until the packet leaves its 512-packet window. After a
// publisher's link comes back from a cut, Chrome then spends seconds
// resending stale packets ahead of fresh ones: in 17 of 55 runs of
// TestBrowserCallMediaCut the others in the call saw it move again only
// 3.7–7.4 s after a 2 s cut, against a median of 1.1 s (docs/benchmarks.md).
// The read loop sees every packet, repaired ones included, so it keeps the
// account here.
const (
	// nackMaxTries is how many times one packet is asked for.
	nackMaxTries = 3
	// nackRetry is the wait before asking again for a packet asked for and
	// still missing.
	nackRetry = int64(100 * time.Millisecond)
	// nackGrace is how long a packet is missing before it is asked for:
	// a packet merely reordered arrives within it.
	nackGrace = int64(10 * time.Millisecond)
	// nackMaxMissing bounds the packets tracked. After a longer gap (a
	// link cut, say) only the newest are asked for: the older ones are
	// too stale to be worth their bandwidth, and the picture needs a
	// keyframe anyway.
	nackMaxMissing = 256
)

// missingPacket is a packet nackLog waits for.
type missingPacket struct {
	seq   int64 // extended sequence number
	since int64 // when the gap was seen, Unix ns
	last  int64 // when it was last asked for (0: never)
	tries int
}

// nackLog keeps the account of one received RTP stream's sequence numbers
// and decides which missing packets to ask for, and when. It is pure:
// time is passed in. It is owned by the stream's read goroutine.
type nackLog struct {
	started bool
	newest  int64           // highest extended sequence number received
	missing []missingPacket // ascending by seq, at most nackMaxMissing
}

// extend maps a 16-bit sequence number onto the extended sequence numbers
// around newest.
func (g *nackLog) extend(seq uint16) int64 {
	return g.newest + int64(int16(seq-uint16(g.newest)))
}

// received records packet seq arriving at now. It reports whether the
// packet is one that was missing (a retransmission or a late packet).
func (g *nackLog) received(seq uint16, now int64) (wasMissing bool) {
	if !g.started {
		g.started, g.newest = true, int64(seq)
		return false
	}
	ext := g.extend(seq)
	switch {
	case ext > g.newest:
		from := g.newest + 1
		if ext-from > nackMaxMissing {
			from = ext - nackMaxMissing
		}
		for s := from; s < ext; s++ {
			g.missing = append(g.missing, missingPacket{seq: s, since: now})
		}
		if over := len(g.missing) - nackMaxMissing; over > 0 {
			g.missing = append(g.missing[:0], g.missing[over:]...)
		}
		g.newest = ext
		return false
	case ext == g.newest:
		return false
	}
	// Binary search: the list is short, but a cut fills it.
	lo, hi := 0, len(g.missing)
	for lo < hi {
		mid := (lo + hi) / 2
		if g.missing[mid].seq < ext {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(g.missing) && g.missing[lo].seq == ext {
		g.missing = append(g.missing[:lo], g.missing[lo+1:]...)
		return true
	}
	return false
}

// due appends to dst the sequence numbers to ask for at now, and counts
// them as asked. Packets asked for nackMaxTries times are given up.
func (g *nackLog) due(now int64, dst []uint16) []uint16 {
	kept := g.missing[:0]
	for _, m := range g.missing {
		switch {
		case m.tries >= nackMaxTries && now-m.last >= nackRetry:
			continue // given up
		case m.tries == 0 && now-m.since >= nackGrace,
			m.tries > 0 && m.tries < nackMaxTries && now-m.last >= nackRetry:
			m.tries++
			m.last = now
			dst = append(dst, uint16(m.seq))
		}
		kept = append(kept, m)
	}
	g.missing = kept
	return dst
}
