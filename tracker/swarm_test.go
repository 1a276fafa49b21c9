package tracker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// Test streams: 4000 kbps, so with K=4 one slot is 1000 kbps and a budget of
// n·1000·4/K kbps is n slots.
const testBitrate = 4000

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func newTestSwarm(t testing.TB, p SwarmParams) *Swarm {
	t.Helper()
	if p.BitrateKbps == 0 {
		p.BitrateKbps = testBitrate
	}
	if p.Rand == nil {
		p.Rand = rand.New(rand.NewPCG(1, 2))
	}
	s, err := NewSwarm(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// budget returns the budget that buys n slots in s.
func budget(s *Swarm, n int) int { return n * s.p.BitrateKbps / s.k }

func coords(lat, lon float64, cc string) Location {
	return Location{Lat: lat, Lon: lon, HasCoords: true, Country: cc}
}

var (
	berlin  = coords(52.52, 13.40, "DE")
	hamburg = coords(53.55, 9.99, "DE")
	munich  = coords(48.14, 11.58, "DE")
	madrid  = coords(40.42, -3.70, "ES")
	tokyo   = coords(35.68, 139.69, "JP")
)

func withASN(l Location, asn uint32) Location { l.ASN = asn; return l }

// force registers a viewer with the given upstream per substream, bypassing
// the policy, so that tests can build exact trees. Its address is trusted
// (see trust): a forced viewer serves the slots it declares.
func force(t testing.TB, s *Swarm, now time.Time, pi PeerInfo, ups ...protocol.PeerID) {
	t.Helper()
	if len(ups) != s.k {
		t.Fatalf("force %s: %d upstreams, want %d", pi.ID, len(ups), s.k)
	}
	if err := s.checkInfo(pi); err != nil {
		t.Fatal(err)
	}
	s.tick(now)
	i := s.admit(now, pi)
	trust(t, s, pi.ID)
	for k, u := range ups {
		ui, ok := s.ids[u]
		if !ok {
			t.Fatalf("force %s: unknown upstream %s", pi.ID, u)
		}
		if s.free(ui) == 0 {
			t.Fatalf("force %s: upstream %s is full", pi.ID, u)
		}
		s.link(i, k, ui)
	}
	s.index(i)
}

// trust marks viewer id's address as measured delivering: proven, with an
// allowance of every slot its viewers declare, as if its downstreams had
// reported so. Tests of the assignment rules use it to work with declared
// slots; the measurement itself is tested in trust_test.go.
func trust(t testing.TB, s *Swarm, id protocol.PeerID) {
	t.Helper()
	i, ok := s.ids[id]
	if !ok {
		t.Fatalf("trust %s: unknown", id)
	}
	gi := s.peers[i].grp
	g := &s.groups[gi]
	g.proven = true
	g.allow = max(g.allow, g.decl)
	s.restat(gi)
	s.indexGroup(gi)
}

func repeat(id protocol.PeerID, k int) []protocol.PeerID {
	ups := make([]protocol.PeerID, k)
	for j := range ups {
		ups[j] = id
	}
	return ups
}

// checkSwarm verifies every invariant of s, through its internals and
// through the exported queries. With assigned, every viewer must have an
// upstream on every substream. A viewer's count of distinct upstreams must be
// within MinUpstreams..MaxUpstreams unless the policy flagged it (no
// candidate allowed better) or exempt says so (hand-built trees).
func checkSwarm(s *Swarm, assigned bool, exempt func(protocol.PeerID) bool) error {
	var st Stats
	alive := 0
	for ii := range s.peers {
		i := int32(ii)
		p := &s.peers[i]
		if !p.alive() {
			if p.pos[2] != none || p.rpos != none {
				return fmt.Errorf("dead peer %d still indexed", i)
			}
			continue
		}
		alive++
		if s.ids[p.id] != i {
			return fmt.Errorf("%s: id map points to %d, not %d", p.id, s.ids[p.id], i)
		}
		if int(p.used) != len(p.down) || p.used > p.slots {
			return fmt.Errorf("%s: used %d, %d links, %d slots", p.id, p.used, len(p.down), p.slots)
		}
		for j, d := range p.down {
			sd := s.subs[s.at(d.peer, int(d.sub))]
			if sd.up != i || sd.pos != int32(j) || !s.peers[d.peer].alive() {
				return fmt.Errorf("%s: down link %d to %d/%d is %+v", p.id, j, d.peer, d.sub, sd)
			}
		}
		want := !p.isOrigin() && s.free(i) > 0
		if (p.pos[2] != none) != want {
			return fmt.Errorf("%s: in free index %v, want %v", p.id, p.pos[2] != none, want)
		}
		if want {
			if s.buckets[0].members[p.pos[2]] != i {
				return fmt.Errorf("%s: global bucket position wrong", p.id)
			}
			for j := range 2 {
				if p.pos[j] != none && s.buckets[p.bkt[j]].members[p.pos[j]] != i {
					return fmt.Errorf("%s: bucket %d position wrong", p.id, j)
				}
			}
			if p.hasCoords() != (p.pos[0] != none) || (areaKey(p).kind != 0) != (p.pos[1] != none) {
				return fmt.Errorf("%s: missing from a locality bucket", p.id)
			}
		}
		if (p.rpos != none) != s.relay(i) || (p.rpos != none && s.relays[p.rpos] != i) {
			return fmt.Errorf("%s: relay index wrong", p.id)
		}
		if p.isOrigin() {
			st.OriginSlots += int(p.slots)
			st.OriginLinks += int(p.used)
			if s.Depth(p.id, 0) != 0 {
				return fmt.Errorf("origin %s: depth %d", p.id, s.Depth(p.id, 0))
			}
			continue
		}
		st.Viewers++
		st.PeerLinks += int(p.used)
		if p.grp < 0 || int(p.grp) >= len(s.groups) || !slices.Contains(s.groups[p.grp].members, i) {
			return fmt.Errorf("%s: not a member of its group %d", p.id, p.grp)
		}
		ups := s.Upstreams(p.id)
		if len(ups) != s.k {
			return fmt.Errorf("%s: %d upstreams", p.id, len(ups))
		}
		var set []int32
		for k := range s.k {
			sb := s.subs[s.at(i, k)]
			if sb.up == none {
				st.Unassigned++
				if assigned {
					return fmt.Errorf("%s: no upstream on substream %d", p.id, k)
				}
				if ups[k] != "" || s.Depth(p.id, k) != -1 {
					return fmt.Errorf("%s/%d: unassigned but reported %q at %d", p.id, k, ups[k], s.Depth(p.id, k))
				}
				continue
			}
			if sb.up == i {
				return fmt.Errorf("%s: its own upstream on %d", p.id, k)
			}
			pu := &s.peers[sb.up]
			if !pu.alive() || ups[k] != pu.id || !s.Linked(p.id, pu.id) || !s.Linked(pu.id, p.id) {
				return fmt.Errorf("%s/%d: upstream %d (%s) not live or not linked", p.id, k, sb.up, pu.id)
			}
			if sb.depth != s.subs[s.at(sb.up, k)].depth+1 || s.Depth(p.id, k) != int(sb.depth) {
				return fmt.Errorf("%s/%d: depth %d, upstream's %d", p.id, k, sb.depth, s.subs[s.at(sb.up, k)].depth)
			}
			if s.p.MaxDepth > 0 && int(sb.depth) > s.p.MaxDepth {
				return fmt.Errorf("%s/%d: depth %d > max %d", p.id, k, sb.depth, s.p.MaxDepth)
			}
			// No cycle: the walk up reaches a root within len(peers) steps.
			x, steps := i, 0
			for s.subs[s.at(x, k)].up != none {
				x = s.subs[s.at(x, k)].up
				if x == i || steps > len(s.peers) {
					return fmt.Errorf("%s/%d: cycle", p.id, k)
				}
				steps++
			}
			if assigned && !s.peers[x].isOrigin() {
				return fmt.Errorf("%s/%d: root %s is not an origin", p.id, k, s.peers[x].id)
			}
			if !slices.Contains(set, sb.up) {
				set = append(set, sb.up)
			}
		}
		// Out of bounds only where the policy found nothing better (flagged).
		undiverse := p.flags&flagUndiverse != 0
		if undiverse {
			st.Undiverse++
		}
		open := 0
		for _, u := range ups {
			if u == "" {
				open++
			}
		}
		out := len(set) > s.maxUp || len(set)+open < s.minUp
		if out && !undiverse && !exempt(p.id) {
			return fmt.Errorf("%s: %d distinct upstreams %v, want %d..%d", p.id, len(set), ups, s.minUp, s.maxUp)
		}
	}
	if alive != len(s.ids) {
		return fmt.Errorf("%d live peers, %d ids", alive, len(s.ids))
	}
	// Groups: what their members use and declare, within the allowance.
	for gi := range s.groups {
		g := &s.groups[gi]
		var used, decl, top int32
		for _, m := range g.members {
			pm := &s.peers[m]
			if !pm.alive() || pm.grp != int32(gi) {
				return fmt.Errorf("group %d: member %d is %s in group %d", gi, m, pm.id, pm.grp)
			}
			used, decl, top = used+pm.used, decl+pm.slots, max(top, pm.slots)
		}
		if len(g.members) == 0 && g.used != 0 {
			return fmt.Errorf("empty group %d uses %d", gi, g.used)
		}
		if g.used != used || g.decl != decl || g.top != top || g.used > g.allow {
			return fmt.Errorf("group %d (%v): used %d (members %d), declared %d (%d), top %d (%d), allowance %d",
				gi, g.addr, g.used, used, g.decl, decl, g.top, top, g.allow)
		}
		if g.addr.IsValid() && s.addrs[g.addr] != int32(gi) {
			return fmt.Errorf("group %d: address %v maps to %d", gi, g.addr, s.addrs[g.addr])
		}
		st.PeerSlots += int(max(min(decl, g.allow), 0))
	}
	if st != s.stats {
		return fmt.Errorf("stats %+v, counted %+v", s.stats, st)
	}
	if s.Len() != st.Viewers {
		return fmt.Errorf("Len %d, %d viewers", s.Len(), st.Viewers)
	}
	// The leaf index holds every displaceable leaf at its depth.
	entered := make([]bool, len(s.subs))
	n := 0
	for k := range s.leaves {
		for d, b := range s.leaves[k] {
			for _, x := range b {
				if int32(d) == s.subs[s.at(x, k)].depth {
					entered[s.at(x, k)] = true
				}
			}
			n += len(b)
		}
	}
	if n != s.leafN {
		return fmt.Errorf("leaf index: %d entries, counted %d", n, s.leafN)
	}
	for ii := range s.peers {
		for k := range s.k {
			i := int32(ii)
			if s.displaceable(i, k) && (!entered[s.at(i, k)] || s.subs[s.at(i, k)].leafAt != s.subs[s.at(i, k)].depth) {
				return fmt.Errorf("%s/%d: a leaf at depth %d, not in the leaf index", s.peers[i].id, k, s.subs[s.at(i, k)].depth)
			}
		}
	}
	return nil
}

func mustCheck(t testing.TB, s *Swarm) {
	t.Helper()
	if err := checkSwarm(s, true, all); err != nil {
		t.Fatal(err)
	}
}

// all exempts every viewer from the distinct-upstreams check (for hand-built
// trees); none_ exempts none.
func all(protocol.PeerID) bool   { return true }
func none_(protocol.PeerID) bool { return false }

func only(ids ...protocol.PeerID) func(protocol.PeerID) bool {
	return func(id protocol.PeerID) bool { return slices.Contains(ids, id) }
}

func TestNewSwarmParams(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	tests := []struct {
		name string
		p    SwarmParams
		ok   bool
	}{
		{"defaults", SwarmParams{BitrateKbps: 2500, Rand: r}, true},
		{"no bitrate", SwarmParams{Rand: r}, false},
		{"no rand", SwarmParams{BitrateKbps: 2500}, false},
		{"too many substreams", SwarmParams{BitrateKbps: 2500, Substreams: 65, Rand: r}, false},
		{"min above max", SwarmParams{BitrateKbps: 2500, MinUpstreams: 5, MaxUpstreams: 4, Rand: r}, false},
		{"negative depth", SwarmParams{BitrateKbps: 2500, MaxDepth: -1, Rand: r}, false},
		{"reserve 1", SwarmParams{BitrateKbps: 2500, Reserve: 1, Rand: r}, false},
		{"no reserve", SwarmParams{BitrateKbps: 2500, Reserve: -1, Rand: r}, true},
		{"delay too short", SwarmParams{BitrateKbps: 2500, Delay: 499 * time.Millisecond, Rand: r}, false},
		{"delay too long", SwarmParams{BitrateKbps: 2500, Delay: 31 * time.Second, Rand: r}, false},
		{"negative delay", SwarmParams{BitrateKbps: 2500, Delay: -time.Second, Rand: r}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSwarm(tt.p)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadParams)) {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (s.k != 4 || s.minUp != 3 || s.maxUp != 4 || s.Delay() != protocol.DefaultDelay) {
				t.Fatalf("defaults: K %d, upstreams %d..%d, delay %v", s.k, s.minUp, s.maxUp, s.Delay())
			}
		})
	}
}

