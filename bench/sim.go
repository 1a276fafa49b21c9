package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/swarmtest"
	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// seedShare is the percentage of the origin's egress its seed's links may
// take (the rest answers repairs and pays for the HTTP fallback).
const seedShare = 80

// substreams is K, as the tracker's default.
const substreams = 4

// maxSubstreams is the tracker's limit on K.
const maxSubstreams = 64

// SimParams configures RunSim. Zero fields take the scenario's values.
type SimParams struct {
	Scenario Scenario
	// Viewers is n, the audience at full strength (required, 1 to
	// 1,000,000).
	Viewers     int
	BitrateKbps int
	Duration    time.Duration
	// Buffer is the viewers' playback delay (0: the scenario's, else the
	// production default).
	Buffer time.Duration
	// ChunkDuration is the chunker's target (0: the production default,
	// manifest.DefaultChunkDuration; 100 ms to 500 ms as seedcast serve
	// --chunk-duration).
	ChunkDuration time.Duration
	// Substreams is K, the substreams the stream is split into for push
	// delivery (0: the scenario's, else the tracker's default, 4; as
	// seedcast tracker --substreams).
	Substreams int
	// Seed makes the run: the same seed, the same run (1).
	Seed uint64
	// CutThrough turns cut-through relay on (core.Params.CutThrough):
	// relays forward each verified piece of a chunk as it arrives. It
	// implies PerFragment.
	CutThrough bool
	// PerFragment hands nodes each fragment as it arrives
	// (swarmtest.Params.PerFragment), not a chunk's all at once.
	PerFragment bool
	// Loopback places every viewer as the real-process harness has them:
	// at one address, 127.0.0.1, which the tracker trusts (seedcast serve
	// --trusted-peers: its declared budget buys slots at once, with no
	// probation), HarnessRTTms from the origin and from each other. The
	// scenario's regions, round trips and loss are not used.
	Loopback bool
	// TrackerKbps is the stream rate the tracker sizes slots with (0: the
	// stream's; swarmtest.Params.TrackerKbps).
	TrackerKbps int
	// Progress, if set, is called after every virtual second with the
	// virtual time done and the run's length.
	Progress func(done, total time.Duration)
	Logger   *slog.Logger // (discard)
}

