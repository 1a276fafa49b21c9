package sfu

import (
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/media"
)

// RoomKind says what a room is for.
type RoomKind int

const (
	// RoomKindBroadcast has exactly one publisher sending H.264
	// (packetization-mode=1) and/or Opus, at most one track of each kind;
	// video may be simulcast. Its tracks are named "video" and "audio" and
	// survive publisher reconnects.
	RoomKindBroadcast RoomKind = iota + 1
	// RoomKindCall has any number of publishers; VP8 is allowed too.
	RoomKindCall
)

func (k RoomKind) String() string {
	switch k {
	case RoomKindBroadcast:
		return "broadcast"
	case RoomKindCall:
		return "call"
	}
	return "unknown"
}

// TrackInfo describes one received RTP stream: a track, or one simulcast
// layer (RID) of it.
type TrackInfo struct {
	Room        string
	ID          string // track id in the room: "video"/"audio" in broadcasts
	PublisherID string // the publisher's session id
	Kind        media.Kind
	MimeType    string // e.g. "video/H264", "audio/opus"
	RID         string // simulcast layer, "" when not simulcast
	SSRC        uint32
	ClockRate   uint32
	Channels    uint16
	PayloadType uint8
	Fmtp        string
}

// PublisherEvent tells a Tap that a publisher joined or left a room.
type PublisherEvent struct {
	Room        string
	PublisherID string
	Joined      bool // false: left (DELETE, ICE failure, server close)
	Time        time.Time
}

// Tap receives a room's media in-process, without WebRTC.
//
// Contract: OnRTP and OnSenderReport are called from the read goroutine of
// the layer concerned, in arrival order (after NACK repair), and block
// forwarding to subscribers while they run: copy what you need and return
// quickly. The packet and its buffers are reused after OnRTP returns.
// OnTrack, OnTrackEnded and OnPublisherChange are called with the room's
// lock held. No callback may call methods of the Room (or the remove
// function of AddTap) synchronously.
//
// For each layer, OnTrack comes before its first OnRTP/OnSenderReport and
// OnTrackEnded after its last.
type Tap interface {
	OnTrack(t TrackInfo)
	OnRTP(t TrackInfo, pkt *rtp.Packet)
	OnSenderReport(t TrackInfo, sr *rtcp.SenderReport)
	OnTrackEnded(t TrackInfo)
	OnPublisherChange(ev PublisherEvent)
}

type tapEntry struct{ tap Tap }

// Room is a named set of participants: publishers, whose tracks are
// published in the room, and subscribers, to which the room forwards them.
type Room struct {
	s    *Server
	name string
	kind RoomKind
	log  *slog.Logger
	done chan struct{}

	mu          sync.Mutex
	closed      bool
	publishers  map[string]*session
	subscribers map[string]*session
	tracks      map[string]*publishedTrack
	holds       int // publishers being set up; they keep the room open
	idle        *time.Timer
	taps        atomic.Pointer[[]*tapEntry] // written with mu held

	speakerMu  sync.Mutex
	speaker    *speakerDetector
	speakerCbs []func(participantID string)

	demandMu  sync.Mutex
	demandCbs []func(trackID string, q Quality)
}

func newRoom(s *Server, name string, kind RoomKind) *Room {
	r := &Room{
		s:           s,
		name:        name,
		kind:        kind,
		log:         s.log.With("room", name),
		done:        make(chan struct{}),
		publishers:  make(map[string]*session),
		subscribers: make(map[string]*session),
		tracks:      make(map[string]*publishedTrack),
		speaker:     newSpeakerDetector(s.p.Speaker),
	}
	r.taps.Store(&[]*tapEntry{})
	return r
}

// Name returns the room's name (the stream name of a broadcast).
func (r *Room) Name() string { return r.name }

// Kind returns the room's kind.
func (r *Room) Kind() RoomKind { return r.kind }

// Done is closed when the room closes.
func (r *Room) Done() <-chan struct{} { return r.done }

// Live reports whether the room has a publisher.
func (r *Room) Live() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.publishers) > 0 && !r.closed
}

// Publishers returns the session ids of the room's publishers.
func (r *Room) Publishers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.publishers))
}

// Subscribers returns the session ids of the room's subscribers.
func (r *Room) Subscribers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.subscribers))
}