func TestSlots(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{BitrateKbps: 3000}) // slot = 750 kbps
	for _, tt := range []struct{ budget, slots int }{
		{0, 0}, {-5, 0}, {749, 0}, {750, 1}, {1499, 1}, {1500, 2}, {12000, 16}, {1 << 40, maxSlots},
	} {
		if got := s.Slots(tt.budget); got != tt.slots {
			t.Errorf("Slots(%d) = %d, want %d", tt.budget, got, tt.slots)
		}
	}
}

func TestErrors(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{})
	if err := s.AddOrigin("o", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(t0, PeerInfo{ID: "a", Kind: protocol.KindBrowser}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"origin twice", s.AddOrigin("o", 4), ErrDuplicatePeer},
		{"origin without slots", s.AddOrigin("o2", 0), ErrBadPeer},
		{"duplicate viewer", join(s, PeerInfo{ID: "a", Kind: protocol.KindBrowser}), ErrDuplicatePeer},
		{"viewer named like the origin", join(s, PeerInfo{ID: "o", Kind: protocol.KindBrowser}), ErrDuplicatePeer},
		{"empty id", join(s, PeerInfo{Kind: protocol.KindBrowser}), ErrBadPeer},
		{"origin kind", join(s, PeerInfo{ID: "b", Kind: protocol.KindOrigin}), ErrBadPeer},
		{"unknown kind", join(s, PeerInfo{ID: "b", Kind: "toaster"}), ErrBadPeer},
		{"negative budget", join(s, PeerInfo{ID: "b", Kind: protocol.KindNative, BudgetKbps: -1}), ErrBadPeer},
		{"bad coordinates", join(s, PeerInfo{ID: "b", Kind: protocol.KindNative, Loc: coords(91, 0, "")}), ErrBadPeer},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d after failed joins, want 1", s.Len())
	}
	mustCheck(t, s)
	// The origin has 4 slots and "a" took them all; "a" relays nothing. A
	// viewer still joins, on HTTP: every link without an upstream.
	links, err := s.Join(t0, PeerInfo{ID: "c", Kind: protocol.KindBrowser})
	if err != nil || len(links) != 4 || s.Stats().Unassigned != 4 {
		t.Fatalf("join with the origin full: %v %+v, %d unassigned", err, links, s.Stats().Unassigned)
	}
	for _, l := range links {
		if l.Upstream != "" {
			t.Errorf("link %+v with nothing free", l)
		}
	}
	// Unknown peers are ignored by the calls that return no error.
	if s.Leave(t0, "zz") != nil || s.Complain(t0, "zz", "a") != nil || s.Complain(t0, "a", "zz") != nil ||
		s.SetBudget(t0, "zz", 1) != nil || s.Upstreams("zz") != nil || s.Downstreams("zz") != nil ||
		s.Linked("a", "zz") || s.Depth("zz", 0) != -1 || s.Depth("a", 4) != -1 {
		t.Fatal("unknown peer not ignored")
	}
	s.Report(t0, "zz", Health{})
}

func join(s *Swarm, pi PeerInfo) error {
	_, err := s.Join(t0, pi)
	return err
}

