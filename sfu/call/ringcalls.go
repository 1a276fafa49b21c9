package call

import (
	"maps"
	"slices"
	"time"

	"github.com/seedcast/seedcast/sfu/call/ring"
)

// ringCall is one ringing 1:1 call: its state machine (package ring), the
// devices it involves, and its media room. The server's presence lock
// (Server.pmu) guards it.
type ringCall struct {
	s              *Server
	c              *ring.Call
	room           string // the call room id its media goes through
	caller, callee string // keys
	callerDev      *device
	callees        map[string]*device // the callee's devices in the call, by id
	video, e2ee    bool
	salt, box      string
	group          bool
	timer          *time.Timer
	members        map[string]ring.Side // call-room participant id → side
	ended          bool
	issued         [3][]string // by side: the newest invites' nonces (s.tickets)
	callerIn       bool        // rung into a room the caller is in already
}

// maxTickets is how many of a side's invites stay good at once: a page
// may join with one it got a few notices ago, and a side cannot make the
// server hold more by asking for states.
const maxTickets = 4

// ticket is a ring call's one-time invite into its room, by nonce.
type ticket struct {
	rc   *ringCall
	side ring.Side
}

// ringLocked starts a call from device d.
func (s *Server) ringLocked(d *device, msg PMsg) (code, text string) {
	to := msg.To
	self := to == d.key
	if !self && !d.contacts[to] {
		return CodeNotContact, "add them to your contacts first"
	}
	room, group := NewRoomID(), false
	if msg.Room != "" {
		in := false
		for _, rc := range d.calls {
			st := rc.c.State()
			in = in || rc.room == msg.Room && (st == ring.Active || st == ring.Held || st == ring.Connecting)
		}
		if !in {
			return CodeNoCall, "you can add people only to a call you are in"
		}
		room, group = msg.Room, true
	}
	for _, rc := range d.calls {
		if rc.c.State() != ring.Ended && (msg.Room == "" || rc.room != msg.Room) {
			return CodeBusyCaller, "you are already in a call"
		}
	}

	// The devices that ring: the callee's online devices that list the
	// caller (or, calling yourself, your other devices). A callee that is
	// offline and one that does not list the caller look the same to the
	// caller, so a stranger learns nothing of presence.
	var ids, auto []string
	callees := map[string]*device{}
	busy := false
	for id, cd := range s.devices[to] {
		if cd == d {
			continue
		}
		for _, rc := range cd.calls {
			if st := rc.c.State(); st == ring.Connecting || st == ring.Active || st == ring.Held {
				busy = true
			}
		}
		if cd.pc == nil || (!self && !cd.contacts[d.key]) {
			continue
		}
		ids = append(ids, id)
		callees[id] = cd
		if cd.autoAnswer {
			auto = append(auto, id)
		}
	}
	if len(ids) == 0 {
		s.m.rings.WithLabelValues("unavailable").Inc()
		return CodeUnavailable, "they are not reachable now (offline, or you are not in their contacts)"
	}
	slices.Sort(ids)
	slices.Sort(auto)
	id := NewRoomID()
	c, err := ring.New(s.now(), ring.Params{
		ID: id, Caller: d.key, Callee: to, CallerDevice: d.id,
		CalleeDevices: ids, AutoAnswer: auto, Busy: busy,
		Timeouts: s.lim.Ring,
	})
	if err != nil {
		return CodeCallRefused, err.Error()
	}
	rc := &ringCall{
		s: s, c: c, room: room, caller: d.key, callee: to, callerDev: d, callees: callees,
		video: msg.Video, e2ee: msg.E2EE, salt: msg.Salt, box: msg.Box, group: group,
		members: map[string]ring.Side{},
	}
	if group {
		// The caller is in the room already: its member there is this
		// call's caller side too.
		for _, other := range d.calls {
			if other.room != room {
				continue
			}
			for mid, sd := range other.members {
				if other.deviceOf(sd, other.c.AnsweredBy()) == d {
					rc.members[mid] = ring.Caller
					rc.callerIn = true
				}
			}
		}
	}
	s.calls[id] = rc
	d.calls[id] = rc
	for _, cd := range callees {
		cd.calls[id] = rc
	}
	s.m.rings.WithLabelValues("rung").Inc()
	rc.flushLocked()
	return "", ""
}

// sideOf returns d's side in the call.
func (rc *ringCall) sideOf(d *device) ring.Side {
	if d == rc.callerDev {
		return ring.Caller
	}
	return ring.Callee
}

