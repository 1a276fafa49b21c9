// Package tracker is the swarm's assignment policy: Swarm, one stream's
// registry of peers and of the upstream each viewer receives each substream
// from (K trees rooted at the origin seeds), which assigns upstreams when
// viewers join, reassigns them when an upstream leaves, is complained about,
// cuts its relay budget or delivers less than its links need, and moves
// relays up the trees (Rebalance); and where peers are (Location, Distance),
// which its choices weigh.
//
// The K trees are interior-disjoint, as in SplitStream: each viewer has a
// home substream (the one whose viewers declare the fewest slots when it
// joins), relays there, and is a leaf in the other trees (on probation it
// may serve only its home; once proven it prefers it). A relay that joins,
// or needs a new upstream on its home, takes the place of the shallowest
// leaf nearby and the leaf moves under it (insert; so does a viewer that
// turns its relay on while relaying nothing, SetBudget), so that relays branch
// the trees near the root and leaves hang at the edge: 1,000 viewers of the
// simulator's generous mix sit within 5 hops, where spreading every relay's
// slots over all K trees built chains 14 deep. A relay moved with its
// subtree takes a shallow leaf's place rather than a deep free slot
// (displace; both find the shallowest leaves in a per-tree index by depth,
// leaves.go, at any swarm size: 30,000 viewers joining at 4,000 a second
// sit within 8 hops), a peer serving fewer drops leaves before relays, and
// Rebalance swaps relays sunk deep with shallow leaves (raise), so that
// reassignments in a swarm with nearly every slot in use do not sink whole
// subtrees into chains. Viewers take what is free when they join, often in
// another region while their own region's relays are full; Rebalance then
// moves a link fed from farther than the viewer's region to a nearer
// candidate that is no deeper (localize).
//
// It trusts measurement, not claims (trust.go). A declared relay budget is
// believed up to SwarmParams.MaxBudgetKbps (100 Mbit/s), and what a viewer
// may serve is earned by its address (an IPv6 /64 counts as one address):
// the viewers of one address share one allowance, which starts at K slots
// (one copy of the stream) and then follows what their downstreams' reports
// say they received from them (protocol.Report.Received), never their own
// upload figures. In a swarm whose viewers declare under 90% of the links
// they need, a budget buys 15% more slots (Swarm, Slots). A viewer whose
// address is not proven yet serves one
// substream only. Its buffer and RTT claims can only rank it lower. An
// address whose viewer two other addresses' viewers, each fed by it, caught
// in a verified lie (a bad chunk, a forged batch) within a minute loses its
// allowance at once, as a failed measurement loses it (convict).
//
// A viewer's upstreams are spread so that no one party can capture it: never
// two in one IP prefix (/24, IPv6 /48), a hard rule, since the origin (or
// HTTP) is always the alternative; and, as a preference only, not two in one
// ASN when the sample offers another candidate of the same tier and
// proximity class. The ASN rule is soft because one big ISP may hold most of
// a region's viewers, and keeping their traffic inside it is worth more than
// spreading across ISPs; prefixes, addresses and a delivery record are what
// a party cannot multiply cheaply, and those rules are hard.
//
// The swarm also holds the playback delay behind live that all its viewers
// keep (SwarmParams.Delay, sent in the welcome): a viewer's deadlines must
// leave its upstreams the time their own pushes take, so the delay is the
// swarm's, sized for the depth of its trees (3.5 s: a flash crowd of 30,000
// collapses onto the origin at 2.5 s, docs/benchmarks.md).
//
// It is pure — no I/O, no goroutines, clock and randomness passed in — so
// that the tracker server (tracker/server) and the virtual-clock network
// of swarm/swarmtest run the very same code. The wire
// protocol is package tracker/protocol; the WebSocket server, GeoIP, viewer
// tokens and metrics are package tracker/server. The tracker never touches
// media bytes.
package tracker