// TestPreference builds a small tree (K=1, one distinct upstream suffices)
// and checks which candidate a joiner gets. Candidate "b" always has more free
// slots than "a", so "a" wins only through the factor under test.
func TestPreference(t *testing.T) {
	type node struct {
		id     protocol.PeerID
		loc    Location
		slots  int
		up     protocol.PeerID // "o" for the origin
		kind   protocol.Kind
		health *Health
		pen    int // complaints against it at t0
		// gets: at t0+6s it reports receiving this share of what its link
		// from up needed (0: no receipt report).
		gets float64
	}
	a := func(loc Location, up protocol.PeerID) node { return node{id: "a", loc: loc, slots: 2, up: up} }
	b := func(loc Location, up protocol.PeerID) node { return node{id: "b", loc: loc, slots: 4, up: up} }
	prefix := func(p string) Location { return Location{Prefix: netip.MustParsePrefix(p)} }
	tests := []struct {
		name     string
		p        SwarmParams
		origin   int // origin slots, default 100
		nodes    []node
		joiner   PeerInfo
		at       time.Duration // join at t0 + at
		want     protocol.PeerID
		wantPrev int // with want "o": origin links before the join (reserve tests)
	}{
		{name: "nearer by coordinates",
			nodes:  []node{a(berlin, "o"), b(madrid, "o")},
			joiner: PeerInfo{Loc: hamburg}, want: "a"},
		{name: "same country without coordinates",
			nodes:  []node{a(Location{Country: "DE"}, "o"), b(Location{Country: "FR"}, "o")},
			joiner: PeerInfo{Loc: Location{Country: "DE"}}, want: "a"},
		{name: "same region without country",
			nodes:  []node{a(Location{Region: "eu-west"}, "o"), b(Location{Region: "us-east"}, "o")},
			joiner: PeerInfo{Loc: Location{Region: "eu-west"}}, want: "a"},
		{name: "same prefix",
			nodes:  []node{a(prefix("192.0.2.0/24"), "o"), b(prefix("198.51.100.0/24"), "o")},
			joiner: PeerInfo{Loc: prefix("192.0.2.0/24")}, want: "a"},
		{name: "same prefix beats coordinates",
			nodes:  []node{a(Location{Lat: 40, Lon: 0, HasCoords: true, Prefix: netip.MustParsePrefix("2001:db8:1::/48")}, "o"), b(hamburg, "o")},
			joiner: PeerInfo{Loc: Location{Lat: 53.5, Lon: 10, HasCoords: true, Prefix: netip.MustParsePrefix("2001:db8:1::/48")}}, want: "a"},
		{name: "same ASN when equally near",
			nodes:  []node{a(withASN(berlin, 3320), "o"), b(withASN(berlin, 64500), "o")},
			joiner: PeerInfo{Loc: withASN(berlin, 3320)}, want: "a"},
		{name: "shallower when equally near",
			nodes:  []node{{id: "c", loc: berlin, slots: 1, up: "o"}, a(berlin, "o"), b(berlin, "c")},
			joiner: PeerInfo{Loc: berlin}, want: "a"},
		{name: "nearer beats shallower",
			nodes:  []node{{id: "c", loc: tokyo, slots: 1, up: "o"}, a(berlin, "c"), b(tokyo, "o")},
			joiner: PeerInfo{Loc: berlin}, want: "a"},
		{name: "much deeper is demoted",
			nodes: []node{
				{id: "c", loc: berlin, slots: 1, up: "o"}, {id: "d", loc: berlin, slots: 1, up: "c"},
				{id: "e", loc: berlin, slots: 1, up: "d"}, b(berlin, "e"), a(madrid, "o")},
			joiner: PeerInfo{Loc: berlin}, want: "a"},
		{name: "good buffer",
			nodes:  []node{a(berlin, "o"), {id: "b", loc: berlin, slots: 4, up: "o", health: &Health{BufferSec: 0.2}}},
			joiner: PeerInfo{Loc: berlin}, want: "a"},
		{name: "good buffer beats unknown",
			nodes:  []node{{id: "a", loc: berlin, slots: 2, up: "o", health: &Health{BufferSec: 5}}, b(berlin, "o")},
			joiner: PeerInfo{Loc: berlin}, want: "a"},
		{name: "under-delivering upstream",
			// c delivers half of what f needs: measured, not claimed. (Its
			// probation slots, 4, keep it a candidate.)
			p: SwarmParams{ProbationSlots: 4},
			nodes: []node{{id: "c", loc: berlin, slots: 4, up: "o", health: &Health{BufferSec: 5}},
				{id: "f", loc: berlin, up: "c", gets: 0.5}, {id: "a", loc: munich, slots: 2, up: "o"}},
			joiner: PeerInfo{Loc: berlin}, at: 6 * time.Second, want: "a"},
		{name: "claimed upload decides nothing",
			nodes: []node{{id: "c", loc: berlin, slots: 4, up: "o", health: &Health{BufferSec: 5, UploadKbps: 100}},
				{id: "f", loc: berlin, up: "c"}, {id: "a", loc: munich, slots: 2, up: "o", health: &Health{BufferSec: 5, UploadKbps: 10_000_000}}},
			joiner: PeerInfo{Loc: berlin}, want: "c"},
		{name: "a huge buffer claim buys nothing",
			// Any buffer of 2 s or more ranks the same: free slots decide.
			nodes:  []node{{id: "x", loc: berlin, slots: 1, up: "o", health: &Health{BufferSec: 120}}, {id: "y", loc: berlin, slots: 4, up: "o", health: &Health{BufferSec: 3}}},
			joiner: PeerInfo{Loc: berlin}, want: "y"},
		{name: "stale report counts as none",
			nodes:  []node{a(berlin, "o"), {id: "b", loc: berlin, slots: 4, up: "o", health: &Health{BufferSec: 0.2}}},
			joiner: PeerInfo{Loc: berlin}, at: time.Minute, want: "b"},
		{name: "clean reliability",
			nodes:  []node{a(berlin, "o"), {id: "b", loc: berlin, slots: 4, up: "o", pen: 1}},
			joiner: PeerInfo{Loc: berlin}, want: "a"},
		{name: "reliability recovers",
			nodes:  []node{a(berlin, "o"), {id: "b", loc: berlin, slots: 4, up: "o", pen: 1}},
			joiner: PeerInfo{Loc: berlin}, at: 2 * time.Hour, want: "b"},
		{name: "unreliable peer comes after a far one",
			nodes:  []node{a(tokyo, "o"), {id: "b", loc: berlin, slots: 4, up: "o", pen: 2}},
			joiner: PeerInfo{Loc: berlin}, want: "a"},
		{name: "unreliable peer before a full origin",
			origin: 3,
			nodes:  []node{{id: "b", loc: berlin, slots: 4, up: "o", pen: 2}, {id: "c", loc: tokyo, up: "o"}, {id: "d", loc: tokyo, up: "o"}},
			joiner: PeerInfo{Loc: berlin}, want: "b"},
		{name: "max depth",
			p:      SwarmParams{MaxDepth: 2},
			nodes:  []node{{id: "c", loc: berlin, slots: 1, up: "o"}, b(berlin, "c")},
			joiner: PeerInfo{Loc: berlin}, want: "o"},
		{name: "origin as last resort",
			nodes:  []node{{id: "c", loc: berlin, up: "o"}},
			joiner: PeerInfo{Loc: berlin}, want: "o"},
		{name: "relay goes to the origin rather than deep",
			// Probation slots enough to be a relay (2K) from the start.
			p:      SwarmParams{ProbationSlots: 2},
			nodes:  []node{{id: "c", loc: berlin, slots: 1, up: "o"}, b(berlin, "c")},
			joiner: PeerInfo{Loc: berlin, BudgetKbps: 8000}, want: "o"},
		{name: "a relay on probation is no relay yet",
			nodes:  []node{{id: "c", loc: berlin, slots: 1, up: "o"}, b(berlin, "c")},
			joiner: PeerInfo{Loc: berlin, BudgetKbps: 8000}, want: "b"},
		{name: "relay takes a shallow peer",
			nodes:  []node{b(berlin, "o")},
			joiner: PeerInfo{Loc: berlin, BudgetKbps: 8000}, want: "b"},
		{name: "viewer with few slots stays off the origin",
			nodes:  []node{{id: "c", loc: berlin, slots: 1, up: "o"}, b(berlin, "c")},
			joiner: PeerInfo{Loc: berlin, BudgetKbps: 1000}, want: "b"},
		{name: "relay does not take the origin's reserve",
			p:      SwarmParams{Reserve: 0.5},
			origin: 4, // 2 reserved; "c" and "d" use the other 2 (both relays: no leaf to move under the joiner)
			nodes:  []node{{id: "c", loc: berlin, slots: 1, up: "o"}, {id: "d", loc: berlin, slots: 1, up: "o"}, b(berlin, "c")},
			joiner: PeerInfo{Loc: berlin, BudgetKbps: 8000}, want: "d"},
		{name: "last resort takes the origin's reserve",
			p:      SwarmParams{Reserve: 0.5},
			origin: 4,
			nodes:  []node{{id: "c", loc: berlin, up: "o"}, {id: "d", loc: berlin, up: "o"}, {id: "e", loc: berlin, up: "o"}},
			joiner: PeerInfo{Loc: berlin}, want: "o"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.Substreams, p.MinUpstreams = 1, 1
			s := newTestSwarm(t, p)
			if err := s.AddOrigin("o", cmpOr(tt.origin, 100)); err != nil {
				t.Fatal(err)
			}
			for _, n := range tt.nodes {
				force(t, s, t0, PeerInfo{ID: n.id, Kind: protocol.KindNative, Loc: n.loc, BudgetKbps: budget(s, n.slots)}, n.up)
				if n.health != nil {
					s.Report(t0, n.id, *n.health)
				}
				for range n.pen {
					s.penalise(t0, s.ids[n.id], complaintPenalty)
				}
			}
			for _, n := range tt.nodes {
				if n.gets > 0 {
					// Its link needed 4 s of one slot (6 s less the grace).
					need := 4 * float64(s.p.BitrateKbps) / float64(s.k) * 1000 / 8
					r := protocol.Report{BufferSec: 5, Received: []protocol.Receipt{{Peer: n.up, Bytes: uint64(n.gets * need)}}}
					s.TakeReport(t0.Add(6*time.Second), n.id, &r, 0)
				}
			}
			mustCheck(t, s)
			j := tt.joiner
			j.ID, j.Kind = "j", protocol.KindNative
			links, err := s.Join(t0.Add(tt.at), j)
			if err != nil {
				t.Fatal(err)
			}
			want := []Link{{Peer: "j", Upstream: tt.want, Reason: ReasonJoin}}
			if !reflect.DeepEqual(links, want) {
				t.Fatalf("links = %+v, want %+v", links, want)
			}
			mustCheck(t, s)
		})
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// TestDistinctUpstreams checks the MinUpstreams..MaxUpstreams rule at join.
func TestDistinctUpstreams(t *testing.T) {
	tests := []struct {
		name       string
		k, lo, hi  int
		candidates int // viewers with spare slots near the joiner
		want       [2]int
	}{
		{"default", 4, 0, 0, 10, [2]int{3, 4}},
		{"all different", 4, 4, 4, 10, [2]int{4, 4}},
		{"capped by max", 8, 3, 6, 20, [2]int{3, 6}},
		{"at most max", 8, 2, 2, 20, [2]int{2, 2}},
		{"only the origin", 4, 0, 0, 0, [2]int{1, 1}},
		{"one peer and the origin", 4, 0, 0, 1, [2]int{2, 2}},
		{"min capped by K", 2, 3, 6, 10, [2]int{2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSwarm(t, SwarmParams{Substreams: tt.k, MinUpstreams: tt.lo, MaxUpstreams: tt.hi})
			if err := s.AddOrigin("o", 1000); err != nil {
				t.Fatal(err)
			}
			for c := range tt.candidates {
				force(t, s, t0, PeerInfo{ID: protocol.PeerID(fmt.Sprint("c", c)), Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 3*tt.k)}, repeat("o", tt.k)...)
			}
			links, err := s.Join(t0, PeerInfo{ID: "j", Kind: protocol.KindBrowser, Loc: berlin})
			if err != nil {
				t.Fatal(err)
			}
			var set []protocol.PeerID
			for _, l := range links {
				if !slices.Contains(set, l.Upstream) {
					set = append(set, l.Upstream)
				}
			}
			if n := len(set); n < tt.want[0] || n > tt.want[1] || len(links) != tt.k {
				t.Fatalf("%d links, %d distinct upstreams %v, want %d..%d", len(links), n, set, tt.want[0], tt.want[1])
			}
			if err := checkSwarm(s, true, func(id protocol.PeerID) bool { return id != "j" }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// buildSwarm joins n viewers with the synthetic mix used by the benchmarks.
func buildSwarm(t testing.TB, p SwarmParams, n int, seed uint64) (s *Swarm, ids []protocol.PeerID) {
	t.Helper()
	s = newTestSwarm(t, p)
	if err := s.AddOrigin("o", n*s.k); err != nil {
		t.Fatal(err)
	}
	g := newPeerGen(s, seed)
	ids = make([]protocol.PeerID, 0, n)
	for range n {
		pi := g.next()
		if _, err := s.Join(t0, pi); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, pi.ID)
	}
	return s, ids
}

func TestLeaveReassignsEveryOrphan(t *testing.T) {
	s, ids := buildSwarm(t, SwarmParams{}, 2000, 7)
	exempt := none_
	if err := checkSwarm(s, true, exempt); err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, id := range ids {
		down := s.Downstreams(id)
		if len(down) < 3 {
			continue
		}
		// Remember each orphan's own subtree (its downstream links).
		subtrees := map[protocol.PeerID][]Link{}
		want := map[Link]bool{}
		for _, d := range down {
			// The peer leaving goes from its orphans' subtrees with it
			// (it may relay one substream to a viewer that relays it
			// another).
			subtrees[d.Peer] = slices.DeleteFunc(s.Downstreams(d.Peer), func(l Link) bool { return l.Peer == id })
			want[Link{Peer: d.Peer, Substream: d.Substream}] = true
		}
		links := s.Leave(t0, id)
		last := map[Link]Link{} // (peer, substream) → its last link
		displaced := map[Link]bool{}
		for _, l := range links {
			key := Link{Peer: l.Peer, Substream: l.Substream}
			last[key] = l
			if l.Reason == ReasonRebalance {
				// A leaf moved under a relay orphan that took its place,
				// or displaced by one (and placed anew).
				displaced[Link{Peer: l.Prev, Substream: l.Substream, Upstream: l.Peer}] = true
				continue
			}
			if l.Prev != id || l.Reason != ReasonUpstreamLeft || l.Upstream == "" || l.Upstream == id {
				t.Fatalf("link %+v", l)
			}
			if !want[key] {
				t.Fatalf("unexpected or repeated link %+v", l)
			}
			delete(want, key)
		}
		if len(want) != 0 {
			t.Fatalf("orphans left without a link: %v", want)
		}
		for key, l := range last {
			if s.Upstreams(l.Peer)[l.Substream] != l.Upstream {
				t.Fatalf("link %+v not in effect (of %v)", l, key)
			}
		}
		// Each orphan keeps its subtree, but for leaves another orphan
		// displaced, and gains only what this leave's links put under it.
		for o, sub := range subtrees {
			got := s.Downstreams(o)
			kept := slices.DeleteFunc(slices.Clone(got), func(l Link) bool {
				nl, ok := last[Link{Peer: l.Peer, Substream: l.Substream}]
				return ok && nl.Upstream == o && !slices.ContainsFunc(sub, func(x Link) bool { return x.Peer == l.Peer && x.Substream == l.Substream })
			})
			sub = slices.DeleteFunc(slices.Clone(sub), func(x Link) bool {
				return displaced[Link{Peer: o, Substream: x.Substream, Upstream: x.Peer}] && !slices.ContainsFunc(got, func(l Link) bool { return l.Peer == x.Peer && l.Substream == x.Substream })
			})
			if !sameLinks(kept, sub) {
				t.Fatalf("%s: subtree changed from %v to %v", o, sub, got)
			}
		}
		if err := checkSwarm(s, true, exempt); err != nil {
			t.Fatal(err)
		}
		if left++; left == 50 {
			break
		}
	}
	if left < 50 {
		t.Fatalf("only %d peers with 3+ downstreams", left)
	}
}

func sameLinks(a, b []Link) bool {
	key := func(l Link) string { return fmt.Sprint(l.Peer, "/", l.Substream) }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = key(a[i])
	}
	for i := range b {
		kb[i] = key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// TestNoCycle: when c complains about its upstream b (or reports it stalled),
// c (with subtree d) must not be given d — the nearest and freest candidate —
// nor b.
func TestNoCycle(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1})
	if err := s.AddOrigin("o", 10); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, Loc: tokyo, BudgetKbps: budget(s, 2)}, "o")
	force(t, s, t0, PeerInfo{ID: "b", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 2)}, "a")
	force(t, s, t0, PeerInfo{ID: "c", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 1)}, "b")
	force(t, s, t0, PeerInfo{ID: "d", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 8)}, "c")
	links := s.Complain(t0, "c", "b")
	want := []Link{{Peer: "c", Upstream: "a", Prev: "b", Reason: ReasonComplaint}}
	if !reflect.DeepEqual(links, want) {
		t.Fatalf("links = %+v, want %+v", links, want)
	}
	if s.Depth("c", 0) != 2 || s.Depth("d", 0) != 3 {
		t.Fatalf("depths c %d d %d, want 2 3 (subtree shifted)", s.Depth("c", 0), s.Depth("d", 0))
	}
	mustCheck(t, s)
	// The peer complained about keeps its own upstream and may serve again.
	if ups := s.Upstreams("b"); !slices.Equal(ups, []protocol.PeerID{"a"}) {
		t.Fatalf("b's upstreams %v", ups)
	}
}

