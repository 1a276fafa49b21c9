package tracker

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// sim drives a Swarm the way the server does: joins, reports every 2 s
// with receipts, rebalances every 2 s. Viewers it calls bad forward
// nothing: their downstreams' receipts from them are 0, and name them
// stalled.
type sim struct {
	t      *testing.T
	s      *Swarm
	now    time.Time
	bad    map[protocol.PeerID]bool
	joined map[protocol.PeerID]int // budget at join
	order  []protocol.PeerID
	last   map[protocol.PeerID]time.Time
	total  map[protocol.PeerID]uint64 // bytes received in all, as reported
	// share: what a good upstream delivers of what its links carry.
	share map[protocol.PeerID]float64
}

func newSim(t *testing.T, s *Swarm) *sim {
	return &sim{t: t, s: s, now: t0, bad: map[protocol.PeerID]bool{}, joined: map[protocol.PeerID]int{},
		last: map[protocol.PeerID]time.Time{}, total: map[protocol.PeerID]uint64{}, share: map[protocol.PeerID]float64{}}
}

func (m *sim) join(id protocol.PeerID, addr string, budget int, bad bool) []Link {
	m.t.Helper()
	links, err := m.s.Join(m.now, PeerInfo{ID: id, Kind: protocol.KindNative, BudgetKbps: budget, Loc: Location{Addr: netip.MustParseAddr(addr)}})
	if err != nil {
		m.t.Fatal(err)
	}
	m.bad[id], m.joined[id], m.last[id] = bad, budget, m.now
	m.order = append(m.order, id)
	return links
}

// report is id's report now: what each upstream delivered since its last
// report (nothing from a bad one, which it also names stalled), and its
// claims (a bad viewer claims the most the protocol allows).
func (m *sim) report(id protocol.PeerID) protocol.Report {
	span := m.now.Sub(m.last[id]).Seconds()
	m.last[id] = m.now
	slotBps := float64(m.s.BitrateKbps()) / float64(m.s.Substreams()) * 1000 / 8
	r := protocol.Report{BufferSec: 4, RTTms: 40}
	if m.bad[id] {
		r = protocol.Report{BufferSec: protocol.MaxBufferSec, UploadKbps: protocol.MaxBudgetKbps, RTTms: 1}
	}
	m.total[id] += uint64(float64(m.s.Substreams()) * slotBps * span)
	r.BytesFromPeers = m.total[id]
	got := map[protocol.PeerID]float64{}
	for _, u := range m.s.Upstreams(id) {
		if u == "" || u == "o" {
			continue
		}
		share, ok := m.share[u]
		if !ok {
			share = 1
		}
		if m.bad[u] {
			share = 0
		}
		got[u] += share * slotBps * span
	}
	for _, u := range sortedKeys(got) {
		r.Received = append(r.Received, protocol.Receipt{Peer: u, Bytes: uint64(got[u])})
		if m.bad[u] && !m.bad[id] {
			r.Stalled = append(r.Stalled, u)
		}
	}
	return r
}

