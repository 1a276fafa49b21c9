package swarmtest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/origin"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// Params configures a Network. Zero fields take the defaults shown.
type Params struct {
	Seed   uint64    // all randomness comes from here (1)
	Start  time.Time // the virtual clock's start (2030-01-01 UTC)
	Stream string    // ("demo")
	// Renditions of the stream (v0: 500 kbit/s video, a0: 64 kbit/s audio).
	Renditions    []Rendition
	ChunkDuration time.Duration // (manifest.DefaultChunkDuration)
	Window        int           // chunk slots the origin's manifest lists (120)
	Substreams    int           // K (4)
	// Delay is the tracker's playback delay (tracker.SwarmParams.Delay),
	// which every node keeps unless Core.Buffer (or its own) says
	// otherwise, as a welcome's delayMs does.
	Delay time.Duration
	// OriginSlots is the substream links the origin's seed serves (4);
	// OriginKbps its egress budget (4000).
	OriginSlots int
	OriginKbps  int
	// HTTPKbps caps the origin's HTTP media egress as seedcast serve
	// --http-egress does (origin.Params.EgressKbps, with its burst): a
	// fetch past it is refused after the round trip (core.ErrOriginBusy).
	// 0: no cap.
	HTTPKbps int
	// Latency is the one-way delay between two nodes (20 ms); OriginRTT the
	// round trip to the origin over HTTP and to the tracker (40 ms).
	Latency   func(a, b *Node) time.Duration
	OriginRTT time.Duration
	// RebalanceEvery is the tracker's rebalance period (2 s).
	RebalanceEvery time.Duration
	// Loss is the chance that a frame is lost once on its way (0: none).
	// Data channels are reliable and ordered (SCTP): a lost frame is sent
	// again, takes its sender's line a second time and arrives one round
	// trip later, and the frames behind it on its link wait for it.
	Loss float64
	// TrackerKbps is the stream rate the tracker sizes viewers' slots with
	// (0: the renditions' sum). A real tracker has the origin's average
	// when the swarm began, and follows it only when it drifts by a
	// quarter (tracker/server).
	TrackerKbps int
	// PerFragment hands each fragment of a chunk to its receiver as it
	// arrives. Without it a chunk's fragments are handed over together
	// when the last one arrives: fewer events, and the same outcome for a
	// node that only keeps a part until the chunk is whole, which is what a
	// node does without cut-through relay (core.Params.CutThrough).
	PerFragment bool
	// Trusted lists the networks whose viewers the tracker believes from
	// their join (tracker.SwarmParams.Trusted: seedcast serve's
	// --trusted-peers); others start on probation.
	Trusted []netip.Prefix
	// Real makes chunks real bytes, checked by the production verifier
	// (Ed25519 per batch, BLAKE3 per chunk) into the production store.
	// Without it nodes check sizes only and keep no bytes, which is what
	// lets thousands of nodes run.
	Real bool
	// Core is the template for every viewer's core params (durations,
	// pull tuning); Stream, budgets, renditions and the tracker's answer
	// are filled in.
	Core core.Params
}