func TestCapacityNeverOversubscribed(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{})
	if err := s.AddOrigin("o", 8); err != nil {
		t.Fatal(err)
	}
	// One relay with 5 slots, then viewers without slots: the relay serves 5
	// links, the origin its 4 and 3 more; the next viewer needs 4 links but
	// finds 1 free slot, so it takes it and waits (HTTP) for the other 3.
	if _, err := s.Join(t0, PeerInfo{ID: "r", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 5)}); err != nil {
		t.Fatal(err)
	}
	trust(t, s, "r") // its 5 slots, not the 4 of its probation
	joined := 0
	for j := range 10 {
		links, err := s.Join(t0, PeerInfo{ID: protocol.PeerID(fmt.Sprint("v", j)), Kind: protocol.KindBrowser, Loc: berlin})
		if err != nil {
			t.Fatal(err)
		}
		waiting := 0
		for _, l := range links {
			if l.Upstream == "" {
				waiting++
			}
		}
		if waiting > 0 {
			if waiting != 3 || s.Stats().Unassigned != 3 {
				t.Fatalf("viewer %d waits on %d substreams, %d unassigned; want 3", j, waiting, s.Stats().Unassigned)
			}
			break
		}
		joined++
		if err := checkSwarm(s, true, all); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkSwarm(s, false, all); err != nil {
		t.Fatal(err)
	}
	if joined != 2 || len(s.Downstreams("r")) != 5 || len(s.Downstreams("o")) != 8 || s.Len() != 4 {
		t.Fatalf("joined %d, relay serves %d, origin %d, %d viewers", joined, len(s.Downstreams("r")), len(s.Downstreams("o")), s.Len())
	}
}

func TestLateJoinerInBusySwarm(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{})
	if err := s.AddOrigin("o", 400); err != nil {
		t.Fatal(err)
	}
	// Fill every viewer slot: relays first, then browsers that relay nothing.
	for j := range 20 {
		if _, err := s.Join(t0, PeerInfo{ID: protocol.PeerID(fmt.Sprint("r", j)), Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 6)}); err != nil {
			t.Fatal(err)
		}
	}
	for j := 0; s.Stats().PeerLinks < s.Stats().PeerSlots; j++ {
		if _, err := s.Join(t0, PeerInfo{ID: protocol.PeerID(fmt.Sprint("b", j)), Kind: protocol.KindBrowser, Loc: berlin}); err != nil {
			t.Fatal(err)
		}
	}
	links, err := s.Join(t0, PeerInfo{ID: "late", Kind: protocol.KindBrowser, Loc: tokyo})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Upstream != "o" {
			t.Fatalf("late joiner got %+v, want the origin", l)
		}
	}
	if err := checkSwarm(s, true, none_); err != nil {
		t.Fatal(err)
	}
}

func TestComplain(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 2, MinUpstreams: 1})
	if err := s.AddOrigin("o", 10); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 4)}, "o", "o")
	force(t, s, t0, PeerInfo{ID: "b", Kind: protocol.KindNative, Loc: madrid, BudgetKbps: budget(s, 4)}, "o", "o")
	force(t, s, t0, PeerInfo{ID: "v", Kind: protocol.KindBrowser, Loc: berlin}, "a", "b")
	if got := s.Complain(t0, "v", "o"); got != nil { // not v's upstream
		t.Fatalf("complaint about a non-upstream: %+v", got)
	}
	if got := s.Complain(t0, "a", "v"); got != nil { // v is a's downstream, not upstream
		t.Fatalf("complaint about a downstream: %+v", got)
	}
	if s.penalty(t0, s.ids["v"]) != 0 {
		t.Fatal("penalty for an unlinked complaint")
	}
	links := s.Complain(t0, "v", "a")
	want := []Link{{Peer: "v", Substream: 0, Upstream: "b", Prev: "a", Reason: ReasonComplaint}}
	if !reflect.DeepEqual(links, want) {
		t.Fatalf("links = %+v, want %+v", links, want)
	}
	if s.penalty(t0, s.ids["a"]) != complaintPenalty || s.Linked("v", "a") {
		t.Fatal("complaint not recorded")
	}
	mustCheck(t, s)
}