// callEventLocked applies a device's call message.
func (s *Server) callEventLocked(d *device, msg PMsg) (code, text string) {
	rc := d.calls[msg.Call]
	if rc == nil {
		return CodeNoCall, "no such call on this device"
	}
	side := rc.sideOf(d)
	var ev ring.Event
	switch msg.Type {
	case PTypeAnswer:
		ev = ring.Answer(d.id)
	case PTypeDecline:
		ev = ring.Decline(d.id)
	case PTypeBusy:
		ev = ring.Busy(d.id)
	case PTypeCancel:
		ev = ring.Cancel()
	case PTypeHangup:
		ev = ring.Hangup(side)
	case PTypeHold:
		ev = ring.Hold(side)
	case PTypeResume:
		ev = ring.Resume(side)
	default:
		return CodeBadMessage, "not a call event"
	}
	if ev.Kind != ring.KindAnswer && ev.Kind != ring.KindDecline && ev.Kind != ring.KindBusy {
		ev.Side, ev.Device = side, d.id
	} else if side != ring.Callee {
		return CodeCallRefused, "only the callee answers or declines"
	}
	if err := rc.c.Handle(s.now(), ev); err != nil {
		return CodeCallRefused, err.Error()
	}
	rc.flushLocked()
	return "", ""
}

// flushLocked delivers the call's notices, re-arms its timer, and retires
// it once ended.
func (rc *ringCall) flushLocked() {
	s := rc.s
	for {
		n, ok := rc.c.Poll()
		if !ok {
			break
		}
		d := rc.deviceOf(n.Side, n.Device)
		if d == nil {
			continue
		}
		info := rc.infoFor(d, n)
		if d.pc != nil {
			d.pc.send(POut{Type: PTypeCall, Call: &info})
		}
		if n.State == ring.ViewEnded {
			delete(d.calls, rc.c.ID())
			s.forgetDeviceLocked(d)
		}
	}
	if rc.timer != nil {
		rc.timer.Stop()
		rc.timer = nil
	}
	if rc.c.State() == ring.Ended {
		if !rc.ended {
			rc.ended = true
			s.m.rings.WithLabelValues(string(rc.c.Reason())).Inc()
			for _, d := range rc.devicesAll() {
				delete(d.calls, rc.c.ID())
				s.forgetDeviceLocked(d)
			}
			delete(s.calls, rc.c.ID())
			for n, t := range s.tickets {
				if t.rc == rc {
					delete(s.tickets, n)
				}
			}
		}
		return
	}
	if rc.callerIn && rc.c.State() == ring.Connecting {
		rc.callerIn = false
		if rc.c.Handle(s.now(), ring.Joined(ring.Caller)) == nil {
			rc.flushLocked()
			return
		}
	}
	if at, ok := rc.c.NextWake(); ok {
		rc.timer = time.AfterFunc(max(at.Sub(s.now()), 0), func() {
			s.pmu.Lock()
			defer s.pmu.Unlock()
			if rc.ended {
				return
			}
			rc.c.Tick(s.now())
			rc.flushLocked()
		})
	}
}

func (rc *ringCall) devicesAll() []*device {
	out := []*device{rc.callerDev}
	for _, id := range slices.Sorted(maps.Keys(rc.callees)) {
		out = append(out, rc.callees[id])
	}
	return out
}

func (rc *ringCall) deviceOf(side ring.Side, id string) *device {
	if side == ring.Caller {
		return rc.callerDev
	}
	return rc.callees[id]
}

// infoFor is a notice as the wire's CallInfo for device d.
func (rc *ringCall) infoFor(d *device, n ring.Notice) CallInfo {
	info := rc.base(d, n.Side)
	info.State = n.State.String()
	info.Reason = string(n.Reason)
	info.HeldByMe = n.HeldBy.By(n.Side)
	info.HeldByPeer = n.HeldBy.By(n.Side.Other())
	info.Tone = string(n.Tone)
	return info
}

// infoLocked is the call as device d sees it now (for ready).
func (rc *ringCall) infoLocked(d *device) CallInfo {
	side := rc.sideOf(d)
	info := rc.base(d, side)
	info.State = rc.c.View(side).String()
	info.Reason = string(rc.c.Reason())
	h := rc.c.Holds()
	info.HeldByMe, info.HeldByPeer = h.By(side), h.By(side.Other())
	return info
}