func (p *Params) defaults() {
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.Start.IsZero() {
		p.Start = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if p.Stream == "" {
		p.Stream = "demo"
	}
	if len(p.Renditions) == 0 {
		p.Renditions = []Rendition{{Name: "v0", Kind: "video", Kbps: 500}, {Name: "a0", Kind: "audio", Kbps: 64}}
	}
	if p.ChunkDuration <= 0 {
		p.ChunkDuration = manifest.DefaultChunkDuration
	}
	if p.Window <= 0 {
		p.Window = 120
	}
	if p.Substreams <= 0 {
		p.Substreams = 4
	}
	if p.OriginSlots <= 0 {
		p.OriginSlots = 4
	}
	if p.OriginKbps <= 0 {
		p.OriginKbps = 4000
	}
	if p.Latency == nil {
		p.Latency = func(a, b *Node) time.Duration { return 20 * time.Millisecond }
	}
	if p.OriginRTT <= 0 {
		p.OriginRTT = 40 * time.Millisecond
	}
	if p.RebalanceEvery <= 0 {
		p.RebalanceEvery = 2 * time.Second
	}
}

// Network runs a swarm on one virtual clock: the origin's modelled stream
// and HTTP service, its seed node, the production tracker policy
// (tracker.Swarm, with its rebalance timer) and any number of production
// node cores. Only links, the clock and the origin's HTTP service are
// modelled: each frame is serialized at its sender's rate and arrives one
// latency later. Given the same Params and the same calls, a run is the
// same, event for event.
type Network struct {
	p       Params
	now     time.Time
	rng     *rand.Rand
	q       eventQueue
	seq     uint64
	stream  *stream
	swarm   *tracker.Swarm
	nodes   map[protocol.PeerID]*Node
	list    []*Node
	seed    *Node
	nextID  int
	linkIDs core.LinkID
	// Events counts the inputs handed to cores.
	Events int64
	// OriginBytes counts the media bytes the origin sent viewers over
	// HTTP (the seed takes its chunks in process, as seedcast serve's
	// does: not egress).
	OriginBytes int64
	// HTTPRefused counts the fetches the HTTP egress cap refused.
	HTTPRefused int64
	// BadStored counts the chunks that nodes stored whose bytes were not
	// the chunk's (sizes-only networks): what a poisoner got past the
	// verifier. It must stay 0.
	BadStored int64
	// Traffic counts the frames' bytes between nodes.
	Traffic Traffic
	lossRng *rand.Rand             // nil without Params.Loss
	httpCap *scheduler.TokenBucket // nil without Params.HTTPKbps
}

// Traffic counts the bytes of the frames nodes sent each other (frame
// headers included). Every byte sent is delivered, lost (its receiver or its
// link was gone when it arrived: churn; or it was a chunk's fragment that
// left the origin's window before its last fragment went) or still in
// flight (Network.InFlight): Sent = Delivered + Lost + InFlight.
type Traffic struct {
	Sent, Delivered, Lost int64
	// Resent counts the bytes sent again after a loss (Params.Loss); they
	// are not in Sent, which counts each frame once.
	Resent int64
	// PeerDelivered counts the delivered bytes whose sender and receiver
	// are both viewers (the seed's are not), and SameRegion those of them
	// whose two ends share a region (NodeParams.Region).
	PeerDelivered, SameRegion int64
}

// New starts a network at Params.Start: the stream goes live and the
// origin's seed joins.
func New(p Params) (*Network, error) {
	p.defaults()
	rng := rand.New(rand.NewPCG(p.Seed, p.Seed^0x5eedca57))
	var seed [ed25519.SeedSize]byte
	for i := range seed {
		seed[i] = byte(rng.Uint32())
	}
	key := ed25519.NewKeyFromSeed(seed[:])
	kbps := 0
	for _, r := range p.Renditions {
		kbps += r.Kbps
	}
	if p.TrackerKbps > 0 {
		kbps = p.TrackerKbps
	}
	sw, err := tracker.NewSwarm(tracker.SwarmParams{Substreams: p.Substreams, BitrateKbps: kbps, Delay: p.Delay, Trusted: p.Trusted, Rand: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))})
	if err != nil {
		return nil, err
	}
	if err := sw.AddOrigin(protocol.OriginPeer, p.OriginSlots); err != nil {
		return nil, err
	}
	n := &Network{
		p: p, now: p.Start, rng: rng, swarm: sw, nodes: map[protocol.PeerID]*Node{},
		stream: newStream(p.Stream, key, p.ChunkDuration, p.Renditions, p.Window, rng, p.Start, p.Real),
	}
	if p.Loss > 0 {
		n.lossRng = rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	}
	if p.HTTPKbps > 0 {
		n.httpCap = scheduler.NewTokenBucket(scheduler.TokenBucketParams{Rate: float64(p.HTTPKbps) * 1000 / 8, Burst: origin.EgressBurst(p.HTTPKbps), Now: p.Start})
	}
	n.at(n.stream.nextAt(), n.produce)
	n.at(p.Start.Add(p.RebalanceEvery), n.rebalance)
	// The seed starts once the first slot is out, as seedcast serve's does.
	n.at(n.stream.nextAt().Add(time.Millisecond), func() {
		s, err := n.start(protocol.OriginPeer, NodeParams{BudgetKbps: p.OriginKbps}, true, nil)
		if err != nil {
			panic(err) // only a bug: the seed's params are ours
		}
		n.seed = s
	})
	return n, nil
}

