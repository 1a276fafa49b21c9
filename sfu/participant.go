package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/media"
)

// A call participant has two peer connections, as in LiveKit: on the
// publish connection the participant offers and sends its tracks; on the
// subscribe connection the server offers and forwards the tracks the
// participant subscribed to. Each side always offers on its own
// connection, so renegotiations never collide (no glare), and the
// participant's own tracks never share a transport with what it receives.

// CallTrack is a track a call participant publishes.
type CallTrack struct {
	ID   string     // participant id + "-" + mid; stable while published
	Mid  string     // the media section it is sent on
	Kind media.Kind // audio or video
}

// PublishResult is what a participant's publish offer changed.
type PublishResult struct {
	Answer  string
	Added   []CallTrack // tracks sent now that were not before
	Removed []string    // ids of tracks no longer sent
}

// ParticipantParams configures Join.
type ParticipantParams struct {
	// Room is the call room's name; the room is opened as a call if
	// needed (ErrRoomKind if a broadcast has the name).
	Room string
	// ID identifies the participant in the room: its tracks are named
	// after it and speaker events carry it. It must be unique in the room.
	ID string
	// Addr is the client's address, for the per-address caps.
	Addr netip.Addr
	// OnOffer receives the server's offers for the subscribe connection,
	// in order; the participant answers each with SubscribeAnswer. It is
	// called from a goroutine of the participant's own and must not block
	// for long.
	OnOffer func(sdp string)
	// OnClosed is called once if the server ends the participant (a peer
	// connection failed or did not connect, the room or server closed); not
	// after Close.
	OnClosed func(reason string)
}

// Participant is a member of a call room (see Server.Join).
type Participant struct {
	s *Server
	// lastEstimateAlloc is when a GCC estimate change last reallocated
	// (Unix ns): estimates change many times a second, and the half-second
	// loop catches what a skipped one would have done.
	lastEstimateAlloc atomic.Int64
	room              *Room
	id                string
	p                 ParticipantParams
	log               *slog.Logger
	release           func() // the participant's hold on its room
	done              chan struct{}

	pubMu sync.Mutex // serializes PublishOffer

	mu        sync.Mutex
	closed    bool
	pub, sub  *session
	published map[string]CallTrack   // by track id
	subs      map[string]*subscribed // by track id
	// Subscribe connection negotiation: an offer is out (negotiating),
	// another is due once it is answered (needed), the next one restarts
	// ICE (restart). lastOffer is the offer out, for ResendOffer.
	negotiating, needed, restart bool
	lastOffer                    string
	lastAlloc                    string    // the allocation last logged
	lastProbe                    time.Time // the last layer rise past the estimate
}

// subscribed is one track forwarded to a participant.
type subscribed struct {
	d      *downTrack
	sender *webrtc.RTPSender
	want   Quality
	// The allocator's last choice for this track (a rank, -1 none), when
	// it was made, and the want it was made for: see holdLayer.
	last     int
	lastAt   time.Time
	lastWant Quality
}

// Join makes a participant of call room p.Room. Its peer connections are
// made when it first publishes (PublishOffer) and first subscribes
// (Subscribe); a participant that does neither holds none. It holds the
// room open until it is closed.
func (s *Server) Join(p ParticipantParams) (*Participant, error) {
	if p.ID == "" {
		return nil, fmt.Errorf("%w: empty participant id", ErrBadStreamName)
	}
	if p.OnOffer == nil {
		p.OnOffer = func(string) {}
	}
	var room *Room
	var release func()
	for {
		r, err := s.OpenRoom(p.Room, RoomKindCall)
		if err != nil {
			return nil, err
		}
		if rel, ok := r.hold(); ok {
			room, release = r, rel
			break
		}
		s.removeRoom(r)
	}
	pt := &Participant{
		s: s, room: room, id: p.ID, p: p, release: release,
		log:       s.log.With("room", p.Room, "participant", p.ID),
		published: map[string]CallTrack{},
		subs:      map[string]*subscribed{},
		done:      make(chan struct{}),
	}
	s.goFunc(func() {
		select {
		case <-room.Done():
			pt.end("room closed", true)
		case <-pt.done:
		}
	})
	return pt, nil
}

