package call

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/sfu"
)

// room is a call or a voice channel: its members, who knocks, its host
// and its chat. Its lock is never held while calling into the SFU.
type room struct {
	s    *Server
	name string // the SFU room's name
	kind string

	mu       sync.Mutex
	dead     bool // emptied and forgotten: joins must find a new room
	members  map[string]*member
	order    []string // member ids in join order (host succession)
	knocking map[string]*member
	host     string
	locked   bool
	chat     []ChatLine
	used     map[string]time.Time // invite nonces used, until their expiry
	hooked   bool                 // SFU callbacks registered
	epoch    int                  // members that left: E2EE rooms ratchet once each
}

// member is a participant, or someone knocking (part == nil).
type member struct {
	id, name, token string
	addr            netip.Addr
	conn            *conn // nil while it is away (waiting to resume)
	part            *sfu.Participant
	tracks          map[string]*pubTrack // by SFU track id
	micMuted        bool
	camMuted        bool
	lost            *time.Timer
	ticket          string // the invite's nonce it joined with, if any (ring calls)
	// later holds the tile quality asked for tracks whose subscription
	// waits for the address's cap (subscribeLater); room lock.
	later map[string]sfu.Quality
}

type pubTrack struct {
	mid  string
	info TrackInfo
}

// newRoom opens a room with its stored chat history.
func newRoom(s *Server, name, kind string, chat []ChatLine) *room {
	return &room{
		s: s, name: name, kind: kind, chat: chat,
		members: map[string]*member{}, knocking: map[string]*member{}, used: map[string]time.Time{},
	}
}

func (m *member) public(host bool) Member {
	out := Member{ID: m.id, Name: m.name, Host: host, MicMuted: m.micMuted, CameraMuted: m.camMuted, Tracks: []TrackInfo{}}
	for _, id := range slices.Sorted(maps.Keys(m.tracks)) {
		out.Tracks = append(out.Tracks, m.tracks[id].info)
	}
	return out
}

func (r *room) membersLocked() []Member {
	out := make([]Member, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.members[id].public(id == r.host))
	}
	return out
}

// sendLocked queues a message to m (dropped while m is away).
func (r *room) sendLocked(m *member, o Out) {
	if m.conn != nil {
		m.conn.send(o)
	}
}

// broadcastLocked queues a message to every member but except.
func (r *room) broadcastLocked(o Out, except string) {
	for _, id := range r.order {
		if id != except {
			r.sendLocked(r.members[id], o)
		}
	}
}

func (r *room) cap() int {
	if r.kind == KindVoice {
		return r.s.lim.Voice
	}
	return r.s.lim.Participants
}

// join handles a join message: the member is let in, or knocks. It
// reports false when the room died meanwhile (the caller finds a new one).
func (r *room) join(c *conn, msg Msg) bool {
	now := r.s.now()
	name := strings.TrimSpace(msg.Name)
	if name == "" {
		name = "Guest"
	}
	m := &member{id: idFor(), name: name, token: rand.Text(), addr: c.addr, conn: c, tracks: map[string]*pubTrack{}, micMuted: true, camMuted: true}
	r.mu.Lock()
	if r.dead {
		r.mu.Unlock()
		return false
	}
	refuse := func(code, msg string) bool {
		r.mu.Unlock()
		r.s.m.refused.WithLabelValues(code).Inc()
		c.closeWith(code, msg)
		r.maybeForget()
		return true
	}
	if r.kind == KindCall && r.locked {
		return refuse(CodeLocked, "the host has locked this call")
	}
	if len(r.members) >= r.cap() {
		return refuse(CodeRoomFull, "the room is full")
	}
	admit := r.kind == KindVoice || len(r.members) == 0
	if msg.Invite != "" && r.kind == KindCall {
		nonce, exp, err := checkInvite(r.s.p.Secret, r.name, msg.Invite, now)
		if err != nil {
			return refuse(CodeInvite, err.Error())
		}
		for n, e := range r.used {
			if !now.Before(e) {
				delete(r.used, n)
			}
		}
		if _, ok := r.used[nonce]; ok {
			return refuse(CodeInviteUsed, "this invite has been used")
		}
		r.used[nonce] = exp
		admit = true
		m.ticket = nonce
	}
	c.member = m
	if !admit {
		if len(r.knocking) >= r.s.lim.Waiting {
			return refuse(CodeWaitingFull, "too many people are waiting")
		}
		r.knocking[m.id] = m
		r.sendLocked(m, Out{Type: TypeWaiting, Participant: m.id})
		pm := m.public(false)
		if h := r.members[r.host]; h != nil {
			r.sendLocked(h, Out{Type: TypeKnock, Member: &pm})
		}
		r.mu.Unlock()
		r.s.m.knocks.Inc()
		return true
	}
	r.mu.Unlock()
	r.admit(m)
	return true
}