func sortedKeys[V any](m map[protocol.PeerID]V) []protocol.PeerID {
	ks := make([]protocol.PeerID, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// round moves the clock 2 s on: every viewer reports, then the swarm is
// rebalanced; every invariant is checked.
func (m *sim) round() {
	m.t.Helper()
	m.now = m.now.Add(2 * time.Second)
	for _, id := range m.order {
		if _, ok := m.s.ids[id]; !ok {
			continue
		}
		r := m.report(id)
		m.s.TakeReport(m.now, id, &r, m.joined[id])
	}
	m.s.Rebalance(m.now)
	if err := checkSwarm(m.s, false, all); err != nil {
		m.t.Fatal(err)
	}
}

// from counts id's substreams whose upstream is in set, and its distinct
// upstreams outside it (HTTP counts as the origin).
func (m *sim) from(id protocol.PeerID, set func(protocol.PeerID) bool) (in, others int) {
	var seen []protocol.PeerID
	for _, u := range m.s.Upstreams(id) {
		if u == "" {
			u = "o"
		}
		if set(u) {
			in++
		} else if !slices.Contains(seen, u) {
			seen = append(seen, u)
		}
	}
	return in, len(seen)
}

const sybilAddr = "203.0.113.7"

// mayServe is how many links viewer id may serve now.
func mayServe(s *Swarm, id protocol.PeerID) int { return int(s.capOf(s.ids[id])) }

// TestSybilsOneAddress: ten identities on one address, claiming the
// largest budget the wire allows, join early among 40 honest viewers (each
// in a /24 of its own) and forward nothing. No viewer ever gets more than
// one substream from that address, every viewer keeps two or more
// upstreams off it; the ten share one probation allowance (4 slots, not
// ten times 1024), lose it once measured, and fresh joiners after them get
// nothing from them.
func TestSybilsOneAddress(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{})
	if err := s.AddOrigin("o", 16); err != nil {
		t.Fatal(err)
	}
	m := newSim(t, s)
	sybil := func(id protocol.PeerID) bool { return len(id) > 0 && id[0] == 's' }
	budgets := []int{0, budget(s, 4), budget(s, 8), 0, budget(s, 8)}
	honest := 0
	joinHonest := func(n int) {
		for range n {
			honest++
			m.join(protocol.PeerID(fmt.Sprint("h", honest)), fmt.Sprintf("10.%d.%d.1", honest/256, honest%256), budgets[honest%len(budgets)], false)
			m.now = m.now.Add(50 * time.Millisecond)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, id := range m.order {
			if sybil(id) || s.ids[id] == 0 && id != m.order[0] {
				continue
			}
			// At most one substream from the address, and the others
			// from two or more upstreams off it (or all from the origin).
			in, others := m.from(id, sybil)
			if in > 1 || in > 0 && others < 2 {
				t.Fatalf("%s: %s has %d substreams from the sybils' address and %d upstreams off it: %v", when, id, in, others, s.Upstreams(id))
			}
		}
		used := 0
		for _, id := range m.order {
			if sybil(id) {
				used += len(s.Downstreams(id))
			}
		}
		if used > 4 {
			t.Fatalf("%s: the sybils serve %d links, more than one address's probation (4)", when, used)
		}
	}
	joinHonest(5)
	before := s.Stats().PeerSlots
	for j := range 10 {
		m.join(protocol.PeerID(fmt.Sprint("s", j)), sybilAddr, protocol.MaxBudgetKbps, true)
	}
	if got := s.Stats().PeerSlots - before; got != 4 {
		t.Fatalf("ten identities on one address add %d slots, want one probation's 4", got)
	}
	if got := s.peers[s.ids["s0"]].slots; got != int32(s.Slots(100_000)) {
		t.Fatalf("a declared budget of %d kbit/s buys %d slots, want %d (100 Mbit/s at most)", protocol.MaxBudgetKbps, got, s.Slots(100_000))
	}
	joinHonest(35)
	check("after the joins")
	for r := range 20 { // 40 s of reports
		m.round()
		check(fmt.Sprint("round ", r))
	}
	for j := range 10 {
		id := protocol.PeerID(fmt.Sprint("s", j))
		if c := mayServe(s, id); c != 0 || len(s.Downstreams(id)) != 0 {
			t.Errorf("%s may still serve %d links (serves %d)", id, c, len(s.Downstreams(id)))
		}
	}
	joinHonest(10)
	for _, id := range m.order[len(m.order)-10:] {
		if in, _ := m.from(id, sybil); in > 0 {
			t.Errorf("fresh %s: %d substreams from the sybils: %v", id, in, s.Upstreams(id))
		}
	}
	check("fresh joiners")
}

// TestProbation: a viewer claiming 100 Mbit/s serves no more than the
// probation slots (K, one substream) until its downstreams report what it
// delivered; then its allowance follows their receipts: it grows (at most
// doubling per measurement) while it delivers and its links are full, up
// to what its declared budget buys; it shrinks when it delivers half; it
// drops to nothing when it delivers nothing after probation, and gets the
// probation slots back after a back-off. (Its viewers relay nothing but
// "big": overbooking, TestOverbook, is off so that the figures are the
// budget's.)
func TestProbation(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Overbook: -1})
	if err := s.AddOrigin("o", 8); err != nil {
		t.Fatal(err)
	}
	m := newSim(t, s)
	m.join("big", "192.0.2.1", 100_000, false) // 100 slots
	n := 0
	more := func(k int) {
		for range k {
			n++
			m.join(protocol.PeerID(fmt.Sprint("v", n)), fmt.Sprintf("10.0.%d.1", n), 0, false)
		}
	}
	more(12)
	if c, d := mayServe(s, "big"), len(s.Downstreams("big")); c != 4 || d != 4 {
		t.Fatalf("on probation: may serve %d, serves %d; want the probation's 4", c, d)
	}
	subs := map[int]bool{}
	for _, l := range s.Downstreams("big") {
		subs[l.Substream] = true
	}
	if len(subs) != 1 {
		t.Fatalf("on probation it serves substreams %v, want one", subs)
	}
	// No receipts yet (reports without them), however long: no more.
	for range 5 {
		m.now = m.now.Add(2 * time.Second)
		for _, id := range m.order {
			s.TakeReport(m.now, id, &protocol.Report{BufferSec: 4}, m.joined[id])
		}
		s.Rebalance(m.now)
	}
	if c := mayServe(s, "big"); c != 4 {
		t.Fatalf("without receipts: may serve %d, want 4", c)
	}
	for _, id := range m.order {
		m.last[id] = m.now
	}
	// Receipts: it delivers all; the allowance grows while its links fill.
	prev := mayServe(s, "big")
	for r := 0; r < 30 && mayServe(s, "big") < 100; r++ {
		more(8) // demand for what it may serve
		m.round()
		c := mayServe(s, "big")
		if c > 2*prev || c > 100 {
			t.Fatalf("round %d: may serve %d, after %d (at most double, at most 100)", r, c, prev)
		}
		prev = c
	}
	if c := mayServe(s, "big"); c != 100 {
		t.Fatalf("delivering everything: may serve %d, want the 100 its budget buys", c)
	}
	// It delivers half of what its links carry: it shrinks.
	m.share["big"] = 0.5
	served := len(s.Downstreams("big"))
	for range 5 { // two measurements or more
		m.round()
	}
	if c := mayServe(s, "big"); c >= 100 || c < 4 || len(s.Downstreams("big")) >= served {
		t.Fatalf("delivering half: may serve %d, serves %d (served %d)", c, len(s.Downstreams("big")), served)
	}
	// Nothing at all: it fails, and serves nothing.
	m.bad["big"] = true
	for range 3 {
		m.round()
	}
	if c, d := mayServe(s, "big"), len(s.Downstreams("big")); c != 0 || d != 0 {
		t.Fatalf("delivering nothing: may serve %d, serves %d", c, d)
	}
	// After the back-off (Probation), its own report brings the probation
	// slots back.
	m.now = m.now.Add(15 * time.Second) // the default Probation
	s.TakeReport(m.now, "big", &protocol.Report{BufferSec: 4}, 100_000)
	if c := mayServe(s, "big"); c != 4 {
		t.Fatalf("after the back-off: may serve %d, want 4", c)
	}
	if err := checkSwarm(s, false, all); err != nil {
		t.Fatal(err)
	}
}