// Tracks returns the layers being received now.
func (r *Room) Tracks() []TrackInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []TrackInfo
	for _, t := range r.sortedTracks() {
		for _, l := range *t.layers.Load() {
			out = append(out, l.info)
		}
	}
	return out
}

func (r *Room) sortedTracks() []*publishedTrack {
	ts := make([]*publishedTrack, 0, len(r.tracks))
	for _, t := range r.tracks {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].id < ts[j].id })
	return ts
}

// AddTap makes t receive the room's media from now on: OnTrack is called at
// once for every layer already being received. The returned function removes
// the tap; it must not be called from inside a Tap callback.
func (r *Room) AddTap(t Tap) (remove func()) {
	e := &tapEntry{tap: t}
	r.mu.Lock()
	for _, tr := range r.sortedTracks() {
		for _, l := range *tr.layers.Load() {
			t.OnTrack(l.info)
		}
	}
	old := *r.taps.Load()
	taps := append(append(make([]*tapEntry, 0, len(old)+1), old...), e)
	r.taps.Store(&taps)
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			taps := slices.DeleteFunc(slices.Clone(*r.taps.Load()), func(x *tapEntry) bool { return x == e })
			r.taps.Store(&taps)
		})
	}
}

// RequestKeyframe asks the publisher of track trackID for a keyframe on
// layer rid ("" for a track without simulcast, or for every layer). Requests
// are rate-limited per layer.
func (r *Room) RequestKeyframe(trackID, rid string) {
	r.mu.Lock()
	t := r.tracks[trackID]
	r.mu.Unlock()
	if t == nil {
		return
	}
	now := r.s.now().UnixNano()
	for _, l := range *t.layers.Load() {
		if rid == "" || l.rid == rid {
			l.requestKeyframe(now, reasonTap)
		}
	}
}

// SetLayer pins the simulcast layer (rid) forwarded to subscriber
// subscriberID (a WHEP session id) for track trackID ("" for every video
// track). rid "" returns to automatic selection. The subscriber keeps
// receiving its current layer until the new one's next keyframe.
func (r *Room) SetLayer(subscriberID, trackID, rid string) error {
	r.mu.Lock()
	ss := r.subscribers[subscriberID]
	r.mu.Unlock()
	if ss == nil {
		return ErrNotLive
	}
	found := false
	for _, d := range ss.downs {
		if (trackID == "" && d.kind == webrtc.RTPCodecTypeVideo) || d.t.id == trackID {
			found = true
			if err := d.setPinned(rid, r.s.now()); err != nil {
				return err
			}
		}
	}
	if !found {
		return ErrUnknownLayer
	}
	return nil
}

// OnDominantSpeaker registers f to be called with a publisher's session id
// when it becomes the room's dominant speaker ("" when the dominant speaker
// left). f is called from a media read goroutine and must return quickly.
func (r *Room) OnDominantSpeaker(f func(participantID string)) {
	r.speakerMu.Lock()
	defer r.speakerMu.Unlock()
	r.speakerCbs = append(r.speakerCbs, f)
}

// DominantSpeaker returns the current dominant speaker's session id.
func (r *Room) DominantSpeaker() string {
	r.speakerMu.Lock()
	defer r.speakerMu.Unlock()
	return r.speaker.dominant
}

// SpeakerLevels returns each publisher's smoothed loudness now (0 for
// silence, up to 127), by participant id (session id for WHIP), and the
// threshold above which it counts as speaking.
func (r *Room) SpeakerLevels() (levels map[string]float64, threshold float64) {
	r.speakerMu.Lock()
	defer r.speakerMu.Unlock()
	return r.speaker.levels(r.s.now()), r.speaker.p.Threshold
}

func (r *Room) observeLevel(participant string, level uint8, now time.Time) {
	r.speakerMu.Lock()
	dom, changed := r.speaker.observe(participant, level, now)
	var cbs []func(string)
	if changed {
		cbs = r.speakerCbs
	}
	r.speakerMu.Unlock()
	for _, f := range cbs {
		f(dom)
	}
}