// admit makes m a participant and welcomes it.
func (r *room) admit(m *member) {
	part, err := r.s.p.SFU.Join(sfu.ParticipantParams{
		Room: r.name, ID: m.id, Addr: m.addr,
		OnOffer: func(sdp string) {
			r.mu.Lock()
			r.sendLocked(m, Out{Type: TypeOffer, SDP: sdp})
			r.mu.Unlock()
		},
		OnClosed: func(reason string) { r.drop(m, CodeMedia, "media connection ended: "+reason) },
	})
	if err != nil {
		r.s.log.Warn("call join failed", "room", r.name, "err", err)
		r.mu.Lock()
		c := m.conn
		r.mu.Unlock()
		if c != nil {
			c.closeWith(CodeServerFull, "cannot open the room: "+err.Error())
		}
		return
	}
	r.mu.Lock()
	if r.dead || m.conn == nil {
		r.mu.Unlock()
		part.Close()
		return
	}
	m.part = part
	r.members[m.id] = m
	r.order = append(r.order, m.id)
	if r.kind == KindCall && r.host == "" {
		r.host = m.id
	}
	hook := !r.hooked
	r.hooked = true
	pm := m.public(m.id == r.host)
	r.broadcastLocked(Out{Type: TypeJoined, Member: &pm}, m.id)
	r.sendLocked(m, r.welcomeLocked(m, false))
	if m.id == r.host {
		for _, id := range slices.Sorted(maps.Keys(r.knocking)) {
			k := r.knocking[id].public(false)
			r.sendLocked(m, Out{Type: TypeKnock, Member: &k})
		}
	}
	r.mu.Unlock()
	r.s.m.participants.Inc()
	if r.kind == KindCall {
		r.s.ringMember(r.name, m.ticket, m.id, memberJoined)
	}
	if hook {
		r.hook(part.Room())
	}
}

func (r *room) welcomeLocked(m *member, resumed bool) Out {
	return Out{
		Type: TypeWelcome, Participant: m.id, Token: m.token, Kind: r.kind, Host: m.id == r.host,
		Locked: r.locked, Resumed: resumed, Members: r.membersLocked(), Chat: slices.Clone(r.chat), Epoch: r.epoch,
		ICEServers: r.s.p.ICEServers,
	}
}

// hook registers the room's SFU callbacks and starts its level loop.
func (r *room) hook(sr *sfu.Room) {
	sr.OnDominantSpeaker(func(id string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.dead {
			r.broadcastLocked(Out{Type: TypeSpeaker, Dominant: id}, "")
		}
	})
	sr.OnLayerDemand(func(trackID string, q sfu.Quality) {
		r.mu.Lock()
		defer r.mu.Unlock()
		pid, _, _ := strings.Cut(trackID, "-")
		m := r.members[pid]
		if m == nil || m.tracks[trackID] == nil {
			return
		}
		var active []string
		for i := sfu.QualityLow; i <= q; i++ {
			active = append(active, sfu.RIDOf(i))
		}
		r.sendLocked(m, Out{Type: TypeLayers, Track: trackID, Mid: m.tracks[trackID].mid, Active: active})
	})
	r.s.wg.Add(1)
	go func() {
		defer r.s.wg.Done()
		r.levelLoop(sr)
	}()
}