// SimResult is one simulator run: the design's measures over the run's
// window, with what the run cost. JSON names are those of results.json.
type SimResult struct {
	Scenario        string  `json:"scenario"`
	Viewers         int     `json:"viewers"`
	Seed            uint64  `json:"seed"`
	BitrateMbps     float64 `json:"bitrateMbps"`
	DurationSeconds float64 `json:"durationSeconds"`
	// CutThrough: the run had cut-through relay on.
	CutThrough bool `json:"cutThroughOn,omitempty"`
	// CutThrough counts the pushes viewers began before they held the
	// chunk whole (Stats.CutThrough), of Pushes, the chunks viewers
	// received pushed.
	CutThroughPushes int64 `json:"cutThroughPushes"`
	// Adversaries counts the hostile viewers that joined (liars and
	// poisoners, Class.Adversary); the measures above are over the others.
	// BadChunksStored counts the chunks honest or not that nodes stored
	// with bytes not the chunk's (must be 0); Complaints the peers the
	// honest viewers cut off for lying. AdversaryFedMaxSeconds is, by
	// kind, the longest one adversary fed one substream of an honest
	// viewer, in a row (sampled every second); AdversaryFedShare the share of the honest viewers'
	// substream-seconds over the window that adversaries fed.
	Adversaries            int            `json:"adversaries,omitempty"`
	BadChunksStored        int64          `json:"badChunksStored"`
	Complaints             int            `json:"complaints,omitempty"`
	AdversaryFedMaxSeconds map[string]int `json:"adversaryFedMaxSeconds,omitempty"`
	AdversaryFedShare      float64        `json:"adversaryFedShare,omitempty"`
	// AdversaryAboveShare is the share of the honest viewers'
	// substream-seconds over the window with an adversary anywhere above
	// them in the substream's tree: fed by it, or by a viewer under it.
	AdversaryAboveShare float64 `json:"adversaryAboveShare,omitempty"`
	Pushes              int64   `json:"pushes"`
	// Over the window, by the honest viewers: upstreams reported stalled,
	// substreams reassigned, chunks asked of the origin near a deadline
	// (OriginPulls) and fetched over HTTP for substreams with no upstream
	// (HTTPFed).
	StallReports int `json:"stallReports"`
	Reassigned   int `json:"reassigned"`
	OriginPulls  int `json:"originPulls"`
	HTTPFed      int `json:"httpFed"`
	// Timeline is the run second by second (the whole run, not only the
	// window): where it went wrong, when it did.
	Timeline []SimSecond `json:"timeline,omitempty"`
	// ChunkMs is the chunker's target duration.
	ChunkMs int `json:"chunkMs"`
	// Substreams is K.
	Substreams int `json:"substreams"`
	// BufferSeconds is the viewers' playback delay behind live.
	BufferSeconds float64 `json:"bufferSeconds"`
	// OriginSlots and OriginEgressMbps are the origin's seed as run.
	OriginSlots      int     `json:"originSlots"`
	OriginEgressMbps float64 `json:"originEgressMbps"`
	// HTTPCapMbps is the origin's HTTP egress cap (0: none); HTTPPeakMbps
	// the most it sent over HTTP in any whole second of the window, and
	// HTTPRefused the fetches the cap refused over the run.
	HTTPCapMbps  float64 `json:"httpCapMbps,omitempty"`
	HTTPPeakMbps float64 `json:"httpPeakMbps"`
	HTTPRefused  int64   `json:"httpRefused"`
	// WindowSeconds is the measured window (the run's end); MeanViewers
	// the viewers online during it, on average.
	WindowStartSeconds float64 `json:"windowStartSeconds"`
	WindowSeconds      float64 `json:"windowSeconds"`
	MeanViewers        float64 `json:"meanViewers"`

	// Server egress: the origin's seed (data channels) and HTTP.
	ServerEgressMbps float64 `json:"serverEgressMbps"`
	SeedMbps         float64 `json:"seedMbps"`
	HTTPMbps         float64 `json:"httpMbps"`
	Copies           float64 `json:"copies"`
	// CDNMbps is a plain CDN's egress, n·r; ClaimMbps the founding
	// design's table at this n (scaled to the bitrate; absent outside 10
	// to 100,000 viewers).
	CDNMbps   float64  `json:"cdnMbps"`
	ClaimMbps *float64 `json:"claimMbps,omitempty"`
	// FluidBoundMbps is max(r, n·r − U) with n and U (the relay budgets
	// of the viewers online) averaged over the window; Efficiency is
	// egress ÷ bound.
	FluidBoundMbps  float64 `json:"fluidBoundMbps"`
	BoundCopies     float64 `json:"boundCopies"`
	Efficiency      float64 `json:"efficiency"`
	RelayBudgetMbps float64 `json:"relayBudgetMbps"`
	RelayMbps       float64 `json:"relayMbps"`

	Offload    float64 `json:"offload"`
	Continuity float64 `json:"continuity"`
	OnTime     int     `json:"chunksOnTime"`
	Late       int     `json:"chunksLate"`

	LatencyP50Ms   float64        `json:"latencyP50Ms"`
	LatencyP95Ms   float64        `json:"latencyP95Ms"`
	LatencyP99Ms   float64        `json:"latencyP99Ms"`
	LatencyByDepth []DepthLatency `json:"latencyByDepth"`
	// LatencyCDF is, per depth, the latency at every percentile (0 to
	// 100) of the window's samples.
	LatencyCDF []DepthCDF `json:"latencyCdf"`

	// Startup is node start → first chunk ready, over the viewers that
	// started; NotStarted counts those online for 10 s and more that had
	// not.
	StartupP50Ms float64 `json:"startupP50Ms"`
	StartupP95Ms float64 `json:"startupP95Ms"`
	NotStarted   int     `json:"notStarted"`

	// MaxDepth and Depths are the hop depths of the viewers online at the
	// end (Stats.Depth: the deepest of a viewer's substreams).
	MaxDepth  int          `json:"maxDepth"`
	MeanDepth float64      `json:"meanDepth"`
	Depths    []DepthCount `json:"depths"`

	// Joins, Leaves and Vanished count the audience's comings and goings.
	Joins    int `json:"joins"`
	Leaves   int `json:"leaves"`
	Vanished int `json:"vanished"`

	// SameRegionLinks is the share of peer links (viewer to viewer)
	// within one region, RandomSameRegion what picking upstreams at
	// random would give (with regions only).
	SameRegionLinks  *float64 `json:"sameRegionLinks,omitempty"`
	RandomSameRegion *float64 `json:"randomSameRegion,omitempty"`
	// SameRegionBytes is the share of the bytes viewers delivered to
	// viewers over the window (frames of every kind) that stayed within a
	// region (with regions only).
	SameRegionBytes *float64 `json:"sameRegionBytes,omitempty"`
	// PeerLinkRTTMs is the mean round trip of the peer links at the end.
	PeerLinkRTTMs float64 `json:"peerLinkRttMs"`

	// Tracker is the tracker policy's counters at the end: links the
	// origin and the viewers serve, the slots viewers may serve, and
	// substreams left to HTTP.
	Tracker tracker.Stats `json:"tracker"`

	// Traffic between nodes over the whole run, in bytes, and what was
	// still on its way at the end: Sent = Delivered + Lost + InFlightBytes.
	Traffic       swarmtest.Traffic `json:"traffic"`
	InFlightBytes int64             `json:"inFlightBytes"`
	// Events is the core inputs handed to the nodes; WallSeconds and
	// PeakRSSMB what the run cost on this machine (the process's peak
	// resident set, reset at the run's start where Linux allows).
	Events      int64   `json:"events"`
	WallSeconds float64 `json:"wallSeconds"`
	PeakRSSMB   float64 `json:"peakRSSMB"`
	// LiveHeapMB is the Go heap in use at the run's end, after a
	// collection: the network, the tracker and every core.
	LiveHeapMB float64 `json:"liveHeapMB"`
	// CPUSeconds is the process's CPU time (user and system) over the
	// run: on a shared machine, a steadier cost than the wall time.
	CPUSeconds float64 `json:"cpuSeconds"`

	// Report is the same window as bench's report (Table, DepthTable).
	Report SwarmReport `json:"-"`
}

