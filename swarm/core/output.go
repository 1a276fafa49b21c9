package core

import (
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// OutputKind says what an Output asks the driver to do.
type OutputKind uint8

// Output kinds.
const (
	// OutSend: send Msg on Link. Bytes is its encoded size (frame header
	// included); Charged is set when the upload budget paid for it (media,
	// haves and relayed batches), and Media when it carries chunk bytes.
	OutSend OutputKind = iota + 1
	// OutClose: close Link. The core has forgotten it already; Err says why.
	OutClose
	// OutDial: open a link to upstream Peer, then call LinkOpened, or
	// DialFailed.
	OutDial
	// OutFetchChunk: get Entry's bytes from the origin over HTTP
	// (GET /c/{hash}), then call ChunkFetched.
	OutFetchChunk
	// OutFetchManifest: get the signed manifest window after batch After
	// (-1: the whole window), then call ManifestFetched.
	OutFetchManifest
	// OutPing: measure one round trip to the origin, then call RTT.
	OutPing
	// OutReport: send Report to the protocol.
	OutReport
	// OutReady: the chunk (or init segment) Entry is verified and stored;
	// a media chunk plays at Deadline.
	OutReady
)

var outputNames = [...]string{"", "send", "close", "dial", "fetch-chunk", "fetch-manifest", "ping", "report", "ready"}

func (k OutputKind) String() string {
	if int(k) < len(outputNames) {
		return outputNames[k]
	}
	return "unknown"
}

// Output is one thing the core wants done. Which fields are set depends on
// Kind (see the kinds).
type Output struct {
	Kind     OutputKind
	Link     LinkID
	Peer     protocol.PeerID
	Msg      wire.Message
	Bytes    int
	Charged  bool
	Media    bool
	Entry    manifest.Entry
	After    int64
	Report   *protocol.Report
	Deadline time.Time
	Err      error
}

func (n *Node) emit(o Output) { n.out = append(n.out, o) }

// Poll returns the next output, if any. Drain it after every input.
func (n *Node) Poll() (Output, bool) {
	if n.outHd >= len(n.out) {
		n.out, n.outHd = n.out[:0], 0
		return Output{}, false
	}
	o := n.out[n.outHd]
	n.out[n.outHd] = Output{}
	n.outHd++
	return o, true
}

// send queues a control message to a peer, uncharged.
func (n *Node) send(p *peer, m wire.Message) {
	size := wire.FrameSize(m)
	n.stats.BytesControl += int64(size)
	n.emit(Output{Kind: OutSend, Link: p.link, Peer: p.remote, Msg: m, Bytes: size})
}

// sendCharged queues a control message the budget pays for, if it can now;
// otherwise it is skipped (what it announces comes again).
func (n *Node) sendCharged(now time.Time, p *peer, ms ...wire.Message) bool {
	size := 0
	for _, m := range ms {
		size += wire.FrameSize(m)
	}
	if !n.bucket.Allow(now, size) {
		return false
	}
	for _, m := range ms {
		b := wire.FrameSize(m)
		n.stats.BytesControl += int64(b)
		n.emit(Output{Kind: OutSend, Link: p.link, Peer: p.remote, Msg: m, Bytes: b, Charged: true})
	}
	return true
}