// levelLoop sends the members' audio levels five times a second while
// anyone speaks (and once more when all fall silent).
func (r *room) levelLoop(sr *sfu.Room) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	quiet := true
	for {
		select {
		case <-r.s.done:
			return
		case <-t.C:
		}
		levels, th := sr.SpeakerLevels()
		out := map[string]float64{}
		for id, l := range levels {
			if l > th {
				// Map speech loudness (threshold … 110) onto 0.2 … 1.
				out[id] = math.Round(100*min(1, 0.2+0.8*(l-th)/max(1, 110-th))) / 100
			}
		}
		r.mu.Lock()
		if r.dead {
			r.mu.Unlock()
			return
		}
		if len(out) > 0 || !quiet {
			r.broadcastLocked(Out{Type: TypeLevels, Levels: out}, "")
		}
		r.mu.Unlock()
		quiet = len(out) == 0
	}
}

// resume rebinds a member that lost its connection to c.
func (r *room) resume(c *conn, msg Msg) {
	r.mu.Lock()
	m := r.members[msg.Participant]
	if m == nil || subtle.ConstantTimeCompare([]byte(m.token), []byte(msg.Token)) != 1 {
		r.mu.Unlock()
		r.s.m.refused.WithLabelValues(CodeUnknown).Inc()
		c.closeWith(CodeUnknown, "no such participant here (it left or timed out): join again")
		r.maybeForget()
		return
	}
	old := m.conn
	m.conn = c
	c.member = m
	if m.lost != nil {
		m.lost.Stop()
		m.lost = nil
	}
	r.sendLocked(m, r.welcomeLocked(m, true))
	r.mu.Unlock()
	r.s.m.resumes.Inc()
	if r.kind == KindCall {
		r.s.ringMember(r.name, "", m.id, memberBack)
	}
	if old != nil {
		old.closeWith(CodeReplaced, "resumed on another connection")
	}
	m.part.ResendOffer()
	if m.part.State(sfu.TargetSubscribe) != webrtc.PeerConnectionStateConnected {
		m.part.RestartICE() // media did not ride out the blip: fresh ICE
	}
}

// lost is called when c, m's connection, ended without a leave: m keeps
// its place for the resume window.
func (r *room) lost(m *member, c *conn) {
	r.mu.Lock()
	if m.conn != c {
		r.mu.Unlock()
		return
	}
	m.conn = nil
	if r.knocking[m.id] == m {
		delete(r.knocking, m.id)
		if h := r.members[r.host]; h != nil {
			r.sendLocked(h, Out{Type: TypeKnockEnd, Participant: m.id, Reason: "left"})
		}
		r.mu.Unlock()
		r.maybeForget()
		return
	}
	if r.members[m.id] != m {
		r.mu.Unlock()
		return
	}
	m.lost = time.AfterFunc(r.s.lim.ResumeWindow, func() {
		r.mu.Lock()
		away := m.conn == nil && r.members[m.id] == m
		r.mu.Unlock()
		if away {
			r.drop(m, CodeTimeout, "did not resume in time")
		}
	})
	r.mu.Unlock()
	if r.kind == KindCall {
		r.s.ringMember(r.name, "", m.id, memberLost)
	}
}

// drop removes a member: its media ends everywhere and the others see it
// leave. A knocking member is just turned away.
func (r *room) drop(m *member, code, reason string) {
	r.mu.Lock()
	if r.knocking[m.id] == m {
		delete(r.knocking, m.id)
		c := m.conn
		r.mu.Unlock()
		if c != nil {
			c.closeWith(code, reason)
		}
		r.maybeForget()
		return
	}
	if r.members[m.id] != m {
		r.mu.Unlock()
		return
	}
	delete(r.members, m.id)
	r.order = slices.DeleteFunc(r.order, func(id string) bool { return id == m.id })
	if m.lost != nil {
		m.lost.Stop()
	}
	c := m.conn
	m.conn = nil
	r.epoch++
	r.broadcastLocked(Out{Type: TypeLeft, Participant: m.id, Reason: code, Epoch: r.epoch}, "")
	var promote *member
	if r.host == m.id {
		r.host = ""
		if len(r.order) > 0 {
			r.host = r.order[0]
			h := r.members[r.host].public(true)
			r.broadcastLocked(Out{Type: TypeHostChanged, Member: &h}, "")
			for _, id := range slices.Sorted(maps.Keys(r.knocking)) {
				k := r.knocking[id].public(false)
				r.sendLocked(r.members[r.host], Out{Type: TypeKnock, Member: &k})
			}
		} else if len(r.knocking) > 0 {
			// Nobody left inside: the first at the door gets the room.
			id := slices.Sorted(maps.Keys(r.knocking))[0]
			promote = r.knocking[id]
			delete(r.knocking, id)
		}
	}
	r.mu.Unlock()
	r.s.m.participants.Dec()
	if r.kind == KindCall {
		r.s.ringMember(r.name, "", m.id, memberGone)
	}
	m.part.Close()
	if c != nil {
		c.closeWith(code, reason)
	}
	if promote != nil {
		r.admit(promote)
	}
	r.maybeForget()
}