func TestSetBudget(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1})
	if err := s.AddOrigin("o", 10); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 3)}, "o")
	force(t, s, t0, PeerInfo{ID: "b", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 3)}, "o")
	for _, v := range []protocol.PeerID{"v1", "v2", "v3"} {
		force(t, s, t0, PeerInfo{ID: v, Kind: protocol.KindBrowser, Loc: berlin}, "a")
	}
	links := s.SetBudget(t0, "a", budget(s, 1))
	if len(links) != 2 || len(s.Downstreams("a")) != 1 || len(s.Downstreams("b")) != 2 {
		t.Fatalf("links %+v; a serves %d, b %d", links, len(s.Downstreams("a")), len(s.Downstreams("b")))
	}
	for _, l := range links {
		if l.Reason != ReasonBudget || l.Prev != "a" || l.Upstream != "b" {
			t.Fatalf("link %+v", l)
		}
	}
	mustCheck(t, s)
	if links := s.SetBudget(t0, "a", 0); len(links) != 1 || s.Stats().PeerSlots != 3 {
		t.Fatalf("relay off: %+v, stats %+v", links, s.Stats())
	}
	mustCheck(t, s)
}

// TestSetBudgetOffers: a relay-off viewer that turns its relay on, in a
// small swarm where every relay still has free slots (so no orphan or
// newcomer needs it), takes a leaf's place at once and relays to it.
func TestSetBudgetOffers(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1})
	if err := s.AddOrigin("o", 10); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 4)}, "o")
	force(t, s, t0, PeerInfo{ID: "off", Kind: protocol.KindBrowser, Loc: berlin}, "a")
	force(t, s, t0, PeerInfo{ID: "leaf", Kind: protocol.KindBrowser, Loc: berlin}, "o")
	links := s.SetBudget(t0, "off", budget(s, 2))
	mustCheck(t, s)
	if d := s.Downstreams("off"); len(d) != 1 || d[0].Peer != "leaf" {
		t.Fatalf("after relay on, off serves %+v (links %+v); want the leaf", d, links)
	}
	if ups := s.Upstreams("off"); ups[0] != "o" {
		t.Fatalf("off's upstream is %q; want the origin, whose leaf it took", ups[0])
	}
	// Growing again while it relays changes nothing.
	if links := s.SetBudget(t0, "off", budget(s, 3)); len(links) != 0 {
		t.Fatalf("a relay that grows: links %+v", links)
	}
	mustCheck(t, s)
}

// TestPending: with the origins full, an orphan fetches over HTTP (empty
// Upstream) until capacity appears.
func TestPending(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1})
	if err := s.AddOrigin("o", 1); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 1)}, "o")
	force(t, s, t0, PeerInfo{ID: "b", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 1)}, "a")
	force(t, s, t0, PeerInfo{ID: "c", Kind: protocol.KindNative, Loc: berlin}, "b")
	s.penalise(t0, s.ids["a"], complaintPenalty) // complained about before: with b's complaint, unreliable
	links := s.Complain(t0, "b", "a")
	want := []Link{{Peer: "b", Prev: "a", Reason: ReasonComplaint}}
	if !reflect.DeepEqual(links, want) || s.Stats().Unassigned != 1 || s.Depth("b", 0) != -1 {
		t.Fatalf("links %+v, stats %+v", links, s.Stats())
	}
	if err := checkSwarm(s, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddOrigin("o2", 10); err != nil {
		t.Fatal(err)
	}
	links = s.Rebalance(t0)
	want = []Link{{Peer: "b", Upstream: "o2", Reason: ReasonPending}}
	if !reflect.DeepEqual(links, want) || s.Depth("c", 0) != 2 {
		t.Fatalf("links %+v, c at depth %d", links, s.Depth("c", 0))
	}
	mustCheck(t, s)
}

// TestRebalancePromotesRelays: a long-lived relay deep in the tree moves to
// the origin; a leaf browser makes room for it when the origin is full.
func TestRebalancePromotesRelays(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprint("origin full ", full), func(t *testing.T) {
			s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1, Reserve: -1})
			slots := 3
			if full {
				slots = 2
			}
			if err := s.AddOrigin("o", slots); err != nil {
				t.Fatal(err)
			}
			force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 2)}, "o")
			force(t, s, t0, PeerInfo{ID: "leaf", Kind: protocol.KindBrowser, Loc: berlin}, "o")
			force(t, s, t0, PeerInfo{ID: "b", Kind: protocol.KindBrowser, Loc: berlin, BudgetKbps: budget(s, 1)}, "a")
			force(t, s, t0, PeerInfo{ID: "r", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: budget(s, 8)}, "b")
			force(t, s, t0, PeerInfo{ID: "x", Kind: protocol.KindBrowser, Loc: berlin}, "r")
			if got := s.Rebalance(t0.Add(5 * time.Second)); len(got) != 0 {
				t.Fatalf("young relay promoted: %+v", got)
			}
			links := s.Rebalance(t0.Add(2 * time.Minute))
			if s.Depth("r", 0) != 1 || s.Depth("x", 0) != 2 {
				t.Fatalf("links %+v: relay at depth %d", links, s.Depth("r", 0))
			}
			if full && (len(links) != 2 || links[0].Peer != "leaf" || s.Upstreams("leaf")[0] == "o") {
				t.Fatalf("links %+v", links)
			}
			mustCheck(t, s)
		})
	}
}

