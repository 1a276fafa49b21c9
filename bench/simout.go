package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteSimResults writes a series of runs (one per audience size) to dir:
// results.json (the array of SimResult), results.md (the table against a
// plain CDN, the founding design's claim and the fluid bound, then each
// run's depths) and the plots (WriteSimPlots).
func WriteSimResults(dir string, results []SimResult) error {
	if err := writeResults(dir, results, SimMarkdown(results)); err != nil {
		return err
	}
	return WriteSimPlots(dir, results)
}

// writeResults writes results as results.json and md as results.md in
// dir.
func writeResults(dir string, results any, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644)
}

// SimMarkdown is the runs as a Markdown report.
func SimMarkdown(results []SimResult) string {
	var b strings.Builder
	if len(results) == 0 {
		return "No runs.\n"
	}
	r0 := results[0]
	fmt.Fprintf(&b, "# Simulator: %s, %.1f Mbit/s, %.0f s, seed %d, playback buffer %.1f s, chunks of %d ms, %d substreams", r0.Scenario, r0.BitrateMbps, r0.DurationSeconds, r0.Seed, r0.BufferSeconds, r0.ChunkMs, r0.Substreams)
	if r0.CutThrough {
		b.WriteString(", cut-through relay")
	}
	b.WriteString("\n\n")
	b.WriteString("Server egress in Mbit/s over the measured window (the run's end, after every viewer joined and settled). ")
	b.WriteString("CDN is a plain CDN's n·r; claim the founding design's table (scaled to the bitrate); ")
	b.WriteString("bound the fluid bound max(r, n·r − U), the least any swarm of these viewers can do.\n\n")
	b.WriteString("| viewers | CDN n·r | design claim | fluid bound | measured | copies | ÷ bound | offload | continuity | latency p50 / p95 / p99 ms | startup p50 ms | max depth | wall s | CPU s | peak RSS MB |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		claim := "—"
		if r.ClaimMbps != nil {
			claim = fmt.Sprintf("%.0f", *r.ClaimMbps)
		}
		fmt.Fprintf(&b, "| %d | %.0f | %s | %.1f | %.1f | %.1f | %.2f | %.1f%% | %.3f%% | %.0f / %.0f / %.0f | %.0f | %d | %.1f | %.1f | %.0f |\n",
			r.Viewers, r.CDNMbps, claim, r.FluidBoundMbps, r.ServerEgressMbps, r.Copies, r.Efficiency,
			100*r.Offload, 100*r.Continuity, r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyP99Ms, r.StartupP50Ms, r.MaxDepth, r.WallSeconds, r.CPUSeconds, r.PeakRSSMB)
	}
	b.WriteString("\nMeasured egress is the origin's seed (data channels) plus HTTP (chunks viewers pulled near their deadline, or fetched for substreams with no upstream).\n")
	for _, r := range results {
		fmt.Fprintf(&b, "\n## %d viewers\n\n", r.Viewers)
		fmt.Fprintf(&b, "Egress %.1f Mbit/s: seed %.1f + HTTP %.1f. Relay budgets U = %.0f Mbit/s, relayed %.0f Mbit/s. %d joins, %d left, %d vanished",
			r.ServerEgressMbps, r.SeedMbps, r.HTTPMbps, r.RelayBudgetMbps, r.RelayMbps, r.Joins, r.Leaves, r.Vanished)
		if r.Events > 0 { // the simulator's (a real run's tracker and cores are out of reach)
			fmt.Fprintf(&b, "; %d core events. At the end the origin's seed served %d of its %d links, viewers %d links of the %d slots they may serve; %d substreams had no upstream.",
				r.Events, r.Tracker.OriginLinks, r.Tracker.OriginSlots, r.Tracker.PeerLinks, r.Tracker.PeerSlots, r.Tracker.Unassigned)
		} else {
			b.WriteString(".")
		}
		if r.Adversaries > 0 {
			fmt.Fprintf(&b, " %d adversaries (left out of the measures): %d bad chunks stored, %d peers cut off by honest viewers, an adversary fed one substream for at most %v s in a row, %.2f%% of the honest viewers' substream-time (%.1f%% had one anywhere above them in the substream's tree).",
				r.Adversaries, r.BadChunksStored, r.Complaints, r.AdversaryFedMaxSeconds, 100*r.AdversaryFedShare, 100*r.AdversaryAboveShare)
		}
		if r.SameRegionLinks != nil {
			fmt.Fprintf(&b, " Peer links within a region: %.1f%% (%.1f%% at random); mean peer-link RTT %.0f ms.", 100**r.SameRegionLinks, 100**r.RandomSameRegion, r.PeerLinkRTTMs)
			if r.SameRegionBytes != nil {
				fmt.Fprintf(&b, " Peer bytes within a region over the window: %.1f%%.", 100**r.SameRegionBytes)
			}
		}
		fmt.Fprintf(&b, " Honest viewers, over the window: %d chunks asked of the origin near a deadline, %d fetched over HTTP for substreams with no upstream; %d upstreams reported stalled, %d substreams reassigned.",
			r.OriginPulls, r.HTTPFed, r.StallReports, r.Reassigned)
		if len(r.Timeline) > 0 {
			b.WriteString("\n\nSecond by second (the viewers online at each second's end; their counters' growth in it):\n\n")
			b.WriteString("| s | viewers | HTTP copies | origin pulls | late-push pulls | stall reports | reassigned | chunks late | depth mean / max | slots / links |\n")
			b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, t := range r.Timeline {
				fmt.Fprintf(&b, "| %.0f | %d | %.1f | %d | %d | %d | %d | %d | %.2f / %d | %d / %d |\n", t.T, t.Viewers, t.HTTPCopies,
					t.OriginPulls, t.PullsLatePush, t.StallReports, t.Reassigned, t.ChunksLate, t.MeanDepth, t.MaxDepth, t.PeerSlots, t.PeerLinks)
			}
		}
		b.WriteString("\n\n| depth | viewers at the end | samples | p50 ms | p95 ms | p99 ms | continuity | offload |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		count := map[int]int{}
		for _, d := range r.Depths {
			count[d.Depth] = d.Viewers
		}
		for _, d := range r.LatencyByDepth {
			fmt.Fprintf(&b, "| %d | %d | %d | %.0f | %.0f | %.0f | %.3f%% | %.1f%% |\n", d.Depth, count[d.Depth], d.Samples, d.P50Ms, d.P95Ms, d.P99Ms, 100*d.Continuity, 100*d.Offload)
		}
	}
	return b.String()
}