// DepthLatency is the latency of the viewers at one depth.
type DepthLatency struct {
	Depth      int     `json:"depth"`
	Viewers    int     `json:"viewers"`
	Samples    int     `json:"samples"`
	P50Ms      float64 `json:"p50Ms"`
	P95Ms      float64 `json:"p95Ms"`
	P99Ms      float64 `json:"p99Ms"`
	Continuity float64 `json:"continuity"`
	Offload    float64 `json:"offload"`
}

// DepthCDF is the latency percentiles at one depth: Ms[q] is the q-th.
type DepthCDF struct {
	Depth int       `json:"depth"`
	Ms    []float64 `json:"ms"`
}

// DepthCount is how many viewers sit at one depth.
type DepthCount struct {
	Depth   int `json:"depth"`
	Viewers int `json:"viewers"`
}

// designClaim is the founding design's server egress for a 4 Mbit/s
// stream, in Mbit/s, by audience.
var designClaim = []struct{ n, mbps float64 }{{10, 40}, {100, 60}, {1000, 80}, {10000, 100}, {100000, 150}}

// ClaimMbps is the founding design's server egress for n viewers of a
// stream at bitrateKbps: its table for 4 Mbit/s, scaled to the bitrate,
// interpolated on log n; false outside 10 to 100,000 viewers.
func ClaimMbps(n float64, bitrateKbps int) (float64, bool) {
	first, last := designClaim[0], designClaim[len(designClaim)-1]
	if n < first.n || n > last.n {
		return 0, false
	}
	scale := float64(bitrateKbps) / 4000
	for i := 1; i < len(designClaim); i++ {
		a, b := designClaim[i-1], designClaim[i]
		if n <= b.n {
			f := (math.Log10(n) - math.Log10(a.n)) / (math.Log10(b.n) - math.Log10(a.n))
			return scale * (a.mbps + f*(b.mbps-a.mbps)), true
		}
	}
	return scale * last.mbps, true
}

// simNode is a simulated viewer as measure reads it.
type simNode struct{ v *swarmtest.Node }

func (s simNode) Stats() swarm.Stats { return s.v.Stats() }
func (s simNode) LatencySamples() []time.Duration {
	if s.v.Core() == nil {
		return nil
	}
	return s.v.Core().LatencySamples()
}

// SimSecond is one second of a simulator run: the origin's HTTP egress in
// it (in copies of the stream), and what the viewers online at its end did
// in it, summed over them (their counters' growth, so a viewer that left
// takes its share with it). The tracker's figures are at its end.
type SimSecond struct {
	T       float64 `json:"t"` // seconds from the run's start, at the second's end
	Viewers int     `json:"viewers"`
	// HTTPCopies is the origin's HTTP egress over the stream rate.
	HTTPCopies float64 `json:"httpCopies"`
	// The viewers' counters (core.Stats): chunks asked of the origin near
	// a deadline, chunks pulled from peers because their pusher was late,
	// upstreams reported stalled, substreams reassigned, chunks late.
	OriginPulls   int `json:"originPulls"`
	PullsLatePush int `json:"pullsLatePush"`
	StallReports  int `json:"stallReports"`
	Reassigned    int `json:"reassigned"`
	ChunksLate    int `json:"chunksLate"`
	// MeanDepth and MaxDepth are over the viewers online; PeerSlots and
	// PeerLinks the tracker's (tracker.Stats).
	MeanDepth float64 `json:"meanDepth"`
	MaxDepth  int     `json:"maxDepth"`
	PeerSlots int     `json:"peerSlots"`
	PeerLinks int     `json:"peerLinks"`
}