func TestLinkedAndQueries(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 2, MinUpstreams: 1})
	if err := s.AddOrigin("o", 10); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, BudgetKbps: budget(s, 2)}, "o", "o")
	force(t, s, t0, PeerInfo{ID: "b", Kind: protocol.KindNative}, "a", "o")
	force(t, s, t0, PeerInfo{ID: "c", Kind: protocol.KindNative}, "o", "a")
	for _, tt := range []struct {
		a, b protocol.PeerID
		want bool
	}{{"a", "b", true}, {"b", "a", true}, {"c", "a", true}, {"b", "c", false}, {"a", "a", false}, {"o", "b", true}} {
		if got := s.Linked(tt.a, tt.b); got != tt.want {
			t.Errorf("Linked(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
	if got := s.Upstreams("b"); !slices.Equal(got, []protocol.PeerID{"a", "o"}) {
		t.Errorf("Upstreams(b) = %v", got)
	}
	if got := s.Downstreams("a"); !sameLinks(got, []Link{{Peer: "b", Substream: 0}, {Peer: "c", Substream: 1}}) {
		t.Errorf("Downstreams(a) = %v", got)
	}
	if s.Depth("o", 1) != 0 || s.Depth("b", 0) != 2 || s.Depth("b", 1) != 1 || s.Upstreams("o") != nil {
		t.Error("depths")
	}
}

// ---- randomized property test ----

// peerGen makes synthetic viewers: 60% browsers with 0–2 slots, 30% natives
// with 4–16, 10% relay off; cities on several continents, 15% without
// coordinates (country, region or prefix only).
type peerGen struct {
	s   *Swarm
	r   *rand.Rand
	n   int
	buf []byte
}

type city struct {
	lat, lon float64
	cc       string
	asn      uint32
}

var cities = []city{
	{52.52, 13.40, "DE", 3320}, {48.14, 11.58, "DE", 3320}, {48.86, 2.35, "FR", 3215}, {51.51, -0.13, "GB", 2856},
	{40.42, -3.70, "ES", 3352}, {41.90, 12.50, "IT", 3269}, {52.23, 21.01, "PL", 5617}, {59.33, 18.07, "SE", 3301},
	{40.71, -74.01, "US", 7922}, {34.05, -118.24, "US", 7018}, {41.88, -87.63, "US", 7922}, {43.65, -79.38, "CA", 812},
	{-23.55, -46.63, "BR", 28573}, {19.43, -99.13, "MX", 8151}, {35.68, 139.69, "JP", 2516}, {37.57, 126.98, "KR", 4766},
	{28.61, 77.21, "IN", 9829}, {1.35, 103.82, "SG", 9506}, {-33.87, 151.21, "AU", 1221}, {-26.20, 28.05, "ZA", 37457},
}

var regions = []string{"eu-west", "eu-central", "us-east", "us-west", "ap-south", ""}

func newPeerGen(s *Swarm, seed uint64) *peerGen {
	return &peerGen{s: s, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (g *peerGen) next() PeerInfo {
	r := g.r
	g.n++
	g.buf = fmt.Appendf(g.buf[:0], "p%07d", g.n)
	pi := PeerInfo{ID: protocol.PeerID(g.buf), Kind: protocol.KindBrowser}
	slot := g.s.p.BitrateKbps / g.s.k
	switch x := r.IntN(10); {
	case x < 6:
		pi.BudgetKbps = r.IntN(3) * slot
	case x < 9:
		pi.Kind = protocol.KindNative
		pi.BudgetKbps = (4 + r.IntN(13)) * slot
	}
	c := cities[r.IntN(len(cities))]
	pi.Loc.Region = regions[r.IntN(len(regions))]
	pi.Loc.Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(c.asn), byte(c.asn >> 8), byte(r.IntN(4)), 0}), 24)
	switch x := r.IntN(20); {
	case x < 17:
		pi.Loc.HasCoords = true
		pi.Loc.Lat = c.lat + r.Float64()*2 - 1
		pi.Loc.Lon = c.lon + r.Float64()*2 - 1
		pi.Loc.Country, pi.Loc.ASN = c.cc, c.asn
	case x < 19:
		pi.Loc.Country = c.cc
	}
	return pi
}

type churnLog struct {
	links []Link
	errs  int
}

// churn runs ops random operations on s, checking every invariant after each.
func churn(t *testing.T, s *Swarm, seed uint64, ops int, assigned bool, log *churnLog) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	g := newPeerGen(s, seed)
	var live []protocol.PeerID
	told := map[subOf]protocol.PeerID{} // what the links said, in order
	now := t0
	for step := range ops {
		now = now.Add(time.Duration(r.IntN(200)) * time.Millisecond)
		var links []Link
		op := r.IntN(100)
		if len(live) < 100 {
			op = 0 // grow first
		}
		what := ""
		switch {
		case op < 42:
			what = "join"
			pi := g.next()
			l, err := s.Join(now, pi)
			if err != nil {
				t.Fatalf("step %d: join: %v", step, err)
			}
			for _, x := range l {
				if x.Upstream == "" {
					log.errs++ // a substream on HTTP: the origin ran out
					break
				}
			}
			links = l
			live = append(live, pi.ID)
		case op < 65:
			what = "leave"
			j := r.IntN(len(live))
			id := live[j]
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			orphans := s.Downstreams(id)
			links = s.Leave(now, id)
			if !coversOrphans(links, orphans) {
				t.Fatalf("step %d: leave %s: links %+v for orphans %+v", step, id, links, orphans)
			}
		case op < 75:
			what = "complain"
			id := live[r.IntN(len(live))]
			if ups := s.Upstreams(id); ups[r.IntN(len(ups))] != "" {
				links = s.Complain(now, id, ups[r.IntN(len(ups))])
			}
		case op < 80:
			// A stall: every downstream reports id stalled, which the
			// server passes on as a complaint each.
			what = "stall"
			id := live[r.IntN(len(live))]
			orphans := s.Downstreams(id)
			links = nil
			for _, o := range orphans {
				links = append(links, s.Complain(now, o.Peer, id)...)
			}
			if !coversOrphans(links, orphans) {
				t.Fatalf("step %d: stall %s: links %+v for orphans %+v", step, id, links, orphans)
			}
		case op < 85:
			what = "report"
			s.Report(now, live[r.IntN(len(live))], Health{BufferSec: r.Float64() * 6, UploadKbps: r.IntN(20000), RTTms: r.IntN(1500)})
		case op < 90:
			// A report with receipts: upstreams are measured, and their
			// allowances grow or shrink.
			what = "receipts"
			id := live[r.IntN(len(live))]
			rep := protocol.Report{BufferSec: r.Float64() * 6, BytesFromPeers: r.Uint64N(1 << 24)}
			for _, u := range s.Upstreams(id) {
				if u != "" && !slices.ContainsFunc(rep.Received, func(x protocol.Receipt) bool { return x.Peer == u }) {
					rep.Received = append(rep.Received, protocol.Receipt{Peer: u, Bytes: r.Uint64N(uint64(s.p.BitrateKbps) * 1000)})
				}
			}
			links = s.TakeReport(now, id, &rep, 0)
		case op < 96:
			what = "budget"
			links = s.SetBudget(now, live[r.IntN(len(live))], r.IntN(12)*s.p.BitrateKbps/s.k)
		default:
			what = "rebalance"
			now = now.Add(10 * time.Second)
			links = s.Rebalance(now)
		}
		for _, l := range links {
			if l.Upstream == l.Peer || (l.Upstream == "" && assigned) {
				t.Fatalf("step %d: %s: bad link %+v", step, what, l)
			}
		}
		log.links = append(log.links, links...)
		if err := checkSwarm(s, assigned, none_); err != nil {
			t.Fatalf("step %d (%s, %d viewers): %v\nlinks %+v", step, what, s.Len(), err, links)
		}
		// Every change of a viewer's upstream is told in a link: the
		// links applied in order give what the tracker holds.
		for _, l := range links {
			told[subOf{l.Peer, l.Substream}] = l.Upstream
		}
		check := live
		if step%64 != 0 { // every viewer now and then; those moved at every step
			check = check[:0:0]
			for _, l := range links {
				check = append(check, l.Peer)
			}
		}
		for _, id := range check {
			for k, u := range s.Upstreams(id) {
				if got := told[subOf{id, k}]; got != u {
					t.Fatalf("step %d (%s): %s's substream %d is under %q, but the links said %q\nlinks %+v", step, what, id, k, u, got, links)
				}
			}
		}
	}
}

// subOf is one viewer's substream.
type subOf struct {
	peer protocol.PeerID
	k    int
}

// coversOrphans reports whether links give each orphan (peer, substream) of
// a leave or stall exactly one new link, not to the old upstream.
func coversOrphans(links, orphans []Link) bool {
	if len(links) < len(orphans) {
		return false
	}
	for _, o := range orphans {
		// The orphan's first link replaces its old upstream; a later one in
		// the same batch (a swap) moves it on from the one before.
		n, prev := 0, o.Upstream
		for _, l := range links {
			if l.Peer == o.Peer && l.Substream == o.Substream {
				if l.Upstream == prev || l.Prev != prev {
					return false
				}
				prev = l.Upstream
				n++
			}
		}
		if n == 0 {
			return false
		}
	}
	return true
}

func TestChurnInvariants(t *testing.T) {
	tests := []struct {
		name     string
		p        SwarmParams
		origins  []int
		assigned bool // the origins never run out
	}{
		{"defaults", SwarmParams{}, []int{20000}, true},
		{"max depth 3", SwarmParams{MaxDepth: 3}, []int{20000}, true},
		{"one substream", SwarmParams{Substreams: 1, MinUpstreams: 1}, []int{5000}, true},
		{"eight substreams", SwarmParams{Substreams: 8, MinUpstreams: 3, MaxUpstreams: 6}, []int{40000}, true},
		{"two origins, big reserve", SwarmParams{Reserve: 0.5}, []int{5000, 5000}, true},
		{"scarce origin", SwarmParams{}, []int{150}, false},
		{"scarce origin, max depth 2", SwarmParams{MaxDepth: 2}, []int{300}, false},
	}
	ops := 5000
	if testing.Short() {
		ops = 1000
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSwarm(t, tt.p)
			for j, n := range tt.origins {
				if err := s.AddOrigin(protocol.PeerID(fmt.Sprint("origin", j)), n); err != nil {
					t.Fatal(err)
				}
			}
			var log churnLog
			churn(t, s, 42, ops, tt.assigned, &log)
			st := s.Stats()
			t.Logf("%d viewers, %d links, %d from origins, %d unassigned, %d undiverse, %d joins refused",
				st.Viewers, len(log.links), st.OriginLinks, st.Unassigned, st.Undiverse, log.errs)
		})
	}
}

func TestDeterministic(t *testing.T) {
	run := func() churnLog {
		s := newTestSwarm(t, SwarmParams{Rand: rand.New(rand.NewPCG(5, 6))})
		if err := s.AddOrigin("o", 400); err != nil {
			t.Fatal(err)
		}
		var log churnLog
		churn(t, s, 11, 1500, false, &log)
		return log
	}
	a, b := run(), run()
	if len(a.links) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs differ (%d and %d links)", len(a.links), len(b.links))
	}
}