// ID returns the participant's id.
func (p *Participant) ID() string { return p.id }

// Done is closed when the participant ends.
func (p *Participant) Done() <-chan struct{} { return p.done }

// Room returns the participant's room.
func (p *Participant) Room() *Room { return p.room }

func (p *Participant) trackID(mid string) string { return p.id + "-" + mid }

// speakerID names a publisher session in speaker events: its
// participant's id in calls, else its own id.
func (ss *session) speakerID() string {
	if ss.part != nil {
		return ss.part.id
	}
	return ss.id
}

// sending returns the media sections an offer sends media on, by mid.
func sending(sd *sdp.SessionDescription) map[string]media.Kind {
	out := map[string]media.Kind{}
	for _, md := range sd.MediaDescriptions {
		if send, _ := directions(md); !send {
			continue
		}
		kind := media.KindAudio
		switch md.MediaName.Media {
		case "audio":
		case "video":
			kind = media.KindVideo
		default:
			continue
		}
		if mid, _ := md.Attribute("mid"); mid != "" {
			out[mid] = kind
		}
	}
	return out
}

// OfferSendsVideo reports whether an SDP offer sends video (false for an
// offer that does not parse: PublishOffer reports those).
func OfferSendsVideo(offer string) bool {
	sd := &sdp.SessionDescription{}
	if sd.UnmarshalString(offer) != nil {
		return false
	}
	for _, k := range sending(sd) {
		if k == media.KindVideo {
			return true
		}
	}
	return false
}

// PublishOffer applies the participant's offer for its publish connection
// (the first makes the connection; later ones add or stop tracks or
// restart ICE) and returns the answer, with every candidate, and the
// tracks it started and stopped. A stopped track ends for its subscribers
// at once: they renegotiate without it, so nobody is left with a frozen
// frame.
func (p *Participant) PublishOffer(ctx context.Context, offer string) (PublishResult, error) {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	sd, err := checkOffer(offer, RoomKindCall)
	if err != nil {
		return PublishResult{}, err
	}
	p.mu.Lock()
	closed, ss := p.closed, p.pub
	p.mu.Unlock()
	if closed {
		return PublishResult{}, ErrClosed
	}
	var ans string
	if ss == nil {
		if ss, ans, err = p.startPublish(ctx, sd, offer); err != nil {
			return PublishResult{}, err
		}
	} else if ans, err = ss.answer(ctx, offer, nil); err != nil {
		return PublishResult{}, err
	}
	res := PublishResult{Answer: ans}
	now := sending(sd)
	codecs := map[string]webrtc.RTPCodecParameters{}
	for _, tr := range ss.pc.GetTransceivers() {
		if tr.Receiver() == nil {
			continue
		}
		if c, ok := firstMediaCodec(tr.Receiver().GetParameters().Codecs); ok {
			codecs[tr.Mid()] = c
		}
	}
	p.mu.Lock()
	for _, mid := range slices.Sorted(maps.Keys(now)) {
		id := p.trackID(mid)
		if _, ok := p.published[id]; ok {
			continue
		}
		c, ok := codecs[mid]
		if !ok {
			continue
		}
		kind := webrtc.RTPCodecTypeAudio
		if now[mid] == media.KindVideo {
			kind = webrtc.RTPCodecTypeVideo
		}
		p.room.track(id, kind, c)
		ct := CallTrack{ID: id, Mid: mid, Kind: now[mid]}
		p.published[id] = ct
		res.Added = append(res.Added, ct)
	}
	for _, id := range slices.Sorted(maps.Keys(p.published)) {
		if _, ok := now[p.published[id].Mid]; !ok {
			delete(p.published, id)
			res.Removed = append(res.Removed, id)
		}
	}
	p.mu.Unlock()
	for _, id := range res.Removed {
		p.room.removeTrack(id)
	}
	return res, nil
}