func (r *Room) forgetSpeaker(participant string) {
	r.speakerMu.Lock()
	dom, changed := r.speaker.remove(participant)
	var cbs []func(string)
	if changed {
		cbs = r.speakerCbs
	}
	r.speakerMu.Unlock()
	for _, f := range cbs {
		f(dom)
	}
}

// OnLayerDemand registers f to be called when the highest simulcast layer
// any subscriber of a call track forwards or waits for changes (dynacast:
// the publisher can pause the layers above it). The lowest layer is always
// in demand, so that a new subscriber starts at once. f must return
// quickly; it may be called from media and RTCP goroutines.
func (r *Room) OnLayerDemand(f func(trackID string, q Quality)) {
	r.demandMu.Lock()
	defer r.demandMu.Unlock()
	r.demandCbs = append(r.demandCbs, f)
}

// updateDemand recomputes the layer demand of a call track and reports a
// change.
func (r *Room) updateDemand(t *publishedTrack) {
	if t.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	q := QualityLow
	for _, d := range *t.downs.Load() {
		cur, target := d.wanted()
		for _, l := range []*layer{cur, target} {
			if l != nil {
				q = max(q, Quality(rankOf(l.rid)))
			}
		}
	}
	r.demandMu.Lock()
	changed := t.demand != q
	t.demand = q
	cbs := r.demandCbs
	r.demandMu.Unlock()
	if changed {
		for _, f := range cbs {
			f(t.id, q)
		}
	}
}

// demandOf returns the highest layer of t in demand.
func (r *Room) demandOf(t *publishedTrack) Quality {
	r.demandMu.Lock()
	defer r.demandMu.Unlock()
	return t.demand
}

// callTrack returns a call track by id.
func (r *Room) callTrack(id string) (*publishedTrack, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tracks[id]
	return t, ok && r.kind == RoomKindCall
}

// attachDown starts forwarding t to a call subscriber's down track.
func (r *Room) attachDown(d *downTrack, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.tracks[d.t.id] != d.t {
		return ErrUnknownTrack
	}
	d.t.addDown(d)
	d.reselect(now, true)
	return nil
}

// detachDown stops forwarding to d.
func (r *Room) detachDown(d *downTrack) {
	r.mu.Lock()
	d.t.removeDown(d)
	r.mu.Unlock()
	r.updateDemand(d.t)
}

// removeTrack ends a call track: it is forgotten, and its subscribers'
// participants drop it (their connections renegotiate without it).
func (r *Room) removeTrack(id string) {
	r.mu.Lock()
	t, ok := r.tracks[id]
	if !ok {
		r.mu.Unlock()
		return
	}
	delete(r.tracks, id)
	downs := *t.downs.Load()
	t.downs.Store(&[]*downTrack{})
	r.mu.Unlock()
	for _, d := range downs {
		if p := d.sub.part; p != nil {
			p.trackGone(d)
		}
	}
}

// touch starts the idle timer when the room has no publisher and stops it
// when it has one. Called with r.mu not held.
func (r *Room) touch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.touchLocked()
}

func (r *Room) touchLocked() {
	if r.closed {
		return
	}
	if len(r.publishers) > 0 || r.holds > 0 {
		if r.idle != nil {
			r.idle.Stop()
			r.idle = nil
		}
		return
	}
	if r.idle != nil {
		return
	}
	r.idle = time.AfterFunc(r.s.p.RoomIdleTimeout, func() {
		if !r.s.goTrack() {
			return
		}
		defer r.s.wg.Done()
		r.mu.Lock()
		idle := len(r.publishers) == 0 && r.holds == 0
		if !idle {
			r.idle = nil
		}
		r.mu.Unlock()
		if idle {
			r.log.Info("room idle, closing")
			r.close()
		}
	})
}

// close ends the room: its sessions are closed and it is removed from the
// server.
func (r *Room) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	if r.idle != nil {
		r.idle.Stop()
		r.idle = nil
	}
	var sessions []*session
	for _, ss := range r.publishers {
		sessions = append(sessions, ss)
	}
	for _, ss := range r.subscribers {
		sessions = append(sessions, ss)
	}
	r.mu.Unlock()
	r.s.removeRoom(r)
	for _, ss := range sessions {
		ss.close("room closed")
	}
	close(r.done)
}

