package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/seedcast/seedcast/swarm"
)

// ErrNodeLine reports a stats line or a viewer plan that cannot be read.
var ErrNodeLine = errors.New("bench: bad node record")

// MaxNodeLineBytes bounds one stats line (its latency samples included).
const MaxNodeLineBytes = 1 << 20

// NodeLine is one line of `seedcast viewer --stats-json`: a node's
// cumulative counters at T, and the delivery latencies of the chunks it
// came to hold since its previous line. The browser player reports the
// fields up to Rejected too.
type NodeLine struct {
	T               string  `json:"t"`
	Peers           int     `json:"peers"`
	BytesFromPeers  int64   `json:"bytesFromPeers"`
	BytesFromOrigin int64   `json:"bytesFromOrigin"`
	BytesFromSeed   int64   `json:"bytesFromSeed"` // the part of bytesFromOrigin the origin's seed sent over WebRTC
	BytesUploaded   int64   `json:"bytesUploaded"`
	ChunksOnTime    int     `json:"chunksOnTime"`
	ChunksLate      int     `json:"chunksLate"`
	LatencyP50Ms    float64 `json:"latencyP50Ms"`
	LatencyP95Ms    float64 `json:"latencyP95Ms"`
	MaxDepth        int     `json:"maxDepth"`
	DelayMs         int64   `json:"delayMs"`         // the playback delay behind live the node keeps (the tracker's)
	RelayBudgetKbps int64   `json:"relayBudgetKbps"` // in force: the budget less what the RTT guard cut
	Throttled       bool    `json:"throttled"`
	Rejected        int     `json:"rejected"`

	// BudgetKbps is the relay budget the node was started with.
	BudgetKbps   int   `json:"budgetKbps"`
	BytesControl int64 `json:"bytesControl"`
	Pushed       int   `json:"pushed"`
	Pulled       int   `json:"pulled"`
	Unknown      int   `json:"unknown"`
	OriginPulls  int   `json:"originPulls"`
	HTTPFed      int   `json:"httpFed"`
	Reassigned   int   `json:"reassigned"`
	StallReports int   `json:"stallReports"`
	// StartupMs is node start → its first media chunk held (0: none yet).
	StartupMs float64 `json:"startupMs"`
	// LatencyMs is the delivery latency (ingest finished → held verified)
	// of every chunk held since the previous line.
	LatencyMs []float64 `json:"latencyMs"`
}

// Time is the line's T.
func (l NodeLine) Time() (time.Time, error) { return time.Parse(time.RFC3339Nano, l.T) }

// Stats is the line's counters as the node core's Stats.
func (l NodeLine) Stats() swarm.Stats {
	return swarm.Stats{
		Peers: l.Peers, BytesFromPeers: l.BytesFromPeers, BytesFromOrigin: l.BytesFromOrigin, BytesFromSeed: l.BytesFromSeed,
		BytesUploaded: l.BytesUploaded, BytesControl: l.BytesControl, ChunksOnTime: l.ChunksOnTime, ChunksLate: l.ChunksLate,
		Rejected: l.Rejected, Unknown: l.Unknown, Pulled: l.Pulled, Pushed: l.Pushed, OriginPulls: l.OriginPulls, HTTPFed: l.HTTPFed,
		Reassigned: l.Reassigned, StallReports: l.StallReports, Depth: l.MaxDepth, RelayKbps: l.RelayBudgetKbps, Throttled: l.Throttled,
		LatencyP50: time.Duration(l.LatencyP50Ms * float64(time.Millisecond)), LatencyP95: time.Duration(l.LatencyP95Ms * float64(time.Millisecond)),
	}
}

// NodeRecorder makes a node's stats lines: it remembers the latency ring
// of the previous line, so that each line carries only the new samples.
type NodeRecorder struct {
	// BudgetKbps is the node's relay budget as started.
	BudgetKbps int
	prev       []time.Duration
}