// TestAddressPool: the viewers of one address (of one IPv6 /64) share one
// allowance: ten identities get what one would, on probation and after.
func TestAddressPool(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addr  func(j int) string
		share bool
	}{
		{"one IPv4 address", func(int) string { return "198.51.100.9" }, true},
		{"one IPv6 /64", func(j int) string { return fmt.Sprintf("2001:db8:0:1::%x", j+1) }, true},
		{"ten IPv4 addresses", func(j int) string { return fmt.Sprintf("198.51.%d.9", j) }, false},
		{"ten IPv6 /64s", func(j int) string { return fmt.Sprintf("2001:db8:0:%x::1", j+1) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSwarm(t, SwarmParams{})
			if err := s.AddOrigin("o", 400); err != nil {
				t.Fatal(err)
			}
			for j := range 10 {
				if _, err := s.Join(t0, PeerInfo{ID: protocol.PeerID(fmt.Sprint("p", j)), Kind: protocol.KindNative, BudgetKbps: budget(s, 40), Loc: Location{Addr: netip.MustParseAddr(tc.addr(j))}}); err != nil {
					t.Fatal(err)
				}
			}
			want := 4 * 10
			if tc.share {
				want = 4
			}
			if got := s.Stats().PeerSlots; got != want {
				t.Fatalf("on probation: %d slots, want %d", got, want)
			}
			if tc.share {
				// Proven and grown as far as it goes: one identity's 40.
				gi := s.peers[s.ids["p0"]].grp
				s.groups[gi].proven = true
				s.setAllow(t0, gi, s.groups[gi].top)
				if got := s.Stats().PeerSlots; got != 40 {
					t.Fatalf("grown: %d slots, want one identity's 40", got)
				}
			}
			mustCheck(t, s)
		})
	}
}