// sim is one run in progress.
type sim struct {
	p       SimParams
	sc      Scenario
	net     *swarmtest.Network
	rng     *rand.Rand
	classes *interleave
	regions []*interleave // per audience class
	rate    int           // kbps
	budgets map[*swarmtest.Node]int
	alive   []*swarmtest.Node // online viewers, for churn picks
	pos     map[*swarmtest.Node]int
	online  struct {
		n      int
		budget int64 // kbps
	}
	// adv marks the hostile viewers (Class.Adversary); fed counts, for
	// each honest viewer's substream, the seconds in a row an adversary
	// has fed it.
	adv            map[protocol.PeerID]string
	fed            map[fedKey]fedRun
	fedSec, subSec int64
	// aboveSec counts the honest substream-seconds with an adversary
	// anywhere above them in the substream's tree (not only feeding them).
	aboveSec int64
	byID     map[protocol.PeerID]*swarmtest.Node
	res      SimResult
}

type fedKey struct {
	v *swarmtest.Node
	k int
}

// fedRun is an adversary feeding one substream: who, for how many seconds.
type fedRun struct {
	u protocol.PeerID
	n int
}

// RunSim runs a scenario on the simulator: the origin's seed (a production
// node core with the origin's budget) and HTTP service, the production
// tracker policy with its rebalance timer, and p.Viewers production node
// cores, on one virtual clock over modelled links (swarm/swarmtest).
// Viewers join at a steady rate over the scenario's JoinOver, come and go
// as its churn says, and the design's measures are taken over the window
// after they have settled.
func RunSim(ctx context.Context, p SimParams) (SimResult, error) {
	sc := p.Scenario
	if p.BitrateKbps <= 0 {
		p.BitrateKbps = int(sc.Bitrate)
	}
	if p.Duration <= 0 {
		p.Duration = time.Duration(sc.Duration)
	}
	if p.Buffer <= 0 {
		p.Buffer = time.Duration(sc.Buffer)
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.ChunkDuration == 0 {
		p.ChunkDuration = manifest.DefaultChunkDuration
	}
	if p.Substreams == 0 {
		p.Substreams = cmp.Or(sc.Substreams, substreams)
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case p.Viewers < 1 || p.Viewers > 1_000_000:
		return SimResult{}, fmt.Errorf("%w: %d viewers (1 to 1,000,000)", ErrBadParams, p.Viewers)
	case p.BitrateKbps <= 0 || p.BitrateKbps > 100_000:
		return SimResult{}, fmt.Errorf("%w: bitrate %d kbps", ErrBadParams, p.BitrateKbps)
	case p.ChunkDuration < manifest.MinChunkDuration || p.ChunkDuration > manifest.MaxChunkDuration:
		return SimResult{}, fmt.Errorf("%w: chunk duration %v (%v to %v)", ErrBadParams, p.ChunkDuration, manifest.MinChunkDuration, manifest.MaxChunkDuration)
	case p.Buffer < 0 || p.Buffer > time.Minute:
		return SimResult{}, fmt.Errorf("%w: buffer %v (0 to 1 min)", ErrBadParams, p.Buffer)
	case p.Substreams < 1 || p.Substreams > maxSubstreams:
		return SimResult{}, fmt.Errorf("%w: %d substreams (1 to %d)", ErrBadParams, p.Substreams, maxSubstreams)
	case p.Duration < 10*time.Second || p.Duration > 24*time.Hour:
		return SimResult{}, fmt.Errorf("%w: duration %v (10 s to 24 h)", ErrBadParams, p.Duration)
	case len(sc.Audience) == 0:
		return SimResult{}, fmt.Errorf("%w: a scenario with no audience (use ParseScenario or LoadScenario)", ErrBadParams)
	}
	resetPeakRSS()
	wall, cpu := time.Now(), cpuTime()
	s, err := newSim(p)
	if err != nil {
		return SimResult{}, err
	}
	if err := s.run(ctx); err != nil {
		return SimResult{}, err
	}
	s.res.WallSeconds = time.Since(wall).Seconds()
	s.res.CPUSeconds = (cpuTime() - cpu).Seconds()
	s.res.PeakRSSMB = peakRSSMB()
	p.Logger.Info("sim", "scenario", sc.Name, "viewers", p.Viewers, "egressMbps", round(s.res.ServerEgressMbps, 2),
		"boundMbps", round(s.res.FluidBoundMbps, 2), "continuity", round(s.res.Continuity, 5), "wall", time.Since(wall).Round(time.Millisecond))
	return s.res, nil
}

func newSim(p SimParams) (*sim, error) {
	sc := p.Scenario
	var trusted []netip.Prefix
	if p.Loopback {
		sc.Regions, sc.RTTms, sc.Origin.Region, sc.Loss = nil, nil, "", 0
		sc.Origin.RTTms, sc.PeerRTTms = HarnessRTTms, HarnessRTTms
		trusted = []netip.Prefix{loopback}
	}
	s := &sim{
		p: p, sc: sc, rate: p.BitrateKbps,
		rng:     rand.New(rand.NewPCG(p.Seed, 0x5eedca575e)),
		budgets: map[*swarmtest.Node]int{}, pos: map[*swarmtest.Node]int{},
		adv: map[protocol.PeerID]string{}, fed: map[fedKey]fedRun{},
	}
	shares := make([]float64, len(sc.Audience))
	for i, c := range sc.Audience {
		shares[i] = c.Share
	}
	s.classes = newInterleave(shares)
	rshares := []float64{1}
	if len(sc.Regions) > 0 {
		rshares = rshares[:0]
		for _, r := range sc.Regions {
			rshares = append(rshares, r.Share)
		}
	}
	// Each class has its own interleave of the regions, so that every
	// region gets the audience's mix: one interleave for all would cycle
	// in step with the classes' (periods 5 and 10 for geo's shares) and
	// give a region only some classes.
	s.regions = make([]*interleave, len(sc.Audience))
	for i := range s.regions {
		s.regions[i] = newInterleave(rshares)
	}
	oneWay := func(a, b int) time.Duration {
		if len(sc.RTTms) == 0 {
			return time.Duration(sc.PeerRTTms / 2 * float64(time.Millisecond))
		}
		return time.Duration(sc.RTTms[a][b] / 2 * float64(time.Millisecond))
	}
	slots := sc.Origin.Slots
	if slots == 0 {
		// As the tracker sizes a viewer's slots from its announced push
		// share (tracker.Swarm.Slots).
		slots = max(int(int64(sc.Origin.Egress)*seedShare/100*int64(p.Substreams)/int64(p.BitrateKbps)), 1)
	}
	net, err := swarmtest.New(swarmtest.Params{
		Seed:          p.Seed,
		Renditions:    []swarmtest.Rendition{{Name: "v0", Kind: "video", Kbps: p.BitrateKbps}},
		Substreams:    p.Substreams,
		ChunkDuration: p.ChunkDuration,
		PerFragment:   p.CutThrough || p.PerFragment,
		Delay:         p.Buffer, // the tracker's, sent to every viewer (zero: the production default)
		Core:          core.Params{CutThrough: p.CutThrough},
		OriginSlots:   slots,
		OriginKbps:    int(sc.Origin.Egress),
		HTTPKbps:      int(sc.Origin.HTTPEgress),
		OriginRTT:     time.Duration(sc.Origin.RTTms * float64(time.Millisecond)),
		Latency:       func(a, b *swarmtest.Node) time.Duration { return oneWay(a.Region(), b.Region()) },
		Loss:          sc.Loss,
		Trusted:       trusted,
		TrackerKbps:   p.TrackerKbps,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadParams, err)
	}
	s.net = net
	s.res = SimResult{
		Scenario: sc.Name, Viewers: p.Viewers, Seed: p.Seed, BitrateMbps: float64(p.BitrateKbps) / 1000,
		DurationSeconds: p.Duration.Seconds(), BufferSeconds: bufferOr(p.Buffer).Seconds(), ChunkMs: int(p.ChunkDuration.Milliseconds()), Substreams: p.Substreams, CutThrough: p.CutThrough, OriginSlots: slots, OriginEgressMbps: float64(sc.Origin.Egress) / 1000, HTTPCapMbps: float64(sc.Origin.HTTPEgress) / 1000,
	}
	return s, nil
}

// loopback is where the harness's viewers are (SimParams.Loopback).
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// bufferOr is the playback delay the tracker gives the viewers given b.
func bufferOr(b time.Duration) time.Duration {
	if b > 0 {
		return b
	}
	return protocol.DefaultDelay
}

// originRTT is a viewer's round trip to the origin, by region.
func (s *sim) originRTT(region int) time.Duration {
	ms := s.sc.Origin.RTTms
	if o := s.sc.Origin.Region; o != "" {
		for i, r := range s.sc.Regions {
			if r.Name == o {
				ms = s.sc.RTTms[i][region]
			}
		}
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// location is where the tracker sees viewer i of region r: its own
// address in its own /24, and with regions, GeoIP's answer for it.
func (s *sim) location(i, r int) tracker.Location {
	if s.p.Loopback {
		a := loopback.Addr().Next()
		return tracker.Location{Addr: a, Prefix: netip.PrefixFrom(a, 24).Masked()}
	}
	addr := netip.AddrFrom4([4]byte{byte(10 + i>>16), byte(i >> 8), byte(i), 1})
	loc := tracker.Location{Addr: addr, Prefix: netip.PrefixFrom(addr, 24).Masked()}
	if len(s.sc.Regions) == 0 {
		return loc
	}
	reg := s.sc.Regions[r]
	// Uniform on the disc of SpreadKm around the centre (a flat Earth at
	// this scale).
	d := reg.SpreadKm * math.Sqrt(s.rng.Float64())
	a := 2 * math.Pi * s.rng.Float64()
	const kmPerDeg = 111.2
	loc.Lat = reg.Lat + d*math.Sin(a)/kmPerDeg
	loc.Lon = reg.Lon + d*math.Cos(a)/(kmPerDeg*math.Cos(reg.Lat*math.Pi/180))
	loc.Lon = math.Mod(loc.Lon+540, 360) - 180
	loc.HasCoords, loc.Country = true, reg.Country
	if len(reg.ASNs) > 0 {
		loc.ASN = reg.ASNs[i%len(reg.ASNs)]
	}
	return loc
}

// draw gives the next viewer's audience class and region: each by its
// shares, and every region the audience's mix of classes.
func (s *sim) draw() (class, region int) {
	class = s.classes.next()
	return class, s.regions[class].next()
}

func (s *sim) join() error {
	ci, r := s.draw()
	c := s.sc.Audience[ci]
	budget := c.BudgetKbps(s.rate)
	i := s.res.Joins + 1
	// Frames leave at the viewer's upload line; the core's token bucket
	// keeps them to the budget on average (a burst the bucket allows goes
	// at the line's rate, as on a real line).
	v, err := s.net.Join(swarmtest.NodeParams{
		BudgetKbps: budget, LineKbps: max(int(c.Upload), budget), DownKbps: int(c.Down), Region: r, OriginRTT: s.originRTT(r), Loc: s.location(i, r),
	})
	if err != nil {
		return fmt.Errorf("bench: join %d: %w", i, err)
	}
	switch c.Adversary {
	case Liar:
		v.Freeze()
	case Poisoner:
		v.Poison()
	}
	if c.Adversary != "" {
		s.adv[v.ID] = c.Adversary
		s.res.Adversaries++
	}
	s.res.Joins++
	s.budgets[v] = budget
	s.pos[v] = len(s.alive)
	s.alive = append(s.alive, v)
	s.online.n++
	s.online.budget += int64(budget)
	return nil
}

// leave takes a viewer picked at random off the air: gracefully, or
// silently with the scenario's chance.
func (s *sim) leave() {
	if len(s.alive) == 0 {
		return
	}
	v := s.alive[s.rng.IntN(len(s.alive))]
	i := s.pos[v]
	last := s.alive[len(s.alive)-1]
	s.alive[i], s.pos[last] = last, i
	s.alive = s.alive[:len(s.alive)-1]
	delete(s.pos, v)
	s.online.n--
	s.online.budget -= int64(s.budgets[v])
	ch := s.sc.Churn
	if s.rng.Float64() < ch.Silent {
		s.res.Vanished++
		v.Vanish(time.Duration(ch.LinkTimeout), time.Duration(ch.TrackerTimeout))
		return
	}
	s.res.Leaves++
	v.Leave()
}

func (s *sim) run(ctx context.Context) error {
	p, sc, net := s.p, s.sc, s.net
	start := net.Now()
	total := p.Duration
	// The stream is live and the seed up a second before the first join.
	const lead = time.Second
	joinOver := min(time.Duration(sc.JoinOver), total/2)
	joinEnd := lead + joinOver
	var joinErr error
	for i := range p.Viewers {
		at := lead + time.Duration(int64(joinOver)*int64(i)/int64(max(p.Viewers-1, 1)))
		net.At(start.Add(at), func() {
			if err := s.join(); err != nil && joinErr == nil {
				joinErr = err
			}
		})
	}
	if ch := sc.Churn; ch.PerMinute > 0 {
		every := time.Duration(float64(time.Minute) / (ch.PerMinute * float64(p.Viewers)))
		every = max(every, time.Millisecond)
		for t := joinEnd + every; t < total; t += every {
			net.At(start.Add(t), func() {
				s.leave()
				if err := s.join(); err != nil && joinErr == nil {
					joinErr = err
				}
			})
		}
	}
	winStart := min(joinEnd+time.Duration(sc.Settle), total-total/4)
	s.res.WindowStartSeconds = winStart.Seconds()

	var (
		seedA   swarm.Stats
		httpA   int64
		before  map[*swarmtest.Node]snapshot
		samples int
		sumN    float64
		sumU    float64
		// trafficA is the traffic at the window's start.
		trafficA swarmtest.Traffic
		tl       swarm.Stats // the viewers' counters at the last second's end
	)
	for t := time.Duration(0); t < total; {
		if err := ctx.Err(); err != nil {
			return err
		}
		step := min(time.Second, total-t)
		if t < winStart && t+step > winStart {
			step = winStart - t
		}
		httpBefore := net.OriginBytes
		net.RunUntil(start.Add(t + step))
		t += step
		if joinErr != nil {
			return joinErr
		}
		if t > winStart && step == time.Second {
			s.res.HTTPPeakMbps = max(s.res.HTTPPeakMbps, float64(net.OriginBytes-httpBefore)*8/1e6)
		}
		if t == winStart {
			before = map[*swarmtest.Node]snapshot{}
			for _, v := range s.alive {
				before[v] = take(simNode{v})
			}
			if sd := net.Seed(); sd != nil {
				seedA = sd.Stats()
			}
			httpA = net.OriginBytes
			trafficA = net.Traffic
		}
		if t > winStart {
			samples++
			sumN += float64(s.online.n)
			sumU += float64(s.online.budget)
		}
		if len(s.adv) > 0 {
			s.sampleFed(t > winStart)
		}
		if step == time.Second || t == total {
			s.second(t, step, net.OriginBytes-httpBefore, &tl)
		}
		if p.Progress != nil {
			p.Progress(t, total)
		}
	}
	// The window's viewers: online at its start, or joined during it.
	var (
		budgets []int
		a, b    []snapshot
	)
	for _, v := range net.Nodes() {
		if !v.LeftAt.IsZero() && v.LeftAt.Sub(start) <= winStart || s.adv[v.ID] != "" {
			continue
		}
		budgets = append(budgets, s.budgets[v])
		a = append(a, before[v]) // zero for those who joined later
		b = append(b, take(simNode{v}))
	}
	var seedB swarm.Stats
	if sd := net.Seed(); sd != nil {
		seedB = sd.Stats()
	}
	window := total - winStart
	rep := SwarmReport{Nodes: len(b), Window: window, StreamKbps: float64(s.rate), PeakKbps: float64(s.rate), Cores: runtime.NumCPU()}
	byDepth := measure(&rep, budgets, seedB.BytesUploaded-seedA.BytesUploaded, a, b)
	// Egress over HTTP is what the origin sent (to viewers that left too);
	// the bound is over the viewers online, on average.
	meanN, meanU := sumN/float64(max(samples, 1)), sumU/float64(max(samples, 1))/1000
	rep.setWindowBound(float64(net.OriginBytes-httpA)*8/1e6/window.Seconds(), meanN, meanU, float64(s.rate)/1000)
	s.fill(rep, byDepth, meanN)
	s.res.HTTPRefused = net.HTTPRefused
	if peer := net.Traffic.PeerDelivered - trafficA.PeerDelivered; len(sc.Regions) > 0 && peer > 0 {
		f := float64(net.Traffic.SameRegion-trafficA.SameRegion) / float64(peer)
		s.res.SameRegionBytes = &f
	}
	return nil
}

// adversaryAbove reports whether an adversary is among the upstreams of
// viewer v's substream k, up the tree to the origin (or to a viewer gone).
func (s *sim) adversaryAbove(v *swarmtest.Node, k int) bool {
	for range 256 { // the trees are far shallower; a loop in the model must not hang it
		ups := v.Upstreams()
		if k >= len(ups) {
			return false
		}
		u := ups[k]
		if s.adv[u] != "" {
			return true
		}
		if v = s.byID[u]; v == nil || v.Core() == nil {
			return false
		}
	}
	return false
}

// sampleFed records, once a second, which honest viewers' substreams an
// adversary feeds, and how long one adversary has fed each in a row.
func (s *sim) sampleFed(inWindow bool) {
	if len(s.adv) > 0 && inWindow {
		if s.byID == nil {
			s.byID = map[protocol.PeerID]*swarmtest.Node{}
		}
		clear(s.byID)
		for _, v := range s.alive {
			s.byID[v.ID] = v
		}
		for _, v := range s.alive {
			if s.adv[v.ID] != "" || v.Core() == nil {
				continue
			}
			for k := range v.Upstreams() {
				if s.adversaryAbove(v, k) {
					s.aboveSec++
				}
			}
		}
	}
	for _, v := range s.alive {
		if s.adv[v.ID] != "" || v.Core() == nil {
			continue
		}
		for k, u := range v.Upstreams() {
			key := fedKey{v, k}
			if s.adv[u] == "" {
				delete(s.fed, key)
				continue
			}
			run := s.fed[key]
			if run.u != u {
				run = fedRun{u: u}
			}
			run.n++
			s.fed[key] = run
			if s.res.AdversaryFedMaxSeconds == nil {
				s.res.AdversaryFedMaxSeconds = map[string]int{}
			}
			kind := s.adv[u]
			s.res.AdversaryFedMaxSeconds[kind] = max(s.res.AdversaryFedMaxSeconds[kind], run.n)
			if inWindow {
				s.fedSec++
			}
		}
		if inWindow {
			s.subSec += int64(len(v.Upstreams()))
		}
	}
}

// second appends the second that ended at t (step long, httpBytes of HTTP
// egress) to the timeline; last holds the viewers' summed counters at the
// previous one's end.
func (s *sim) second(t, step time.Duration, httpBytes int64, last *swarm.Stats) {
	var sum swarm.Stats
	sec := SimSecond{T: t.Seconds(), HTTPCopies: float64(httpBytes) * 8 / 1e3 / float64(s.rate) / step.Seconds()}
	for _, v := range s.alive {
		if s.adv[v.ID] != "" || v.Core() == nil {
			continue
		}
		st := v.Stats()
		sum.OriginPulls += st.OriginPulls
		sum.PullsLatePush += st.PullsLatePush
		sum.StallReports += st.StallReports
		sum.Reassigned += st.Reassigned
		sum.ChunksLate += st.ChunksLate
		sec.Viewers++
		sec.MeanDepth += float64(st.Depth)
		sec.MaxDepth = max(sec.MaxDepth, st.Depth)
	}
	sec.MeanDepth = round(sec.MeanDepth/float64(max(sec.Viewers, 1)), 2)
	sec.HTTPCopies = round(sec.HTTPCopies, 1)
	sec.OriginPulls = sum.OriginPulls - last.OriginPulls
	sec.PullsLatePush = sum.PullsLatePush - last.PullsLatePush
	sec.StallReports = sum.StallReports - last.StallReports
	sec.Reassigned = sum.Reassigned - last.Reassigned
	sec.ChunksLate = sum.ChunksLate - last.ChunksLate
	st := s.net.Swarm().Stats()
	sec.PeerSlots, sec.PeerLinks = st.PeerSlots, st.PeerLinks
	s.res.Timeline = append(s.res.Timeline, sec)
	*last = sum
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round(f float64, digits int) float64 {
	m := math.Pow(10, float64(digits))
	return math.Round(f*m) / m
}

// fill turns the window's report into the result.
func (s *sim) fill(rep SwarmReport, byDepth map[int][]time.Duration, meanN float64) {
	res := &s.res
	net := s.net
	res.setReport(rep, byDepth, meanN, float64(s.rate), s.p.Viewers)
	// Startup, depths and links, over the viewers online at the end.
	end := net.Now()
	var startup []time.Duration
	depths := map[int]int{}
	region := map[protocol.PeerID]int{}
	for _, v := range s.alive {
		region[v.ID] = v.Region()
	}
	var same, links int
	var rtt time.Duration
	for _, v := range net.Nodes() {
		if s.adv[v.ID] != "" {
			continue
		}
		if !v.FirstReady.IsZero() {
			startup = append(startup, v.FirstReady.Sub(v.JoinedAt))
		}
		if v.Core() != nil {
			res.Complaints += v.Stats().Complaints
		}
	}
	res.BadChunksStored = net.BadStored
	if s.subSec > 0 {
		res.AdversaryFedShare = float64(s.fedSec) / float64(s.subSec)
		res.AdversaryAboveShare = float64(s.aboveSec) / float64(s.subSec)
	}
	for _, v := range s.alive {
		if v.FirstReady.IsZero() && end.Sub(v.JoinedAt) >= 10*time.Second {
			res.NotStarted++
		}
		if v.Core() == nil {
			continue
		}
		st := v.Stats()
		res.CutThroughPushes += int64(st.CutThrough)
		res.Pushes += int64(st.Pushed)
		depths[st.Depth]++
		res.MaxDepth = max(res.MaxDepth, st.Depth)
		res.MeanDepth += float64(st.Depth)
		for _, u := range v.Upstreams() {
			ur, ok := region[u]
			if !ok {
				continue // the origin, HTTP, or gone
			}
			links++
			if ur == v.Region() {
				same++
			}
			if len(s.sc.RTTms) > 0 {
				rtt += time.Duration(s.sc.RTTms[v.Region()][ur] * float64(time.Millisecond))
			} else {
				rtt += time.Duration(s.sc.PeerRTTms * float64(time.Millisecond))
			}
		}
	}
	res.MeanDepth /= float64(max(len(s.alive), 1))
	for _, d := range sortedKeys(depths) {
		res.Depths = append(res.Depths, DepthCount{Depth: d, Viewers: depths[d]})
	}
	res.StartupP50Ms, res.StartupP95Ms = ms(Percentile(startup, 0.5)), ms(Percentile(startup, 0.95))
	if links > 0 {
		res.PeerLinkRTTMs = ms(rtt) / float64(links)
	}
	if len(s.sc.Regions) > 0 && links > 0 {
		f := float64(same) / float64(links)
		rnd := 0.0
		for _, r := range s.sc.Regions {
			rnd += r.Share * r.Share
		}
		res.SameRegionLinks, res.RandomSameRegion = &f, &rnd
	}
	res.Traffic, res.InFlightBytes = net.Traffic, net.InFlight()
	res.Tracker = net.Swarm().Stats()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	res.LiveHeapMB = float64(m.HeapAlloc) / (1 << 20)
	res.Events = net.Events
}