// Now is the virtual time.
func (n *Network) Now() time.Time { return n.now }

// Swarm is the tracker policy's state (read it, do not change it).
func (n *Network) Swarm() *tracker.Swarm { return n.swarm }

// Seed is the origin's seed node (nil before the stream's first slot).
func (n *Network) Seed() *Node { return n.seed }

// Nodes returns the viewers, in the order they joined.
func (n *Network) Nodes() []*Node { return n.list }

// StreamKbps is the stream's nominal rate (all renditions).
func (n *Network) StreamKbps() int { return n.swarm.BitrateKbps() }

// PublicKey is the stream's key.
func (n *Network) PublicKey() ed25519.PublicKey {
	return n.stream.key.Public().(ed25519.PublicKey)
}

// At runs f at virtual time t (in order with every other event at t).
func (n *Network) At(t time.Time, f func()) { n.at(t, f) }

func (n *Network) at(t time.Time, f func()) { n.atBytes(t, 0, f) }

// atBytes schedules f, a delivery carrying b bytes of frames (InFlight
// counts them until it runs).
func (n *Network) atBytes(t time.Time, b int64, f func()) {
	if t.Before(n.now) {
		t = n.now
	}
	n.seq++
	n.q.push(event{at: t.UnixNano(), seq: n.seq, f: f, bytes: b})
}

// RunUntil runs every event up to t, and leaves the clock at t.
func (n *Network) RunUntil(t time.Time) {
	end := t.UnixNano()
	for len(n.q) > 0 && n.q[0].at <= end {
		ev := n.q.pop()
		n.now = time.Unix(0, ev.at).In(n.p.Start.Location())
		ev.f()
	}
	n.now = t
}

// InFlight is the bytes of frames sent and not yet delivered or lost: on
// their way, or fragments sent ahead of their chunk's last one. It is
// counted from the pending events and links, apart from Traffic.
func (n *Network) InFlight() int64 {
	var b int64
	for _, ev := range n.q {
		b += ev.bytes
	}
	for _, v := range n.list {
		for _, lk := range v.links {
			b += lk.pending
		}
	}
	if n.seed != nil {
		for _, lk := range n.seed.links {
			b += lk.pending
		}
	}
	return b
}

// Pending is the number of events scheduled.
func (n *Network) Pending() int { return len(n.q) }

// Run runs the network for d of virtual time.
func (n *Network) Run(d time.Duration) { n.RunUntil(n.now.Add(d)) }

func (n *Network) produce() {
	n.stream.produce(n.now)
	if n.seed != nil {
		n.seed.input(func(now time.Time) { n.seed.core.ManifestChanged(now) })
	}
	n.at(n.stream.nextAt(), n.produce)
}

func (n *Network) rebalance() {
	n.reassign(n.swarm.Rebalance(n.now))
	n.at(n.now.Add(n.p.RebalanceEvery), n.rebalance)
}

// reassign tells viewers of their new upstreams, half an RTT later.
func (n *Network) reassign(links []tracker.Link) {
	for _, l := range links {
		v := n.nodes[l.Peer]
		if v == nil || !v.LeftAt.IsZero() || !v.alive && v.welcome == nil {
			continue
		}
		depth := n.swarm.ViewerDepth(l.Peer)
		n.at(n.now.Add(n.p.OriginRTT/2), func() {
			if v.core == nil && v.welcome != nil {
				// Not started yet: the tracker's server sends a reassign
				// after the welcome on the same connection, so the core
				// starts with it applied (before, it was lost, and the
				// viewer kept an upstream the tracker had moved it off).
				if l.Substream >= 0 && l.Substream < len(v.welcome.ups) {
					v.welcome.ups[l.Substream], v.welcome.depth = l.Upstream, depth
				}
				return
			}
			v.input(func(now time.Time) { v.core.Reassign(now, l.Substream, l.Upstream, depth) })
		})
	}
}