// startPublish makes the publish connection from the first offer.
func (p *Participant) startPublish(ctx context.Context, sd *sdp.SessionDescription, offer string) (*session, string, error) {
	ss := p.s.newSession(rolePublisher, p.room)
	ss.part = p
	ss.log = p.log.With("pc", "publish")
	fail, err := ss.start(sd, p.p.Addr)
	if err != nil {
		return nil, "", err
	}
	ss.pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		ss.onTrack(remote, recv)
	})
	ans, err := ss.answer(ctx, offer, nil)
	if err != nil {
		_, _, err = fail(err)
		return nil, "", err
	}
	if err := p.room.addPublisher(ss); err != nil {
		_, _, err = fail(err)
		return nil, "", err
	}
	if !ss.register() {
		_, _, err = fail(ErrClosed)
		return nil, "", err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ss.close("participant closed")
		return nil, "", ErrClosed
	}
	p.pub = ss
	p.mu.Unlock()
	ss.onClose = func(reason string) { p.end("publish connection: "+reason, true) }
	ss.watch()
	p.log.Info("publishing")
	return ss, ans, nil
}

// Published returns the participant's published tracks.
func (p *Participant) Published() []CallTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]CallTrack, 0, len(p.published))
	for _, t := range p.published {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Subscribe starts forwarding track id (another participant's) on the
// subscribe connection, at quality q for video. The connection is made
// on the first call; each change is sent to the participant as a new
// offer (OnOffer).
func (p *Participant) Subscribe(id string, q Quality) error {
	t, ok := p.room.callTrack(id)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTrack, id)
	}
	if t.id[:min(len(t.id), len(p.id)+1)] == p.id+"-" {
		return fmt.Errorf("%w: %q is the participant's own track", ErrUnknownTrack, id)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if _, ok := p.subs[id]; ok {
		p.mu.Unlock()
		return p.SetQuality(id, q)
	}
	if p.sub == nil {
		if err := p.startSubscribe(); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	d := newDownTrack(p.sub, t, id)
	d.alloc = RIDOf(QualityLow) // start low; the allocator raises it
	d.off = q == QualityOff
	sender, err := p.sub.pc.AddTrack(d)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrUnsupportedCodec, err)
	}
	p.subs[id] = &subscribed{d: d, sender: sender, want: q, last: -2}
	connected := p.sub.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	p.mu.Unlock()
	now := p.s.now()
	if err := p.room.attachDown(d, now); err != nil {
		p.Unsubscribe(id)
		return err
	}
	if connected {
		d.setReady(now)
	}
	p.s.goFunc(func() { d.rtcpLoop(sender) })
	p.negotiate(false)
	p.allocate()
	return nil
}

// startSubscribe makes the subscribe connection. Called with p.mu held.
func (p *Participant) startSubscribe() error {
	ss := p.s.newSession(roleSubscriber, p.room)
	ss.part = p
	ss.log = p.log.With("pc", "subscribe")
	if _, err := ss.start(nil, p.p.Addr); err != nil {
		return err
	}
	if !ss.register() {
		ss.close("server closed")
		return ErrClosed
	}
	ss.onConnected = func(now time.Time) {
		p.mu.Lock()
		downs := make([]*downTrack, 0, len(p.subs))
		for _, sb := range p.subs {
			downs = append(downs, sb.d)
		}
		p.mu.Unlock()
		for _, d := range downs {
			d.setReady(now)
		}
	}
	ss.onClose = func(reason string) { p.end("subscribe connection: "+reason, true) }
	ss.watch()
	p.sub = ss
	ss.bwe.OnTargetBitrateChange(func(int) {
		now := p.s.now().UnixNano()
		if last := p.lastEstimateAlloc.Load(); now-last < int64(estimateAllocEvery) || !p.lastEstimateAlloc.CompareAndSwap(last, now) {
			return
		}
		p.allocate()
	})
	p.s.goFunc(func() { p.allocLoop(ss) })
	return nil
}

// estimateAllocEvery bounds how often a GCC estimate change reallocates.
const estimateAllocEvery = 150 * time.Millisecond