// Line is the node's line at now, from its stats, its latency ring
// (swarm.Node.LatencySamples) and its startup (0: not started).
func (r *NodeRecorder) Line(now time.Time, s swarm.Stats, ring []time.Duration, startup time.Duration) NodeLine {
	msf := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
	l := NodeLine{
		T: now.UTC().Format(time.RFC3339Nano), Peers: s.Peers,
		BytesFromPeers: s.BytesFromPeers, BytesFromOrigin: s.BytesFromOrigin, BytesFromSeed: s.BytesFromSeed, BytesUploaded: s.BytesUploaded,
		ChunksOnTime: s.ChunksOnTime, ChunksLate: s.ChunksLate, LatencyP50Ms: msf(s.LatencyP50), LatencyP95Ms: msf(s.LatencyP95),
		MaxDepth: s.Depth, DelayMs: s.Delay.Milliseconds(), RelayBudgetKbps: s.RelayKbps, Throttled: s.Throttled, Rejected: s.Rejected,
		BudgetKbps: r.BudgetKbps, BytesControl: s.BytesControl, Pushed: s.Pushed, Pulled: s.Pulled, Unknown: s.Unknown,
		OriginPulls: s.OriginPulls, HTTPFed: s.HTTPFed, Reassigned: s.Reassigned, StallReports: s.StallReports,
		StartupMs: msf(startup), LatencyMs: []float64{},
	}
	for _, d := range newSamples(r.prev, ring) {
		l.LatencyMs = append(l.LatencyMs, msf(d))
	}
	r.prev = ring
	return l
}

// ReadNodeLines reads a node's stats lines. A last line cut short (the
// node stopped while writing it) is dropped; any other bad line is an
// error wrapping ErrNodeLine.
func ReadNodeLines(r io.Reader) ([]NodeLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxNodeLineBytes)
	var (
		out     []NodeLine
		pending error
	)
	for sc.Scan() {
		if pending != nil {
			return nil, pending
		}
		var l NodeLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			pending = fmt.Errorf("%w: line %d: %v", ErrNodeLine, len(out)+1, err)
			continue
		}
		if _, err := l.Time(); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrNodeLine, len(out)+1, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNodeLine, err)
	}
	return out, nil
}

// ViewerPlan is what one `seedcast viewer` process runs for a harness
// (its hidden --plan flag): nodes that join and leave at given offsets
// from Start, each with its relay budget and its stats file.
type ViewerPlan struct {
	Start time.Time  `json:"start"`
	Nodes []PlanNode `json:"nodes"`
}

// PlanNode is one node of a ViewerPlan. Leave 0 stays to the end.
type PlanNode struct {
	ID         int      `json:"id"`
	BudgetKbps int      `json:"budgetKbps"`
	Join       Duration `json:"join"`
	Leave      Duration `json:"leave"`
	Stats      string   `json:"stats"`
}

// MaxPlanBytes bounds a plan file.
const MaxPlanBytes = 4 << 20

// ReadViewerPlan decodes and checks a plan.
func ReadViewerPlan(r io.Reader) (ViewerPlan, error) {
	var p ViewerPlan
	dec := json.NewDecoder(io.LimitReader(r, MaxPlanBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%w: plan: %v", ErrNodeLine, err)
	}
	if p.Start.IsZero() || len(p.Nodes) == 0 {
		return p, fmt.Errorf("%w: plan: a start and at least one node are required", ErrNodeLine)
	}
	for _, n := range p.Nodes {
		if n.BudgetKbps < 0 || n.Join < 0 || n.Leave < 0 || (n.Leave > 0 && n.Leave <= n.Join) || n.Stats == "" {
			return p, fmt.Errorf("%w: plan: node %d: budget %d, join %v, leave %v, stats %q", ErrNodeLine, n.ID, n.BudgetKbps,
				time.Duration(n.Join), time.Duration(n.Leave), n.Stats)
		}
	}
	return p, nil
}