// NodeParams is one viewer.
type NodeParams struct {
	BudgetKbps int
	// LineKbps is the node's upload line: frames are serialized at it
	// (default: the budget, at least 1000 kbit/s).
	LineKbps int
	Quality  string // (auto)
	// Loc is where the tracker sees the node; without an address or a
	// prefix, each node gets an address of its own, in a /24 of its own
	// (10.x.y.1).
	Loc tracker.Location
	// Core overrides the network's template for this node when non-nil.
	Core *core.Params
	// Region is where the node is in the modelled network (an index the
	// network's Latency function may read with Node.Region; the tracker
	// sees Loc, not this).
	Region int
	// OriginRTT is the node's round trip to the origin and the tracker
	// (0: the network's).
	OriginRTT time.Duration
	// DownKbps is the node's download line: frames and HTTP answers that
	// reach it are serialized at it, in the order they were sent (0: no
	// limit).
	DownKbps int
}

// Join adds a viewer now: it joins the tracker, gets its welcome and the
// manifest window one origin RTT later, and starts its core.
func (n *Network) Join(p NodeParams) (*Node, error) {
	n.nextID++
	id := protocol.PeerID("v" + strconv.Itoa(n.nextID))
	if !p.Loc.Addr.IsValid() && !p.Loc.Prefix.IsValid() {
		// Every viewer on its own address, in its own /24 (10.x.y.1 for
		// the first 65,535; the first octet counts on past them).
		p.Loc.Addr = netip.AddrFrom4([4]byte{byte(10 + n.nextID>>16), byte(n.nextID >> 8), byte(n.nextID), 1})
	}
	links, err := n.swarm.Join(n.now, tracker.PeerInfo{ID: id, Kind: protocol.KindNative, Loc: p.Loc, BudgetKbps: p.BudgetKbps * core.PushShare / 100})
	if err != nil {
		return nil, err
	}
	ups := make([]protocol.PeerID, n.swarm.Substreams())
	for _, l := range links[:len(ups)] {
		if l.Substream >= 0 && l.Substream < len(ups) {
			ups[l.Substream] = l.Upstream
		}
	}
	n.reassign(links[len(ups):]) // viewers moved to make room
	depth := n.swarm.ViewerDepth(id)
	v := &Node{net: n, ID: id, p: p, links: map[core.LinkID]*link{}, OriginRTT: p.OriginRTT, welcome: &welcome{ups: ups, depth: depth}}
	n.nodes[id] = v
	n.list = append(n.list, v)
	v.JoinedAt = n.now
	n.at(n.now.Add(v.originRTT()), func() {
		if _, err := n.start(id, p, false, v.welcome); err != nil {
			v.Err = err
		}
	})
	return v, nil
}

type welcome struct {
	ups   []protocol.PeerID
	depth int
}

// start builds a node's core (the seed's, or a viewer's after its welcome).
func (n *Network) start(id protocol.PeerID, p NodeParams, seed bool, w *welcome) (*Node, error) {
	v := n.nodes[id]
	if v == nil {
		v = &Node{net: n, ID: id, p: p, links: map[core.LinkID]*link{}, JoinedAt: n.now}
		n.nodes[id] = v
	}
	m := n.stream.manifest(-1)
	quality := p.Quality
	if seed {
		quality = "all"
	}
	rends, err := core.SelectRenditions(m.Renditions, quality)
	if err != nil {
		return nil, err
	}
	cp := n.p.Core
	if p.Core != nil {
		cp = *p.Core
	}
	cp.Stream, cp.Seed, cp.BudgetKbps, cp.Renditions, cp.Manifest, cp.Now = n.p.Stream, seed, p.BudgetKbps, rends, m, n.now
	cp.Substreams = n.swarm.Substreams()
	if cp.Buffer <= 0 {
		cp.Buffer = n.swarm.Delay() // as the welcome's delayMs
	}
	cp.OwnedFrames = true // messages are delivered in memory, never reused
	if w != nil {
		cp.Upstreams, cp.Depth = w.ups, w.depth
	}
	if seed {
		cp.Notified = true
	}
	if n.p.Real {
		vf, err := core.NewVerifier(core.VerifierParams{Stream: n.p.Stream, PublicKey: n.PublicKey()})
		if err != nil {
			return nil, err
		}
		cp.Verifier, cp.Store = vf, core.NewStore(64<<20)
	} else {
		st := newSizeStore(1024)
		st.bad = &n.BadStored
		cp.Verifier, cp.Store = newTrustVerifier(n.stream), st
	}
	// Each core's own jitter, from the run's seed and the node's id (not
	// from the network's source, whose draws the rest of the run follows).
	h := fnv.New64a()
	h.Write([]byte(id))
	cp.Rand = rand.New(rand.NewPCG(n.p.Seed, h.Sum64()))
	c, err := core.New(cp)
	if err != nil {
		return nil, err
	}
	v.core, v.alive, v.lineKbps = c, true, p.LineKbps
	if v.lineKbps <= 0 {
		v.lineKbps = max(p.BudgetKbps, 1000)
	}
	v.input(func(time.Time) {})
	return v, nil
}