// allocLoop reallocates the downlink every half second while the
// subscribe connection lives: layer bitrates move even when the estimate
// does not, and a layer the publisher stops sending must be replaced
// soon (the subscriber forwarded it sees a frozen picture).
func (p *Participant) allocLoop(ss *session) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ss.done:
			return
		case <-t.C:
			p.allocate()
		}
	}
}

// Unsubscribe stops forwarding track id.
func (p *Participant) Unsubscribe(id string) {
	p.mu.Lock()
	sb, ok := p.subs[id]
	if ok {
		delete(p.subs, id)
		_ = p.sub.pc.RemoveTrack(sb.sender)
	}
	p.mu.Unlock()
	if !ok {
		return
	}
	p.room.detachDown(sb.d)
	p.negotiate(false)
}

// trackGone drops a subscription whose track ended.
func (p *Participant) trackGone(d *downTrack) {
	p.mu.Lock()
	found := false
	for id, sb := range p.subs {
		if sb.d == d {
			delete(p.subs, id)
			_ = p.sub.pc.RemoveTrack(sb.sender)
			found = true
		}
	}
	p.mu.Unlock()
	if found {
		p.negotiate(false)
	}
}

// Subscriptions returns the ids of the tracks forwarded to the participant.
func (p *Participant) Subscriptions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.subs))
}

// SetQuality sets the highest quality the participant can use of video
// track id (from the size it shows it at); QualityOff stops its video
// without renegotiating.
func (p *Participant) SetQuality(id string, q Quality) error {
	p.mu.Lock()
	sb, ok := p.subs[id]
	if ok {
		sb.want = q
	}
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q is not subscribed", ErrUnknownTrack, id)
	}
	p.allocate()
	return nil
}

func (p *Participant) gccStats() map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sub == nil || p.sub.bwe == nil {
		return nil
	}
	return p.sub.bwe.GetStats()
}

// Estimate returns the subscribe connection's bandwidth estimate (GCC),
// in bit/s; 0 before the connection exists.
func (p *Participant) Estimate() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sub == nil || p.sub.bwe == nil {
		return 0
	}
	return p.sub.bwe.GetTargetBitrate()
}

// allocate splits the subscribe connection's estimate between the
// subscribed video tracks (see allocate) and updates the layers' demand.
func (p *Participant) allocate() {
	p.mu.Lock()
	if p.closed || p.sub == nil {
		p.mu.Unlock()
		return
	}
	budget := uint64(max(p.sub.bwe.GetTargetBitrate(), 0))
	estimate := budget
	nowNS := p.s.now().UnixNano()
	ids := slices.Sorted(maps.Keys(p.subs))
	var items []allocTrack
	var downs []*downTrack
	var subs []*subscribed
	var rids [][]string
	for _, id := range ids {
		sb := p.subs[id]
		layers := *sb.d.t.layers.Load()
		if sb.d.kind == webrtc.RTPCodecTypeAudio {
			var rate uint64 = 40_000
			if len(layers) > 0 {
				rate = max(layers[0].bitrate.Load(), 0)
			}
			budget -= min(budget, rate)
			continue
		}
		it := allocTrack{want: sb.want, cur: -1}
		cur, _ := sb.d.wanted()
		curRID := ""
		if cur != nil {
			curRID = cur.rid
		}
		states := make([]layerState, 0, len(layers))
		for _, l := range layers {
			states = append(states, layerState{rid: l.rid, flowing: l.flowing(nowNS), rate: l.bitrate.Load()})
		}
		names, rates, curIdx := offerLayers(states, curRID, p.room.demandOf(sb.d.t))
		it.rates, it.cur = rates, curIdx
		if curIdx < 0 && rankOf(curRID) >= 0 {
			p.log.Debug("forwarded layer stopped: moving to one that flows", "track", sb.d.t.id, "rid", curRID, "offered", names)
		}
		if len(it.rates) == 0 { // no simulcast, or not received yet
			it.rates = []uint64{nominalRate[QualityMedium]}
			names = []string{""}
			if len(layers) == 1 && layers[0].bitrate.Load() > 0 {
				it.rates[0] = layers[0].bitrate.Load()
			}
			if cur != nil {
				it.cur = 0
			}
		}
		items = append(items, it)
		downs = append(downs, sb.d)
		rids = append(rids, names)
		subs = append(subs, sb)
	}
	now := p.s.now()
	congested := congestedBWE(p.sub.bwe.GetStats())
	probe := now.Sub(p.lastProbe) >= riseHold
	out, probed := allocateProbing(budget, items, p.s.p.Layers, congested, probe)
	for i, sb := range subs {
		out[i] = holdLayer(sb, out[i], rids[i], now)
	}
	if probed >= 0 && out[probed] > items[probed].cur {
		p.lastProbe = now
	}
	p.mu.Unlock()
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		var got []string
		for i, d := range downs {
			got = append(got, fmt.Sprintf("%s:%d/%d", d.t.id, out[i], items[i].want))
		}
		key := strings.Join(got, " ")
		p.mu.Lock()
		changed := key != p.lastAlloc
		p.lastAlloc = key
		p.mu.Unlock()
		if changed {
			p.log.Debug("layers allocated", "estimate", estimate, "video_budget", budget, "tracks", key, "gcc", p.gccStats())
		}
	}
	for i, d := range downs {
		if out[i] < 0 {
			d.setAlloc("", true, now)
		} else {
			d.setAlloc(rids[i][out[i]], false, now)
		}
		p.room.updateDemand(d.t)
	}
}