// TestSwapIn: an early viewer with relay off holds all of the origin's
// slots; a relay that joins after it waits on HTTP. The next rebalance
// gives the relay the origin's slots and puts the relay-off viewer behind
// it, so the origin still sends one copy and the relay can carry it on.
func TestSwapIn(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{})
	if err := s.AddOrigin("o", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(t0, PeerInfo{ID: "off", Kind: protocol.KindBrowser}); err != nil {
		t.Fatal(err)
	}
	links, err := s.Join(t0, PeerInfo{ID: "relay", Kind: protocol.KindNative, BudgetKbps: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	// At once it takes "off"'s place on its home substream (insert), and
	// "off" hangs under it there; its other substreams wait.
	home := -1
	for _, l := range links {
		switch {
		case l.Peer == "relay" && l.Upstream == "o" && home < 0:
			home = l.Substream
		case l.Peer == "relay" && l.Upstream != "":
			t.Fatalf("the relay got %s on %d with the origin full", l.Upstream, l.Substream)
		case l.Peer == "off" && (l.Upstream != "relay" || l.Substream != home):
			t.Fatalf("link %+v: want off under relay on the relay's home %d", l, home)
		}
	}
	if len(links) != 5 || home < 0 {
		t.Fatalf("links %+v: want the relay's 4 (its home substream from the origin) and off's move", links)
	}
	// A relay proven already (a relay on probation would serve "off" one
	// substream only).
	trust(t, s, "relay")
	links = s.Rebalance(t0.Add(2 * time.Second))
	// Two viewers cannot have three distinct upstreams each.
	if err := checkSwarm(s, true, func(protocol.PeerID) bool { return true }); err != nil {
		t.Fatal(err)
	}
	for k, u := range s.Upstreams("relay") {
		if u != "o" {
			t.Errorf("relay's substream %d: upstream %q, want the origin", k, u)
		}
	}
	for k, u := range s.Upstreams("off") {
		if u != "relay" {
			t.Errorf("relay-off viewer's substream %d: upstream %q, want the relay", k, u)
		}
		if d := s.Depth("off", k); d != 2 {
			t.Errorf("relay-off viewer's substream %d at depth %d", k, d)
		}
	}
	if len(links) != 6 {
		t.Errorf("%d links, want 3 for the relay and 3 for the viewer moved behind it: %+v", len(links), links)
	}
	if st := s.Stats(); st.OriginLinks != 4 {
		t.Errorf("origin links %d, want 4 (one copy)", st.OriginLinks)
	}
}

// TestSetBitrate: slots follow the stream's bitrate. A relay sized for a
// heavy stream gains slots when the stream turns out lighter, and one left
// with more downstreams than slots when it turns out heavier has the excess
// reassigned.
func TestSetBitrate(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1, BitrateKbps: 1000})
	if err := s.AddOrigin("o", 2); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "r", Kind: protocol.KindNative, BudgetKbps: 4000}, "o")
	for i := range 4 {
		force(t, s, t0, PeerInfo{ID: protocol.PeerID(fmt.Sprint("v", i)), Kind: protocol.KindBrowser}, "r")
	}
	if links := s.SetBitrate(t0, 500); len(links) != 0 || s.peers[s.ids["r"]].slots != 8 {
		t.Fatalf("lighter stream: links %+v, relay slots %d, want 8", links, s.peers[s.ids["r"]].slots)
	}
	links := s.SetBitrate(t0, 2000)
	if got := s.peers[s.ids["r"]].slots; got != 2 {
		t.Fatalf("heavier stream: relay slots %d, want 2", got)
	}
	if len(links) != 2 {
		t.Fatalf("links %+v, want the 2 downstreams over the relay's new 2 slots moved", links)
	}
	for _, l := range links {
		if l.Prev != "r" || l.Upstream == "r" || l.Reason != ReasonBudget {
			t.Errorf("link %+v", l)
		}
	}
	if s.BitrateKbps() != 2000 {
		t.Errorf("bitrate %d", s.BitrateKbps())
	}
	// One moved to the origin's last slot, one waits on HTTP.
	if err := checkSwarm(s, false, func(protocol.PeerID) bool { return true }); err != nil {
		t.Fatal(err)
	}
}

// TestShallowTrees: 1,000 viewers of the simulator's generous mix (20%
// relay off, 40% with 5 slots, 40% with 9, at 4 Mbit/s in 4 substreams),
// believed at once, behind an origin of 40 slots. Each relay branches its
// home substream's tree from near the root and leaves hang at the edge:
// every viewer within 5 hops, none waiting (the trees were 14 deep when a
// relay's slots spread over every tree and newcomers hung under the
// newest relays).
func TestShallowTrees(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{BitrateKbps: 4000, Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err := s.AddOrigin("o", 40); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	now := t0
	ids := make([]protocol.PeerID, 1000)
	for i := range ids {
		now = now.Add(40 * time.Millisecond)
		kbps := 0
		switch x := r.Float64(); {
		case x < 0.2:
		case x < 0.6:
			kbps = 4500
		default:
			kbps = 8100
		}
		ids[i] = protocol.PeerID(fmt.Sprintf("v%d", i))
		if _, err := s.Join(now, PeerInfo{ID: ids[i], Kind: protocol.KindNative, BudgetKbps: kbps, Loc: Location{Addr: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})}}); err != nil {
			t.Fatal(err)
		}
	}
	deepest := 0
	for _, id := range ids {
		deepest = max(deepest, s.ViewerDepth(id))
	}
	if st := s.Stats(); deepest > 5 || st.Unassigned > 0 {
		t.Errorf("deepest viewer at %d hops, %d substreams waiting (%+v)", deepest, st.Unassigned, st)
	}
	if err := checkSwarm(s, true, none_); err != nil {
		t.Fatal(err)
	}
}

// TestDisplace: a relay moved with its subtree (a complaint, or its
// upstream shedding links) takes the place of the shallowest leaf that can
// never relay its substream, when no free slot is as shallow, and the leaf
// is placed anew alone; a relay that must serve fewer drops a leaf before a
// relay. One substream, so that every tree is the same tree: "o" (2 slots)
// serves r1 (2 slots) and L; r1 serves r2 (1 slot) and x (1 slot, free);
// r2 serves y.
func TestDisplace(t *testing.T) {
	tests := []struct {
		name   string
		lHome  bool // L can relay the substream (a slot of its own)
		act    func(s *Swarm) []Link
		ups    map[protocol.PeerID]protocol.PeerID // upstreams after
		depths map[protocol.PeerID]int
		moved  []Link // the leaf's link (Reason rebalance), if any
	}{
		{
			name:   "a complaint: r2 takes L's place under the origin",
			act:    func(s *Swarm) []Link { return s.Complain(t0, "r2", "r1") },
			ups:    map[protocol.PeerID]protocol.PeerID{"r2": "o", "y": "r2", "L": "r1"},
			depths: map[protocol.PeerID]int{"r2": 1, "y": 2, "L": 2},
			moved:  []Link{{Peer: "L", Substream: 0, Upstream: "r1", Prev: "o", Reason: ReasonRebalance}},
		},
		{
			name:   "no leaf that cannot relay: r2 takes L's free slot",
			lHome:  true,
			act:    func(s *Swarm) []Link { return s.Complain(t0, "r2", "r1") },
			ups:    map[protocol.PeerID]protocol.PeerID{"r2": "L", "y": "r2", "L": "o"},
			depths: map[protocol.PeerID]int{"r2": 2, "y": 3},
		},
		{
			// x, with a free slot, then takes L's place (insert).
			name:  "r1 serves one fewer: x (a leaf) goes, r2 and its subtree stay",
			act:   func(s *Swarm) []Link { return s.SetBudget(t0, "r1", budget(s, 1)) },
			ups:   map[protocol.PeerID]protocol.PeerID{"r2": "r1", "y": "r2", "x": "o", "L": "x"},
			moved: []Link{{Peer: "L", Substream: 0, Upstream: "x", Prev: "o", Reason: ReasonRebalance}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1, Reserve: -1})
			if err := s.AddOrigin("o", 2); err != nil {
				t.Fatal(err)
			}
			lSlots := 0
			if tt.lHome {
				lSlots = 1
			}
			force(t, s, t0, PeerInfo{ID: "r1", Kind: protocol.KindNative, BudgetKbps: budget(s, 2)}, "o")
			force(t, s, t0, PeerInfo{ID: "L", Kind: protocol.KindBrowser, BudgetKbps: budget(s, lSlots)}, "o")
			force(t, s, t0, PeerInfo{ID: "x", Kind: protocol.KindNative, BudgetKbps: budget(s, 1)}, "r1")
			force(t, s, t0, PeerInfo{ID: "r2", Kind: protocol.KindNative, BudgetKbps: budget(s, 1)}, "r1")
			force(t, s, t0, PeerInfo{ID: "y", Kind: protocol.KindBrowser, BudgetKbps: budget(s, 1)}, "r2")
			mustCheck(t, s)
			links := tt.act(s)
			mustCheck(t, s)
			for id, u := range tt.ups {
				if got := s.Upstreams(id)[0]; got != u {
					t.Errorf("%s's upstream %q, want %q (links %+v)", id, got, u, links)
				}
			}
			for id, d := range tt.depths {
				if got := s.Depth(id, 0); got != d {
					t.Errorf("%s at depth %d, want %d", id, got, d)
				}
			}
			var moved []Link
			for _, l := range links {
				if l.Reason == ReasonRebalance {
					moved = append(moved, l)
				}
			}
			if !reflect.DeepEqual(moved, tt.moved) {
				t.Errorf("moved %+v, want %+v", moved, tt.moved)
			}
		})
	}
}

// TestRaise: Rebalance swaps a relay sunk 3 deep (h, serving z1 and z2)
// with the shallowest leaf above it that cannot relay, once h has been in
// the swarm promoteAge: h and its subtree rise, the leaf takes h's place.
// One substream; "o" (2 slots) serves a and L; a serves b and x; b serves
// h and y.
func TestRaise(t *testing.T) {
	tests := []struct {
		name  string
		lHome bool // L can relay (a slot of its own, free)
		after time.Duration
		ups   map[protocol.PeerID]protocol.PeerID
	}{
		{"young: no move", false, 5 * time.Second,
			map[protocol.PeerID]protocol.PeerID{"h": "b", "L": "o", "x": "a"}},
		{"h takes L's place under the origin", false, 11 * time.Second,
			map[protocol.PeerID]protocol.PeerID{"h": "o", "L": "b", "x": "a"}},
		{"L may relay: h takes x's place under a", true, 11 * time.Second,
			map[protocol.PeerID]protocol.PeerID{"h": "a", "L": "o", "x": "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1, Reserve: -1})
			if err := s.AddOrigin("o", 2); err != nil {
				t.Fatal(err)
			}
			lSlots := 0
			if tt.lHome {
				lSlots = 1
			}
			force(t, s, t0, PeerInfo{ID: "a", Kind: protocol.KindNative, BudgetKbps: budget(s, 2)}, "o")
			force(t, s, t0, PeerInfo{ID: "L", Kind: protocol.KindBrowser, BudgetKbps: budget(s, lSlots)}, "o")
			force(t, s, t0, PeerInfo{ID: "b", Kind: protocol.KindNative, BudgetKbps: budget(s, 2)}, "a")
			force(t, s, t0, PeerInfo{ID: "x", Kind: protocol.KindBrowser}, "a")
			force(t, s, t0, PeerInfo{ID: "h", Kind: protocol.KindNative, BudgetKbps: budget(s, 2)}, "b")
			force(t, s, t0, PeerInfo{ID: "y", Kind: protocol.KindBrowser}, "b")
			force(t, s, t0, PeerInfo{ID: "z1", Kind: protocol.KindBrowser}, "h")
			force(t, s, t0, PeerInfo{ID: "z2", Kind: protocol.KindBrowser}, "h")
			links := s.Rebalance(t0.Add(tt.after))
			mustCheck(t, s)
			for id, u := range tt.ups {
				if got := s.Upstreams(id)[0]; got != u {
					t.Errorf("%s's upstream %q, want %q (links %+v)", id, got, u, links)
				}
			}
			if d, want := s.Depth("z1", 0), s.Depth("h", 0)+1; d != want {
				t.Errorf("z1 at depth %d, want %d (under h)", d, want)
			}
		})
	}
}