// Node is one node of the network: its production core, and the modelled
// links and line around it.
type Node struct {
	net      *Network
	ID       protocol.PeerID
	p        NodeParams
	core     *core.Node
	welcome  *welcome // what its core starts with, kept up to date until then
	alive    bool
	frozen   bool
	poison   bool
	lineKbps int
	lineFree time.Time // when the upload line is free
	downFree time.Time // when the download line is free
	links    map[core.LinkID]*link
	wake     time.Time // the tick scheduled (zero: none)
	JoinedAt time.Time
	// LeftAt is when the node left or crashed (zero while it runs).
	LeftAt time.Time
	// Err is why the node could not start.
	Err error
	// Charged counts the bytes the node's budget paid for; PeakWindow is
	// the most of them in any window of MeterWindow (default 1 s).
	Charged     int64
	PeakWindow  int64
	MeterWindow time.Duration
	window      []Upload
	windowSum   int64
	// OriginRTT, when set, is this node's round trip to the origin instead
	// of the network's (a congested uplink).
	OriginRTT time.Duration
	// Ready counts the media chunks this node could play, and the first
	// time one was (startup).
	Ready      int
	FirstReady time.Time
}

// Upload is one frame a node's budget paid for.
type Upload struct {
	At    time.Time
	Bytes int
}

// meter counts a charged frame and keeps the peak over any window.
func (v *Node) meter(b int) {
	now := v.net.now
	w := v.MeterWindow
	if w <= 0 {
		w = time.Second
	}
	v.Charged += int64(b)
	v.window = append(v.window, Upload{At: now, Bytes: b})
	v.windowSum += int64(b)
	i := 0
	for now.Sub(v.window[i].At) >= w {
		v.windowSum -= int64(v.window[i].Bytes)
		i++
	}
	v.window = v.window[i:]
	v.PeakWindow = max(v.PeakWindow, v.windowSum)
}

// originRTT is the node's round trip to the origin.
func (v *Node) originRTT() time.Duration {
	if v.OriginRTT > 0 {
		return v.OriginRTT
	}
	return v.net.p.OriginRTT
}

// link is one direction's end of a modelled data channel.
type link struct {
	id     core.LinkID
	from   *Node
	to     *Node
	peerID core.LinkID // the same link's id at the other end
	// pending is the bytes of fragments sent ahead of their chunk's last
	// one (delivered with it); last the arrival of the latest frame: the
	// channel is ordered, no frame overtakes another.
	pending int64
	frags   []wire.Message // chunk fragments sent ahead (pending)
	last    time.Time
}

// drop forgets a link whose end v held: fragments sent ahead on it are lost.
func (v *Node) drop(id core.LinkID) *link {
	lk := v.links[id]
	if lk != nil {
		delete(v.links, id)
		v.net.Traffic.Lost += lk.pending
		lk.pending, lk.frags = 0, nil
	}
	return lk
}

// Region is the node's modelled region (NodeParams.Region).
func (v *Node) Region() int { return v.p.Region }

// download runs f once size bytes that reach v now have come down its
// download line: at once without one, else after what the line still
// carries (first come, first served) and their own time on it. It is
// called as they arrive, so that the line serves them in arrival order.
// Of them, peer frames' bytes (inFlight) stay in flight until then.
func (v *Node) download(size int, inFlight int64, f func()) {
	n := v.net
	if v.p.DownKbps <= 0 {
		f()
		return
	}
	v.downFree = maxTime(n.now, v.downFree).Add(lineTime(size, v.p.DownKbps))
	n.atBytes(v.downFree, inFlight, f)
}