// TestPrefixRule: a viewer never gets two upstreams in one /24, even when
// the only peers with room are there: the origin, or HTTP, serves the rest.
func TestPrefixRule(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{})
	if err := s.AddOrigin("o", 12); err != nil {
		t.Fatal(err)
	}
	for j := range 3 {
		force(t, s, t0, PeerInfo{ID: protocol.PeerID(fmt.Sprint("r", j)), Kind: protocol.KindNative, BudgetKbps: budget(s, 20),
			Loc: withASN(Location{Addr: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", j+1)), Country: "DE"}, 3320)}, "o", "o", "o", "o")
	}
	// The origin is full: the three relays of 192.0.2.0/24 have room.
	for j := range 4 {
		links, err := s.Join(t0, PeerInfo{ID: protocol.PeerID(fmt.Sprint("v", j)), Kind: protocol.KindBrowser, Loc: Location{Addr: netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", j)), Country: "DE"}})
		if err != nil {
			t.Fatal(err)
		}
		var inPrefix []protocol.PeerID
		for _, l := range links {
			if l.Upstream != "" && l.Upstream != "o" && !slices.Contains(inPrefix, l.Upstream) {
				inPrefix = append(inPrefix, l.Upstream)
			}
		}
		if len(inPrefix) != 1 {
			t.Fatalf("v%d: upstreams %+v, want one peer of 192.0.2.0/24 and the rest from the origin or HTTP", j, links)
		}
	}
	if err := checkSwarm(s, false, all); err != nil {
		t.Fatal(err)
	}
}

// TestASNRule: a second upstream in the ASN of a first comes only when no
// candidate of the same tier and proximity class is in another ASN; the
// viewer's own ASN still wins among those (locality within a big ISP).
func TestASNRule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      Location // the third candidate, in ASN 64500
		wantIn []protocol.PeerID
	}{
		{"another ASN as near", withASN(berlin, 64500), []protocol.PeerID{"c"}},
		{"another ASN farther", withASN(madrid, 64500), []protocol.PeerID{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSwarm(t, SwarmParams{Substreams: 2, MinUpstreams: 2, MaxUpstreams: 2})
			if err := s.AddOrigin("o", 4); err != nil {
				t.Fatal(err)
			}
			ip := func(j int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", j)) }
			la, lb, lc := withASN(berlin, 3320), withASN(berlin, 3320), tc.c
			la.Addr, lb.Addr, lc.Addr = ip(1), ip(2), ip(3)
			force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, BudgetKbps: budget(s, 4), Loc: la}, "o", "o")
			force(t, s, t0, PeerInfo{ID: "b", Kind: protocol.KindNative, BudgetKbps: budget(s, 3), Loc: lb}, "a", "o")
			force(t, s, t0, PeerInfo{ID: "c", Kind: protocol.KindNative, BudgetKbps: budget(s, 3), Loc: lc}, "a", "o")
			lj := withASN(berlin, 3320)
			lj.Addr = ip(9)
			links, err := s.Join(t0, PeerInfo{ID: "j", Kind: protocol.KindBrowser, Loc: lj})
			if err != nil {
				t.Fatal(err)
			}
			if links[0].Upstream != "a" || !slices.Contains(tc.wantIn, links[1].Upstream) {
				t.Fatalf("links %+v: want a (same ASN, nearest), then one of %v", links, tc.wantIn)
			}
		})
	}
}

// TestGroupLingers: an address that failed and left keeps its failure when
// it comes back with new identities; a new address starts on probation.
func TestGroupLingers(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{})
	if err := s.AddOrigin("o", 8); err != nil {
		t.Fatal(err)
	}
	m := newSim(t, s)
	m.join("bad", sybilAddr, 100_000, true)
	for j := range 8 {
		m.join(protocol.PeerID(fmt.Sprint("v", j)), fmt.Sprintf("10.0.%d.1", j), 0, false)
	}
	for range 12 {
		m.round()
	}
	gi := s.peers[s.ids["bad"]].grp
	if g := &s.groups[gi]; g.allow != 0 || g.retryAt == 0 {
		t.Fatalf("after 24 s of nothing: allowance %d, retry at %d", g.allow, g.retryAt)
	}
	s.Leave(m.now, "bad")
	m.now = m.now.Add(time.Second)
	m.join("bad2", sybilAddr, 100_000, true)
	if c := mayServe(s, "bad2"); c != 0 {
		t.Fatalf("back on the failed address: may serve %d, want 0", c)
	}
	m.join("new", "203.0.113.8", 100_000, false)
	if c := mayServe(s, "new"); c != 4 {
		t.Fatalf("a new address: may serve %d, want the probation's 4", c)
	}
	// Ten minutes after the last viewer left, the address is forgotten.
	s.Leave(m.now, "bad2")
	m.now = m.now.Add(groupLinger + time.Second)
	m.join("bad3", sybilAddr, 100_000, true)
	if c := mayServe(s, "bad3"); c != 4 {
		t.Fatalf("ten minutes later: may serve %d, want the probation's 4", c)
	}
	if err := checkSwarm(s, false, all); err != nil {
		t.Fatal(err)
	}
}

// TestReceiptsCapped: a downstream cannot credit an upstream with more than
// what its links needed, nor a peer that is not its upstream.
func TestReceiptsCapped(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1})
	if err := s.AddOrigin("o", 2); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "u", Kind: protocol.KindNative, BudgetKbps: budget(s, 4), Loc: Location{Addr: netip.MustParseAddr("192.0.2.1")}}, "o")
	force(t, s, t0, PeerInfo{ID: "x", Kind: protocol.KindNative, BudgetKbps: budget(s, 4), Loc: Location{Addr: netip.MustParseAddr("192.0.2.2")}}, "o")
	force(t, s, t0, PeerInfo{ID: "d", Kind: protocol.KindBrowser}, "u")
	now := t0.Add(6 * time.Second)
	r := protocol.Report{Received: []protocol.Receipt{{Peer: "u", Bytes: 1 << 40}, {Peer: "x", Bytes: 1 << 40}}}
	s.credit(now, s.ids["d"], &r)
	// One link of 4000 kbit/s (K=1), needed from 1.5 s after it was made:
	// 4.5 s.
	need := 4.5 * 4000 * 1000 / 8
	gu, gx := &s.groups[s.peers[s.ids["u"]].grp], &s.groups[s.peers[s.ids["x"]].grp]
	if gu.need != need || gu.got != need {
		t.Errorf("u: need %v got %v, want %v for both", gu.need, gu.got, need)
	}
	if gx.need != 0 || gx.got != 0 {
		t.Errorf("x, not d's upstream: need %v got %v", gx.need, gx.got)
	}
}