// congestedBWE reads a GCC estimator's state: congestion is overuse of
// the link's delay, a decrease, or more than 5% loss.
func congestedBWE(st map[string]any) bool {
	if u, _ := st["usage"].(string); u == "overuse" {
		return true
	}
	if s, _ := st["state"].(string); s == "decrease" {
		return true
	}
	loss, _ := st["averageLoss"].(float64)
	return loss > 0.05
}

// Layer changes the estimate alone asks for are held back: a rise comes
// at least riseHold after the last change, a drop at least dropHold
// after it. Every switch waits for a keyframe, so an estimate that swings
// would otherwise freeze the picture again and again. A change of the
// tile's size is followed at once.
const (
	riseHold = 3 * time.Second
	dropHold = time.Second
)

// holdLayer applies the hold to the allocator's choice next (an index
// into rids, the layers offered now; -1 for none) and records the
// result. The hold remembers a layer by its rank (q, h, f), not by its
// index: when the publisher's browser drops or pauses a layer the
// indexes shift, and a remembered index would name another layer. A
// held layer that is no longer offered is not held: the allocator's
// choice is taken at once. Called with p.mu held.
func holdLayer(sb *subscribed, next int, rids []string, now time.Time) int {
	rank := func(i int) int {
		if i < 0 || i >= len(rids) {
			return -1
		}
		if r := rankOf(rids[i]); r >= 0 {
			return r
		}
		return i // not a call layer (no simulcast): its index
	}
	nextRank := rank(next)
	if sb.last != -2 && sb.want == sb.lastWant && next >= 0 && sb.last >= 0 {
		since := now.Sub(sb.lastAt)
		if (nextRank > sb.last && since < riseHold) || (nextRank < sb.last && since < dropHold) {
			for i := range rids {
				if rank(i) == sb.last {
					return i
				}
			}
		}
	}
	if nextRank != sb.last {
		sb.last, sb.lastAt = nextRank, now
	}
	sb.lastWant = sb.want
	return next
}

// negotiate makes a new offer on the subscribe connection, or marks one
// due when an offer is out. restart asks for an ICE restart.
func (p *Participant) negotiate(restart bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.sub == nil {
		return
	}
	p.restart = p.restart || restart
	if p.negotiating {
		p.needed = true
		return
	}
	p.negotiating, p.needed = true, false
	ss, ice := p.sub, p.restart
	p.restart = false
	p.s.goFunc(func() { p.offer(ss, ice) })
}