// lineTime is how long b bytes take on a line of kbps.
func lineTime(b, kbps int) time.Duration {
	return time.Duration(float64(b*8) / float64(kbps*1000) * float64(time.Second))
}

// Core is the node's core (read it between Run calls).
func (v *Node) Core() *core.Node { return v.core }

// Stats are the core's counters.
func (v *Node) Stats() core.Stats {
	if v.core == nil {
		return core.Stats{}
	}
	return v.core.Stats()
}

// Alive reports whether the node runs.
func (v *Node) Alive() bool { return v.alive }

// Budget is the node's relay budget as it joined.
func (v *Node) Budget() int { return v.p.BudgetKbps }

// input runs one input on the core at the network's now, then carries out
// its outputs and schedules its next wake.
func (v *Node) input(f func(now time.Time)) {
	if !v.alive {
		return
	}
	n := v.net
	n.Events++
	f(n.now)
	for {
		o, ok := v.core.Poll()
		if !ok {
			break
		}
		v.carryOut(o)
	}
	wake := v.core.NextWake()
	if !wake.After(n.now) {
		wake = n.now.Add(time.Millisecond)
	}
	if v.wake.IsZero() || wake.Before(v.wake) {
		v.wake = wake
		n.at(wake, func() {
			if !v.wake.Equal(wake) {
				return // superseded by an earlier wake
			}
			v.wake = time.Time{}
			v.input(func(now time.Time) { v.core.Tick(now) })
		})
	}
}

func (v *Node) carryOut(o core.Output) {
	n := v.net
	switch o.Kind {
	case core.OutSend:
		lk := v.links[o.Link]
		if lk == nil {
			return
		}
		if o.Charged {
			v.meter(o.Bytes)
		}
		if v.frozen && o.Media {
			return // a frozen node sends no media, and says nothing of it
		}
		if v.poison {
			o.Msg = poisoned(o.Msg)
		}
		// Serialized on the sender's line, then one latency to the peer.
		n.Traffic.Sent += int64(o.Bytes)
		lk.pending += int64(o.Bytes)
		start := maxTime(n.now, v.lineFree)
		v.lineFree = start.Add(lineTime(o.Bytes, v.lineKbps))
		lat := n.p.Latency(v, lk.to)
		at := v.lineFree.Add(lat)
		if n.lossRng != nil && n.lossRng.Float64() < n.p.Loss {
			// Lost once: sent again a round trip later.
			n.Traffic.Resent += int64(o.Bytes)
			v.lineFree = v.lineFree.Add(lineTime(o.Bytes, v.lineKbps))
			at = at.Add(2*lat + lineTime(o.Bytes, v.lineKbps))
		}
		at = maxTime(at, lk.last)
		lk.last = at
		msg := copyMsg(o.Msg)
		var frags []wire.Message
		if c, ok := msg.(*wire.Chunk); ok && !n.p.PerFragment {
			// A chunk's fragments travel as sent, but are handed over
			// together when its last one arrives: what the receiver does
			// with a part is only to keep it (see PerFragment). (Their
			// bytes alias the sender's: nothing alters a chunk once
			// stored.)
			lk.frags = append(lk.frags, msg)
			if int(c.Offset)+len(c.Data) < int(c.Size) {
				return
			}
			frags, lk.frags = lk.frags, nil
		}
		to, id, b := lk.to, lk.peerID, lk.pending
		lk.pending = 0
		n.atBytes(at, b, func() {
			to.download(int(b), b, func() {
				if !to.alive || to.links[id] == nil {
					n.Traffic.Lost += b
					return
				}
				n.Traffic.Delivered += b
				if v != n.seed && to != n.seed {
					n.Traffic.PeerDelivered += b
					if v.p.Region == to.p.Region {
						n.Traffic.SameRegion += b
					}
				}
				if frags == nil {
					to.input(func(now time.Time) { to.core.Receive(now, id, msg) })
					return
				}
				to.input(func(now time.Time) {
					for _, m := range frags {
						to.core.Receive(now, id, m)
					}
				})
			})
		})
	case core.OutClose:
		lk := v.drop(o.Link)
		if lk != nil {
			to, id := lk.to, lk.peerID
			n.at(n.now.Add(n.p.Latency(v, to)), func() { to.closeLink(id) })
		}
	case core.OutDial:
		v.dial(o.Peer)
	case core.OutFetchChunk:
		data, ok := n.stream.chunk(o.Entry.Hash)
		var err error
		delay := v.originRTT()
		switch {
		case !ok:
			err = errNotFound
		case v == n.seed:
			// In process, from the origin's own store (swarm.Seeds): no
			// HTTP, no round trip.
			delay = 0
		case n.httpCap != nil && !n.httpCap.Allow(n.now.Add(delay/2), len(data)):
			// Refused at the origin, half a round trip from now (the
			// bucket is asked a little ahead of its clock: Allow treats
			// an earlier time as the latest seen).
			n.HTTPRefused++
			id := o.Entry.Hash
			n.at(n.now.Add(delay), func() {
				v.input(func(now time.Time) { v.core.ChunkFetched(now, id, nil, fmt.Errorf("503: %w", core.ErrOriginBusy)) })
			})
			return
		default:
			n.OriginBytes += int64(len(data))
		}
		id := o.Entry.Hash
		n.at(n.now.Add(delay), func() {
			v.download(len(data), 0, func() { v.input(func(now time.Time) { v.core.ChunkFetched(now, id, data, err) }) })
		})
	case core.OutFetchManifest:
		delay := v.originRTT()
		if v == n.seed {
			delay = 0 // in process
		}
		m := n.stream.manifest(o.After)
		n.at(n.now.Add(delay), func() { v.input(func(now time.Time) { _ = v.core.ManifestFetched(now, m, nil) }) })
	case core.OutPing:
		rtt := v.originRTT()
		n.at(n.now.Add(rtt), func() { v.input(func(now time.Time) { v.core.RTT(now, rtt, nil) }) })
	case core.OutReport:
		r := *o.Report
		n.at(n.now.Add(n.p.OriginRTT/2), func() { n.report(v, r) })
	case core.OutReady:
		if o.Entry.Kind == manifest.KindChunk {
			v.Ready++
			if v.FirstReady.IsZero() {
				v.FirstReady = n.now
			}
		}
	}
}