// maybeForget retires the room once nobody is in or at the door.
func (r *room) maybeForget() {
	r.mu.Lock()
	empty := !r.dead && len(r.members) == 0 && len(r.knocking) == 0
	if empty {
		r.dead = true
	}
	r.mu.Unlock()
	if empty {
		r.s.forget(r)
	}
}

// closeAll ends every member (server shutdown).
func (r *room) closeAll(reason string) {
	r.mu.Lock()
	ms := slices.Collect(maps.Values(r.members))
	ks := slices.Collect(maps.Values(r.knocking))
	r.mu.Unlock()
	for _, m := range append(ms, ks...) {
		r.drop(m, CodeServerFull, reason)
	}
	r.maybeForget()
}

// handle runs one message of a member (a participant, or one knocking).
func (r *room) handle(ctx context.Context, m *member, msg Msg) {
	reply := func(o Out) {
		o.Ref = msg.Ref
		r.mu.Lock()
		r.sendLocked(m, o)
		r.mu.Unlock()
	}
	fail := func(code, text string) {
		r.s.m.refused.WithLabelValues(code).Inc()
		reply(Out{Type: TypeError, Code: code, Message: text})
	}
	switch msg.Type {
	case TypePing:
		reply(Out{Type: TypePong})
		return
	case TypeLeave:
		r.drop(m, "", "left")
		return
	}
	r.mu.Lock()
	joined := r.members[m.id] == m
	isHost := r.host == m.id
	r.mu.Unlock()
	if !joined {
		fail(CodeNotJoined, "wait to be let in")
		return
	}
	switch msg.Type {
	case TypePublish, TypeUnpublish:
		if r.kind == KindVoice && sfu.OfferSendsVideo(msg.SDP) {
			fail(CodeAudioOnly, "voice channels carry audio only")
			return
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := m.part.PublishOffer(pctx, msg.SDP)
		cancel()
		if err != nil {
			fail(CodeMedia, err.Error())
			return
		}
		r.mu.Lock()
		metas := map[string]TrackMeta{}
		for _, t := range msg.Tracks {
			metas[t.Mid] = t
		}
		for _, id := range res.Removed {
			delete(m.tracks, id)
		}
		for _, ct := range res.Added {
			m.tracks[ct.ID] = &pubTrack{mid: ct.Mid, info: TrackInfo{ID: ct.ID, Kind: string(ct.Kind)}}
		}
		for _, t := range m.tracks {
			meta, ok := metas[t.mid]
			if !ok {
				meta.Source = SourceMicrophone
				if t.info.Kind == string(media.KindVideo) {
					meta.Source = SourceCamera
				}
				meta.Muted = t.info.Muted
				meta.Width, meta.Height = t.info.Width, t.info.Height
			}
			t.info.Source, t.info.Muted, t.info.Width, t.info.Height = meta.Source, meta.Muted, meta.Width, meta.Height
		}
		m.micMuted, m.camMuted = true, true
		for _, t := range m.tracks {
			switch t.info.Source {
			case SourceMicrophone:
				m.micMuted = t.info.Muted
			case SourceCamera:
				m.camMuted = t.info.Muted
			}
		}
		pm := m.public(isHost)
		r.sendLocked(m, Out{Type: TypeAnswer, Ref: msg.Ref, SDP: res.Answer, Member: &pm, Tracks: pm.Tracks})
		r.broadcastLocked(Out{Type: TypeTracks, Participant: m.id, Member: &pm, Tracks: pm.Tracks}, m.id)
		r.mu.Unlock()
	case TypeAnswer:
		if err := m.part.SubscribeAnswer(msg.SDP); err != nil {
			fail(CodeMedia, err.Error())
		}
	case TypeTrickle:
		target := sfu.TargetPublish
		if msg.Target == "subscribe" {
			target = sfu.TargetSubscribe
		}
		c := webrtc.ICECandidateInit{Candidate: msg.Candidate.Candidate, SDPMid: msg.Candidate.SDPMid, SDPMLineIndex: msg.Candidate.SDPMLineIndex}
		if err := m.part.AddICECandidate(target, c); err != nil {
			fail(CodeMedia, err.Error())
		}
	case TypeSubscribe:
		var bad, later []string
		for _, id := range msg.IDs {
			if err := m.part.Subscribe(id, sfu.QualityMedium); errors.Is(err, sfu.ErrTooMany) {
				// The address's cap on connections still connecting: a
				// moment later it has room (the subscribe connection is
				// made once, for every track).
				later = append(later, id)
			} else if err != nil {
				bad = append(bad, id+" ("+err.Error()+")")
			}
		}
		if len(later) > 0 {
			r.mu.Lock()
			if m.later == nil {
				m.later = map[string]sfu.Quality{}
			}
			for _, id := range later {
				m.later[id] = sfu.QualityMedium
			}
			r.mu.Unlock()
			r.subscribeLater(m, later, 1)
		}
		if len(bad) > 0 {
			fail(CodeUnknownTrack, "cannot subscribe to "+strings.Join(bad, ", "))
		}
	case TypeUnsubscribe:
		r.mu.Lock()
		for _, id := range msg.IDs {
			delete(m.later, id)
		}
		r.mu.Unlock()
		for _, id := range msg.IDs {
			m.part.Unsubscribe(id)
		}
	case TypeSize:
		r.mu.Lock()
		fullH := 0
		pid, _, _ := strings.Cut(msg.Track, "-")
		if p := r.members[pid]; p != nil && p.tracks[msg.Track] != nil {
			fullH = p.tracks[msg.Track].info.Height
		}
		r.mu.Unlock()
		q := sfu.QualityFor(msg.Height, fullH)
		if msg.Width == 0 {
			q = sfu.QualityOff
		}
		if err := m.part.SetQuality(msg.Track, q); err != nil {
			r.mu.Lock()
			_, waiting := m.later[msg.Track]
			if waiting {
				m.later[msg.Track] = q // applied when the subscription is made
			}
			r.mu.Unlock()
			if !waiting {
				fail(CodeUnknownTrack, err.Error())
			}
		}
	case TypeMute:
		r.mu.Lock()
		r.setMuteLocked(m, msg.Source, msg.Muted, "")
		r.mu.Unlock()
	case TypeChat:
		now := r.s.now()
		line := ChatLine{From: m.id, Name: m.name, Text: msg.Text, Sealed: msg.Sealed, At: now.UnixMilli()}
		r.mu.Lock()
		r.chat = append(r.chat, line)
		if n := len(r.chat) - r.s.lim.ChatHistory; n > 0 {
			r.chat = slices.Delete(r.chat, 0, n)
		}
		r.broadcastLocked(Out{Type: TypeChat, Line: &line}, "")
		r.mu.Unlock()
		if r.s.chats != nil && line.Sealed != "" {
			if err := r.s.chats.add(r.name, line, now); err != nil {
				r.s.m.chatStoreErrors.Inc()
				r.s.log.Warn("chat history not stored", "room", r.name, "err", err)
			}
		}
	case TypeE2EE:
		r.mu.Lock()
		r.broadcastLocked(Out{Type: TypeE2EE, Participant: m.id, Sealed: msg.Sealed}, m.id)
		r.mu.Unlock()
	case TypeInvite:
		if !isHost {
			fail(CodeNotHost, "only the host can invite")
			return
		}
		reply(Out{Type: TypeInvite, Invite: newInvite(r.s.p.Secret, r.name, r.s.now().Add(r.s.lim.InviteTTL))})
	case TypeHost:
		if !isHost {
			fail(CodeNotHost, "only the host can do that")
			return
		}
		r.hostAction(m, msg, fail)
	}
}

// subscribeLater tries subscriptions refused for the address's pending
// cap again, after a pause growing with each try (up to 5 tries, about
// 15 s), then reports them failed.
func (r *room) subscribeLater(m *member, ids []string, try int) {
	time.AfterFunc(time.Duration(try)*time.Second, func() {
		r.mu.Lock()
		here := r.members[m.id] == m
		r.mu.Unlock()
		if !here {
			return
		}
		var again []string
		for _, id := range ids {
			r.mu.Lock()
			q, ok := m.later[id]
			r.mu.Unlock()
			if !ok {
				continue // unsubscribed meanwhile
			}
			err := m.part.Subscribe(id, q)
			if errors.Is(err, sfu.ErrTooMany) {
				again = append(again, id)
				continue
			}
			r.mu.Lock()
			delete(m.later, id)
			r.mu.Unlock()
		}
		switch {
		case len(again) == 0:
		case try < 5:
			r.subscribeLater(m, again, try+1)
		default:
			r.mu.Lock()
			for _, id := range again {
				delete(m.later, id)
			}
			r.sendLocked(m, Out{Type: TypeError, Code: CodeTooMany, Message: "cannot subscribe now: too many connections from your address"})
			r.mu.Unlock()
		}
	})
}

func (r *room) setMuteLocked(m *member, source string, muted bool, by string) {
	switch source {
	case SourceMicrophone:
		m.micMuted = muted
	case SourceCamera:
		m.camMuted = muted
	}
	for _, t := range m.tracks {
		if t.info.Source == source {
			t.info.Muted = muted
		}
	}
	r.broadcastLocked(Out{Type: TypeMute, Participant: m.id, Source: source, Muted: muted, By: by}, "")
}

func (r *room) hostAction(h *member, msg Msg, fail func(code, text string)) {
	r.mu.Lock()
	switch msg.Action {
	case ActionLock, ActionUnlock:
		r.locked = msg.Action == ActionLock
		r.broadcastLocked(Out{Type: TypeRoom, Locked: r.locked}, "")
		r.mu.Unlock()
	case ActionAdmit, ActionDeny:
		k := r.knocking[msg.Participant]
		if k == nil {
			r.mu.Unlock()
			fail(CodeUnknown, "nobody by that id is waiting")
			return
		}
		delete(r.knocking, k.id)
		reason := "admitted"
		if msg.Action == ActionDeny {
			reason = "denied"
		}
		r.sendLocked(h, Out{Type: TypeKnockEnd, Participant: k.id, Reason: reason})
		r.s.log.Info("knock answered", "room", r.name, "participant", k.id, "answer", reason)
		full := len(r.members) >= r.cap()
		c := k.conn
		r.mu.Unlock()
		switch {
		case c == nil:
		case msg.Action == ActionDeny:
			r.s.m.refused.WithLabelValues(CodeDenied).Inc()
			c.closeWith(CodeDenied, "the host did not let you in")
		case full:
			c.closeWith(CodeRoomFull, "the room is full")
		default:
			r.admit(k)
		}
	case ActionMute:
		t := r.members[msg.Participant]
		if t == nil {
			r.mu.Unlock()
			fail(CodeUnknown, "no such participant")
			return
		}
		// The target's client stops its microphone on this message; the
		// host can never unmute anyone.
		r.setMuteLocked(t, SourceMicrophone, true, "host")
		r.mu.Unlock()
	case ActionRemove:
		t := r.members[msg.Participant]
		r.mu.Unlock()
		if t == nil || t == h {
			fail(CodeUnknown, "no such participant")
			return
		}
		r.drop(t, CodeRemoved, "the host removed you")
	default:
		r.mu.Unlock()
	}
}