// hold keeps the room open while a publisher is being set up. It fails if
// the room is closed; release must be called once.
func (r *Room) hold() (release func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false
	}
	r.holds++
	r.touchLocked()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.holds--
			r.touchLocked()
		})
	}, true
}

// addPublisher registers a publisher session, enforcing the room's kind.
// replaceStalePublishers closes the room's publishers whose peer
// connection is not connected (never was, or ICE is disconnected or
// failed), so that a new publisher can take their place. It fails with
// ErrStreamBusy when a publisher is connected.
func (r *Room) replaceStalePublishers() error {
	r.mu.Lock()
	var stale []*session
	for _, ss := range r.publishers {
		if ss.pc != nil && ss.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
			r.mu.Unlock()
			return ErrStreamBusy
		}
		stale = append(stale, ss)
	}
	r.mu.Unlock()
	for _, ss := range stale {
		ss.log.Info("publisher replaced: its peer connection is not connected")
		ss.close("replaced by a new publisher")
	}
	return nil
}

func (r *Room) addPublisher(ss *session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.kind == RoomKindBroadcast && len(r.publishers) > 0 {
		return ErrStreamBusy
	}
	r.publishers[ss.id] = ss
	r.touchLocked()
	ev := PublisherEvent{Room: r.name, PublisherID: ss.id, Joined: true, Time: r.s.now()}
	for _, e := range *r.taps.Load() {
		e.tap.OnPublisherChange(ev)
	}
	return nil
}

func (r *Room) removePublisher(ss *session) {
	r.mu.Lock()
	if r.publishers[ss.id] != ss {
		r.mu.Unlock()
		return
	}
	delete(r.publishers, ss.id)
	ev := PublisherEvent{Room: r.name, PublisherID: ss.id, Joined: false, Time: r.s.now()}
	for _, e := range *r.taps.Load() {
		e.tap.OnPublisherChange(ev)
	}
	r.touchLocked()
	r.mu.Unlock()
	r.forgetSpeaker(ss.speakerID())
}

// addSubscriber registers a subscriber session and attaches its down
// tracks to the room's tracks.
func (r *Room) addSubscriber(ss *session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.subscribers[ss.id] = ss
	now := r.s.now()
	for _, d := range ss.downs {
		d.t.addDown(d)
		d.reselect(now, true)
	}
	return nil
}

func (r *Room) removeSubscriber(ss *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subscribers[ss.id] != ss {
		return
	}
	delete(r.subscribers, ss.id)
	for _, d := range ss.downs {
		d.t.removeDown(d)
	}
}

// track returns the track with this id, creating it if needed. The codec
// of an existing track is kept (subscribers are bound to it).
func (r *Room) track(id string, kind webrtc.RTPCodecType, codec webrtc.RTPCodecParameters) *publishedTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tracks[id]; ok && t.kind == kind {
		return t
	}
	t := newPublishedTrack(r, id, kind, codec)
	r.tracks[id] = t
	return t
}

// liveTracks returns the tracks a new subscriber gets, or ErrNotLive.
func (r *Room) liveTracks() ([]*publishedTrack, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.publishers) == 0 || len(r.tracks) == 0 {
		return nil, ErrNotLive
	}
	return r.sortedTracks(), nil
}

// addLayer makes a newly received layer visible to taps and subscribers.
func (r *Room) addLayer(l *layer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := l.t
	old := *t.layers.Load()
	layers := make([]*layer, 0, len(old)+1)
	for _, x := range old {
		if x.rid != l.rid { // a reconnecting publisher replaces its layers
			layers = append(layers, x)
		}
	}
	layers = append(layers, l)
	t.layers.Store(&layers)
	for _, e := range *r.taps.Load() {
		e.tap.OnTrack(l.info)
	}
	now := r.s.now()
	for _, d := range *t.downs.Load() {
		d.reselect(now, false)
	}
}

func (r *Room) removeLayer(l *layer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := l.t
	layers := slices.DeleteFunc(slices.Clone(*t.layers.Load()), func(x *layer) bool { return x == l })
	t.layers.Store(&layers)
	for _, e := range *r.taps.Load() {
		e.tap.OnTrackEnded(l.info)
	}
	now := r.s.now()
	for _, d := range *t.downs.Load() {
		d.reselect(now, false)
	}
}