var errNotFound = errors.New("swarmtest: 404")

// copyMsg gives the receiver its own message: what the sender's core keeps
// (a chunk's bytes) must not be shared with a receiver that could alter it.
func copyMsg(m wire.Message) wire.Message {
	switch m := m.(type) {
	case *wire.Chunk:
		c := *m
		return &c // Data aliases the stream's bytes, which nobody alters
	default:
		return m
	}
}

// report is the tracker's handling of a report: the production policy's,
// as the server calls it.
func (n *Network) report(v *Node, r protocol.Report) {
	if !v.alive || v == n.seed {
		return
	}
	links := n.swarm.TakeReport(n.now, v.ID, &r, v.p.BudgetKbps*core.PushShare/100)
	n.reassign(links)
}

// dial opens a link to an upstream: both ends hear of it after one round
// trip (the offer and answer go through the tracker); a dead or unknown
// upstream fails after a second.
func (v *Node) dial(to protocol.PeerID) {
	n := v.net
	u := n.nodes[to]
	if u != nil && u.core == nil && u.welcome != nil && u.LeftAt.IsZero() {
		// Joined, its core not started yet: the offer waits at the
		// tracker for its session, and goes on when it starts.
		if at := u.JoinedAt.Add(u.originRTT()); n.now.Before(at) {
			n.at(at, func() {
				if v.alive {
					v.dial(to)
				}
			})
			return
		}
	}
	if u == nil || !u.alive || !n.swarm.Linked(v.ID, to) && to != protocol.OriginPeer {
		n.at(n.now.Add(time.Second), func() { v.input(func(now time.Time) { v.core.DialFailed(now, to) }) })
		return
	}
	rtt := 2*n.p.Latency(v, u) + n.p.OriginRTT
	n.at(n.now.Add(rtt), func() {
		if !u.alive || !v.alive {
			v.input(func(now time.Time) { v.core.DialFailed(now, to) })
			return
		}
		n.linkIDs += 2
		a := &link{id: n.linkIDs - 1, from: v, to: u, peerID: n.linkIDs}
		b := &link{id: n.linkIDs, from: u, to: v, peerID: n.linkIDs - 1}
		v.links[a.id], u.links[b.id] = a, b
		u.input(func(now time.Time) { u.core.LinkOpened(now, b.id, v.ID, false) })
		v.input(func(now time.Time) { v.core.LinkOpened(now, a.id, u.ID, true) })
	})
}