// TestComplaintNotBackUnder: a viewer that complains about its upstream is
// not put back under it by insert's walk (which would take the place of the
// upstream's leaf), even when that upstream is the shallowest relay with a
// leaf to displace: the complaint is excluded everywhere.
func TestComplaintNotBackUnder(t *testing.T) {
	s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1, Reserve: -1})
	if err := s.AddOrigin("o", 2); err != nil {
		t.Fatal(err)
	}
	force(t, s, t0, PeerInfo{ID: "liar", Kind: protocol.KindNative, BudgetKbps: budget(s, 3)}, "o")
	force(t, s, t0, PeerInfo{ID: "v", Kind: protocol.KindNative, BudgetKbps: budget(s, 2)}, "liar")
	force(t, s, t0, PeerInfo{ID: "leaf", Kind: protocol.KindBrowser}, "liar")
	mustCheck(t, s)
	links := s.Complain(t0, "v", "liar")
	mustCheck(t, s)
	if up := s.Upstreams("v")[0]; up == "liar" || up == "" {
		t.Fatalf("v's upstream after its complaint: %q (links %+v)", up, links)
	}
	if !s.Linked("leaf", "liar") {
		t.Errorf("the liar's leaf was moved: links %+v", links)
	}
}

// TestLocalize: Rebalance moves a viewer's link from a far upstream to a
// nearer one that can serve it, when that does not sink it: a leaf may go
// one level deeper, a relay with a subtree not at all.
func TestLocalize(t *testing.T) {
	tests := []struct {
		name     string
		nearDeep bool // the near relay sits one level below the far one
		vRelays  bool // v serves a subtree
		want     protocol.PeerID
	}{
		{"a leaf, the near relay as shallow", false, false, "near"},
		{"a leaf, the near relay one deeper", true, false, "near"},
		{"a relay with a subtree, the near relay one deeper", true, true, "far"},
		{"a relay with a subtree, the near relay as shallow", false, true, "near"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSwarm(t, SwarmParams{Substreams: 1, MinUpstreams: 1, Reserve: -1})
			if err := s.AddOrigin("o", 2); err != nil {
				t.Fatal(err)
			}
			force(t, s, t0, PeerInfo{ID: "far", Kind: protocol.KindNative, Loc: tokyo, BudgetKbps: budget(s, 3)}, "o")
			if tt.nearDeep {
				force(t, s, t0, PeerInfo{ID: "mid", Kind: protocol.KindNative, Loc: madrid, BudgetKbps: budget(s, 1)}, "o")
				force(t, s, t0, PeerInfo{ID: "near", Kind: protocol.KindNative, Loc: hamburg, BudgetKbps: budget(s, 3)}, "mid")
			} else {
				force(t, s, t0, PeerInfo{ID: "near", Kind: protocol.KindNative, Loc: hamburg, BudgetKbps: budget(s, 3)}, "o")
			}
			vBudget := 0
			if tt.vRelays {
				vBudget = budget(s, 1)
			}
			force(t, s, t0, PeerInfo{ID: "v", Kind: protocol.KindNative, Loc: berlin, BudgetKbps: vBudget}, "far")
			if tt.vRelays {
				force(t, s, t0, PeerInfo{ID: "w", Kind: protocol.KindBrowser, Loc: berlin}, "v")
			}
			mustCheck(t, s)
			links := s.Rebalance(t0.Add(time.Second))
			mustCheck(t, s)
			if got := s.Upstreams("v")[0]; got != tt.want {
				t.Errorf("v under %q, want %q (links %+v)", got, tt.want, links)
			}
			if tt.vRelays && !s.Linked("w", "v") {
				t.Error("v's subtree did not move with it")
			}
		})
	}
}

// TestOverbook: a swarm whose viewers declare under 90% of the links they
// need has its relays serve 120% of the slots their budgets buy, from the
// next Rebalance; once the declared slots cover the need it is over. A
// swarm that can feed itself never overbooks, nor one with it turned off.
func TestOverbook(t *testing.T) {
	tests := []struct {
		name     string
		overbook int
		slots    int // each relay's, from its budget
		want     int // each relay's slots after Rebalance
	}{
		{"starved", 0, 3, 4},              // 40·3 = 120 declared of 320 needed
		{"starved, turned off", -1, 3, 3}, // as the budget buys
		{"fed", 0, 9, 9},                  // 40·9 = 360 ≥ 90% of 320
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSwarm(t, SwarmParams{Overbook: tt.overbook})
			if err := s.AddOrigin("o", 1000); err != nil {
				t.Fatal(err)
			}
			var relays []protocol.PeerID
			for i := range 80 {
				id := protocol.PeerID(fmt.Sprint("v", i))
				b := 0
				if i%2 == 0 {
					b = budget(s, tt.slots) + budget(s, 1)/2 // 3.5 slots: 3, overbooked 4.2: 4
					relays = append(relays, id)
				}
				force(t, s, t0, PeerInfo{ID: id, Kind: protocol.KindNative, Loc: berlin, BudgetKbps: b}, "o", "o", "o", "o")
			}
			s.Rebalance(t0.Add(time.Second))
			mustCheck(t, s)
			// The declared slots; each address's allowance follows them as
			// its deliveries are measured (here: at once).
			for _, id := range relays {
				if got := s.peers[s.ids[id]].slots; got != int32(tt.want) {
					t.Fatalf("%s declares %d slots, want %d", id, got, tt.want)
				}
				trust(t, s, id)
			}
			if got := s.Stats().PeerSlots; got != 40*tt.want {
				t.Fatalf("peer slots %d, want 40·%d", got, tt.want)
			}
			if tt.want == tt.slots {
				return
			}
			// The relays raise their budgets: the need is covered, and the
			// slots are what the budgets buy again.
			for _, id := range relays {
				s.SetBudget(t0.Add(time.Second), id, budget(s, 10))
				trust(t, s, id)
			}
			s.Rebalance(t0.Add(2 * time.Second))
			mustCheck(t, s)
			if got := s.Stats().PeerSlots; got != 400 {
				t.Fatalf("fed again: peer slots %d, want 400", got)
			}
		})
	}
}

// TestFlashCrowdDepth joins 30,000 viewers at 4,000 a second (a flash
// crowd's rate; each substream's tree takes 6,000 relays): 20% relay off,
// 40% relay 4 slots, 40% relay 7 slots, all believed (Trusted), under one
// origin with 40 slots, Rebalance every 2 s. A capacity-ordered tree for
// this mix is 6–7 deep; the breadth-first walk insert made before the leaf
// index gave up after 512 peers, and the trees grew 16 deep (60 at
// 100,000).
func TestFlashCrowdDepth(t *testing.T) {
	const n = 30_000
	s, err := NewSwarm(SwarmParams{BitrateKbps: 4000, Rand: rand.New(rand.NewPCG(1, 2)),
		Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddOrigin(protocol.OriginPeer, 40); err != nil {
		t.Fatal(err)
	}
	now, rebalance := t0, t0.Add(2*time.Second)
	for i := range n {
		now = now.Add(time.Second / 4000)
		if now.After(rebalance) {
			s.Rebalance(now)
			rebalance = rebalance.Add(2 * time.Second)
		}
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}) // a /24 each, as in the simulator
		pi := PeerInfo{ID: protocol.PeerID(fmt.Sprintf("v%06d", i)), Kind: protocol.KindNative,
			Loc: Location{Addr: addr, Prefix: netip.PrefixFrom(addr, 24).Masked()}}
		switch i % 5 {
		case 1, 3:
			pi.BudgetKbps = 4000
		case 2, 4:
			pi.BudgetKbps = 7200
		}
		if _, err := s.Join(now, pi); err != nil {
			t.Fatal(err)
		}
	}
	maxD, sum, links := 0, 0, 0
	for i := range n {
		for k := range s.k {
			if d := s.Depth(protocol.PeerID(fmt.Sprintf("v%06d", i)), k); d > 0 {
				maxD, sum, links = max(maxD, d), sum+d, links+1
			}
		}
	}
	mean := float64(sum) / float64(links)
	t.Logf("%d viewers: %d links, mean depth %.2f, max %d", n, links, mean, maxD)
	if links < n*s.k*99/100 {
		t.Errorf("%d of %d substreams linked", links, n*s.k)
	}
	if maxD > 9 || mean > 7.5 {
		t.Errorf("mean depth %.2f, max %d: want at most 7.5 and 9 (capacity-ordered: 6–7)", mean, maxD)
	}
	if err := checkSwarm(s, false, none_); err != nil {
		t.Fatal(err)
	}
}