// TestConvict: a relay caught in a verified lie (a bad chunk, a forged
// batch) by viewers of two different addresses loses its whole allowance
// at once; one accuser, or two of one address, or stall reports are not
// enough; and it gets probation back only after Probation.
func TestConvict(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{})
	if err := s.AddOrigin("o", 1); err != nil {
		t.Fatal(err)
	}
	m := newSim(t, s)
	m.join("p", "10.0.0.1", 10_000, false)
	for _, v := range []struct {
		id   protocol.PeerID
		addr string
	}{{"v1", "10.0.1.1"}, {"v2", "10.0.1.1"}, {"v3", "10.0.2.1"}, {"v4", "10.0.3.1"}} {
		m.join(v.id, v.addr, 0, false)
	}
	under := func() []protocol.PeerID {
		var ds []protocol.PeerID
		for _, v := range []protocol.PeerID{"v1", "v2", "v3", "v4"} {
			if slices.Contains(s.Upstreams(v), "p") {
				ds = append(ds, v)
			}
		}
		return ds
	}
	if got := under(); len(got) != 4 {
		t.Fatalf("viewers under p: %v, want all four (the origin has one slot)", got)
	}
	accuse := func(from protocol.PeerID, reason protocol.ComplaintReason) {
		t.Helper()
		m.now = m.now.Add(100 * time.Millisecond)
		s.TakeReport(m.now, from, &protocol.Report{BufferSec: 4, Complaint: &protocol.Complaint{Peer: "p", Reason: reason}}, 0)
		if err := checkSwarm(s, false, all); err != nil {
			t.Fatal(err)
		}
	}
	allow := func() int32 { return s.groups[s.peers[s.ids["p"]].grp].allow }
	before := allow()
	// A stall report is not a verified lie.
	m.now = m.now.Add(100 * time.Millisecond)
	s.TakeReport(m.now, "v4", &protocol.Report{BufferSec: 4, Stalled: []protocol.PeerID{"p"}}, 0)
	accuse("v1", protocol.ComplaintBadChunk)
	accuse("v2", protocol.ComplaintForgedManifest) // the same address as v1
	accuse("v1", protocol.ComplaintBadChunk)       // no longer its upstream
	if allow() != before || !slices.Contains(under(), "v3") {
		t.Fatalf("after one address's accusations and a stall: allowance %d (was %d), under p %v", allow(), before, under())
	}
	accuse("v3", protocol.ComplaintBadChunk)
	if allow() != 0 || len(under()) != 0 {
		t.Fatalf("after two addresses' accusations: allowance %d, under p %v", allow(), under())
	}
	// Its probation slots come back after Probation (a failed group's
	// retry), not before.
	g := &s.groups[s.peers[s.ids["p"]].grp]
	if d := time.Duration(g.retryAt - m.now.UnixNano()); d != s.p.Probation {
		t.Errorf("retry in %v, want Probation %v", d, s.p.Probation)
	}
}