func (v *Node) closeLink(id core.LinkID) {
	if v.drop(id) == nil {
		return
	}
	v.input(func(now time.Time) { v.core.LinkClosed(now, id) })
}

// Leave makes the node leave gracefully: the tracker hears at once, its
// links close one latency later.
func (v *Node) Leave() { v.stop(0, 0) }

// Kill makes the node crash: its links and tracker connection drop with no
// word (the tracker notices the connection close after closeAfter).
func (v *Node) Kill(closeAfter time.Duration) { v.stop(closeAfter, closeAfter) }

// Vanish makes the node go silently: its peers find their links dead after
// linksAfter (ICE consent), the tracker its connection after trackerAfter
// (keepalive). Until then, what is sent to it is lost.
func (v *Node) Vanish(linksAfter, trackerAfter time.Duration) { v.stop(linksAfter, trackerAfter) }

func (v *Node) stop(linksAfter, trackerAfter time.Duration) {
	n := v.net
	if !v.alive {
		return
	}
	v.alive = false
	v.LeftAt = n.now
	n.at(n.now.Add(trackerAfter), func() { n.reassign(n.swarm.Leave(n.now, v.ID)) })
	n.at(n.now.Add(linksAfter), func() {
		for _, id := range slices.Sorted(maps.Keys(v.links)) {
			lk := v.drop(id)
			to, pid := lk.to, lk.peerID
			delay := n.p.Latency(v, to)
			if linksAfter > 0 {
				delay = 0 // the peer's own timeout ran out
			}
			n.at(n.now.Add(delay), func() { to.closeLink(pid) })
		}
	})
}

// Freeze makes the node stop sending media without a word: links stay up,
// it chokes nobody, and its core believes it sends.
func (v *Node) Freeze() { v.frozen = true }

// Poison makes the node a poisoner: every chunk fragment it sends from now
// on carries bytes that are not the chunk's, and every batch it relays a
// forged signature.
func (v *Node) Poison() { v.poison = true }

// poisoned is what a poisoner sends instead of m.
func poisoned(m wire.Message) wire.Message {
	switch m := m.(type) {
	case *wire.Chunk:
		c := *m
		c.Data = bytes.Repeat([]byte{0xa5}, len(m.Data))
		return &c
	case *wire.Manifest:
		f := &wire.Manifest{}
		for _, sb := range m.Batches {
			sb.Signature = bytes.Clone(sb.Signature)
			sb.Signature[0] ^= 1
			f.Batches = append(f.Batches, sb)
		}
		return f
	}
	return m
}

// SetBudget changes the node's relay budget (the user moved the slider).
func (v *Node) SetBudget(kbps int) {
	v.input(func(now time.Time) { v.core.SetBudget(now, kbps) })
}

// Upstreams returns the node's upstream per substream, as its core has it.
func (v *Node) Upstreams() []protocol.PeerID { return v.core.Upstreams() }

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// String names the node.
func (v *Node) String() string { return fmt.Sprintf("%s(%d kbps)", v.ID, v.p.BudgetKbps) }

type event struct {
	at    int64 // unix ns
	seq   uint64
	bytes int64 // frame bytes a delivery carries (0 for other events)
	f     func()
}

func (e *event) before(o *event) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	return e.seq < o.seq
}

// eventQueue is a binary min-heap of events by (at, seq): ties run in the
// order they were scheduled. (Hand-written rather than container/heap,
// whose interface boxing allocates an event per push: a large run pushes
// billions.)
type eventQueue []event

func (q *eventQueue) push(e event) {
	*q = append(*q, e)
	h := *q
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h[i].before(&h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *eventQueue) pop() event {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{}
	h = h[:last]
	*q = h
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top
}