func (rc *ringCall) base(d *device, side ring.Side) CallInfo {
	s := rc.s
	info := CallInfo{
		ID: rc.c.ID(), Side: "caller", Peer: rc.callee, Video: rc.video, E2EE: rc.e2ee,
		Salt: rc.salt, Box: rc.box, Group: rc.group,
		Started: rc.c.Started().UnixMilli(),
	}
	if side == ring.Callee {
		info.Side, info.Peer, info.PeerName = "callee", rc.caller, rc.callerDev.name
	} else if a := rc.callees[rc.c.AnsweredBy()]; a != nil {
		info.PeerName = a.name
	}
	if t := rc.c.Answered(); !t.IsZero() {
		info.Answered = t.UnixMilli()
	}
	if t := rc.c.Ended(); !t.IsZero() {
		info.Ended = t.UnixMilli()
	}
	st := rc.c.State()
	inCall := st == ring.Connecting || st == ring.Active || st == ring.Held
	if inCall && (side == ring.Caller || d.id == rc.c.AnsweredBy()) {
		// A fresh one-time invite into the room with every state: a page
		// that reloads mid-call gets back in.
		now := s.now()
		inv := newInvite(s.p.Secret, callPrefix+rc.room, now.Add(10*time.Minute))
		nonce, _, _ := checkInvite(s.p.Secret, callPrefix+rc.room, inv, now)
		s.tickets[nonce] = ticket{rc: rc, side: side}
		rc.issued[side] = append(rc.issued[side], nonce)
		if old := rc.issued[side]; len(old) > maxTickets {
			delete(s.tickets, old[0])
			rc.issued[side] = old[1:]
		}
		info.Room, info.Invite = rc.room, inv
	}
	return info
}

// lost tells the call that device d's presence connection ended.
func (rc *ringCall) lost(d *device) {
	if rc.c.State() != ring.Ringing {
		return // from the answer on, the media room says who is there
	}
	var ev ring.Event
	if rc.sideOf(d) == ring.Caller {
		ev = ring.Lost(ring.Caller)
	} else {
		ev = ring.DeviceGone(d.id)
		delete(rc.callees, d.id)
		delete(d.calls, rc.c.ID())
	}
	if rc.c.Handle(rc.s.now(), ev) == nil {
		rc.flushLocked()
	}
}

// back tells the call that device d's presence is back.
func (rc *ringCall) back(d *device) {
	if rc.c.State() == ring.Ringing && rc.sideOf(d) == ring.Caller {
		if rc.c.Handle(rc.s.now(), ring.Back(ring.Caller)) == nil {
			rc.flushLocked()
		}
	}
}

// ringAgainLocked rings a device that came online into the calls that ring
// its key from a caller it lists.
func (s *Server) ringAgainLocked(d *device) {
	for _, id := range slices.Sorted(maps.Keys(s.calls)) {
		rc := s.calls[id]
		if rc.callee != d.key || rc.c.State() != ring.Ringing || rc.callees[d.id] != nil || rc.callerDev == d {
			continue
		}
		if rc.caller != d.key && !d.contacts[rc.caller] {
			continue
		}
		if rc.c.Handle(s.now(), ring.DeviceAdded(d.id)) == nil {
			rc.callees[d.id] = d
			d.calls[id] = rc
			rc.flushLocked()
		}
	}
}

// Room membership events of ring calls' rooms: the media room, not the
// presence socket, says whether a side is in the call.
const (
	memberJoined = iota
	memberLost
	memberBack
	memberGone
)

// ringMember feeds a call room's membership change to the ring call whose
// invite the member used (nonce), or whose member it is (id).
func (s *Server) ringMember(roomName, nonce, id string, what int) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if t, ok := s.tickets[nonce]; ok && nonce != "" && callPrefix+t.rc.room == roomName {
		delete(s.tickets, nonce)
		t.rc.members[id] = t.side
	}
	// A member can be a side of several calls (the caller who rang others
	// into its room): each hears of it.
	for _, cid := range slices.Sorted(maps.Keys(s.calls)) {
		rc := s.calls[cid]
		if side, ok := rc.members[id]; ok && callPrefix+rc.room == roomName && !rc.ended {
			rc.memberEvent(id, side, what)
		}
	}
}

// memberEvent applies one membership change of the call's room.
func (rc *ringCall) memberEvent(id string, side ring.Side, what int) {
	s := rc.s
	now := s.now()
	switch what {
	case memberJoined:
		// A side that rejoins (a reloaded page) was lost: it is back.
		if rc.c.Handle(now, ring.Joined(side)) != nil {
			_ = rc.c.Handle(now, ring.Back(side))
		}
	case memberBack:
		_ = rc.c.Handle(now, ring.Back(side))
	case memberLost, memberGone:
		if what == memberGone {
			delete(rc.members, id)
		}
		_ = rc.c.Handle(now, ring.Lost(side))
	}
	rc.flushLocked()
}