// offer sends an offer of the subscribe connection once its candidates
// are gathered.
func (p *Participant) offer(ss *session, iceRestart bool) {
	fail := func(err error) {
		p.log.Warn("subscribe offer failed", "err", err)
		p.end("subscribe offer: "+err.Error(), true)
	}
	o, err := ss.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: iceRestart})
	if err != nil {
		fail(err)
		return
	}
	gathered := webrtc.GatheringCompletePromise(ss.pc)
	if err := ss.pc.SetLocalDescription(o); err != nil {
		fail(err)
		return
	}
	t := time.NewTimer(p.s.p.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
	case <-ss.done:
		return
	}
	sdp := ss.pc.LocalDescription().SDP
	p.mu.Lock()
	p.lastOffer = sdp
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		p.p.OnOffer(sdp)
	}
}

// SubscribeAnswer applies the participant's answer to the last offer of
// its subscribe connection. A change made meanwhile gets a new offer.
func (p *Participant) SubscribeAnswer(answer string) error {
	p.mu.Lock()
	ss, waiting := p.sub, p.negotiating && p.lastOffer != ""
	p.mu.Unlock()
	if ss == nil || !waiting {
		return fmt.Errorf("%w: no offer is waiting for an answer", ErrNegotiation)
	}
	if err := ss.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: %v", ErrNegotiation, err)
	}
	p.mu.Lock()
	p.negotiating, p.lastOffer = false, ""
	again, ice := p.needed, p.restart
	p.mu.Unlock()
	if again || ice {
		p.negotiate(false)
	}
	return nil
}

// ResendOffer sends the subscribe connection's unanswered offer again (a
// participant that resumed on a new signalling connection may have lost
// it). It reports whether there was one.
func (p *Participant) ResendOffer() bool {
	p.mu.Lock()
	o := ""
	if p.negotiating {
		o = p.lastOffer
	}
	p.mu.Unlock()
	if o != "" {
		p.p.OnOffer(o)
	}
	return o != ""
}

// RestartICE renegotiates the subscribe connection with fresh ICE
// credentials (after a network change). The publish connection restarts
// when the participant offers with new credentials.
func (p *Participant) RestartICE() { p.negotiate(true) }

// PeerTarget names one of a participant's peer connections.
type PeerTarget string

// Peer connections of a participant.
const (
	TargetPublish   PeerTarget = "publish"
	TargetSubscribe PeerTarget = "subscribe"
)

// session returns one of the participant's sessions (nil before it exists).
func (p *Participant) session(target PeerTarget) *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	if target == TargetSubscribe {
		return p.sub
	}
	return p.pub
}

// AddICECandidate adds a trickled candidate of the participant's to one of
// its connections.
func (p *Participant) AddICECandidate(target PeerTarget, c webrtc.ICECandidateInit) error {
	ss := p.session(target)
	if ss == nil {
		return fmt.Errorf("%w: no %s connection", ErrBadTrickle, target)
	}
	if err := ss.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadTrickle, err)
	}
	return nil
}

// State returns the state of one of the participant's connections
// (PeerConnectionStateNew before it exists).
func (p *Participant) State(target PeerTarget) webrtc.PeerConnectionState {
	ss := p.session(target)
	if ss == nil {
		return webrtc.PeerConnectionStateNew
	}
	return ss.pc.ConnectionState()
}

// Close ends the participant: its tracks end for every subscriber, its
// subscriptions and connections close. OnClosed is not called.
func (p *Participant) Close() { p.end("left", false) }

func (p *Participant) end(reason string, notify bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	pub, sub := p.pub, p.sub
	published := slices.Sorted(maps.Keys(p.published))
	p.published = map[string]CallTrack{}
	subs := p.subs
	p.subs = map[string]*subscribed{}
	p.mu.Unlock()
	for _, id := range published {
		p.room.removeTrack(id)
	}
	for _, sb := range subs {
		p.room.detachDown(sb.d)
	}
	if pub != nil {
		pub.close(reason)
	}
	if sub != nil {
		sub.close(reason)
	}
	p.release()
	close(p.done)
	p.log.Info("participant closed", "reason", reason)
	if notify && p.p.OnClosed != nil {
		p.p.OnClosed(reason)
	}
}
