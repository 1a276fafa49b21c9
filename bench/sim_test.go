package bench

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/origin"
)

func scenario(t testing.TB, name string) Scenario {
	t.Helper()
	sc, err := LoadScenario(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func runSim(t testing.TB, sc Scenario, n int, d time.Duration, seed uint64) SimResult {
	t.Helper()
	res, err := RunSim(context.Background(), SimParams{Scenario: sc, Viewers: n, Duration: d, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// figures is a result without what the machine decides (wall time, memory).
func figures(t *testing.T, r SimResult) string {
	t.Helper()
	r.WallSeconds, r.PeakRSSMB, r.CPUSeconds, r.LiveHeapMB = 0, 0, 0, 0
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSimDeterministic: the same seed gives the same run, figure for
// figure and event for event (churn, silent departures and loss
// included); another seed gives another run.
func TestSimDeterministic(t *testing.T) {
	sc := scenario(t, "churn")
	sc.Loss = 0.01
	sc.JoinOver, sc.Settle = Duration(5*time.Second), Duration(5*time.Second)
	sc.Churn.PerMinute = 0.5
	a := runSim(t, sc, 60, 20*time.Second, 7)
	b := runSim(t, sc, 60, 20*time.Second, 7)
	if fa, fb := figures(t, a), figures(t, b); fa != fb {
		t.Fatalf("seed 7 twice differs:\n%s\n%s", fa, fb)
	}
	c := runSim(t, sc, 60, 20*time.Second, 8)
	if figures(t, a) == figures(t, c) {
		t.Error("seeds 7 and 8 gave the same run: the seed is not used")
	}
	t.Logf("seed 7: %d events, egress %.2f Mbps; seed 8: %d events, egress %.2f Mbps", a.Events, a.ServerEgressMbps, c.Events, c.ServerEgressMbps)
}

// TestSimConservation: every byte a node put on the wire to a peer was
// delivered, is still in flight, or was lost to churn (its receiver or
// link gone): with silent departures, graceful ones and loss.
func TestSimConservation(t *testing.T) {
	sc := scenario(t, "churn")
	sc.Loss = 0.02
	sc.JoinOver, sc.Settle = Duration(5*time.Second), Duration(5*time.Second)
	sc.Churn.PerMinute, sc.Churn.Silent = 0.6, 0.5
	r := runSim(t, sc, 80, 30*time.Second, 3)
	tr := r.Traffic
	t.Logf("sent %d B = delivered %d + lost %d + in flight %d (resent %d); %d left, %d vanished",
		tr.Sent, tr.Delivered, tr.Lost, r.InFlightBytes, tr.Resent, r.Leaves, r.Vanished)
	if tr.Sent != tr.Delivered+tr.Lost+r.InFlightBytes {
		t.Errorf("sent %d ≠ delivered %d + lost %d + in flight %d (off by %d)", tr.Sent, tr.Delivered, tr.Lost, r.InFlightBytes, tr.Sent-tr.Delivered-tr.Lost-r.InFlightBytes)
	}
	if tr.Delivered == 0 || tr.Lost == 0 || tr.Resent == 0 || r.Vanished == 0 || r.Leaves == 0 {
		t.Errorf("the run does not exercise what it checks: %+v, %d left, %d vanished", tr, r.Leaves, r.Vanished)
	}
}

// TestSimFluidBound: no scenario beats the fluid bound max(r, n·r − U);
// and when no viewer relays, the origin sends every viewer its copy: egress
// ≈ n·r.
func TestSimFluidBound(t *testing.T) {
	for _, name := range []string{"generous", "starved", "residential", "no-relay"} {
		t.Run(name, func(t *testing.T) {
			sc := scenario(t, name)
			sc.JoinOver, sc.Settle = Duration(10*time.Second), Duration(10*time.Second)
			r := runSim(t, sc, 40, 40*time.Second, 1)
			t.Logf("egress %.1f Mbps, bound %.1f (÷ %.2f), CDN %.1f, offload %.3f, continuity %.4f", r.ServerEgressMbps, r.FluidBoundMbps, r.Efficiency, r.CDNMbps, r.Offload, r.Continuity)
			if r.ServerEgressMbps < 0.98*r.FluidBoundMbps {
				t.Errorf("egress %.2f Mbps beats the fluid bound %.2f", r.ServerEgressMbps, r.FluidBoundMbps)
			}
			if name == "no-relay" {
				if math.Abs(r.ServerEgressMbps/r.CDNMbps-1) > 0.02 || r.Offload != 0 {
					t.Errorf("nobody relays, yet egress %.2f Mbps for n·r = %.2f (offload %.3f)", r.ServerEgressMbps, r.CDNMbps, r.Offload)
				}
				if r.FluidBoundMbps != r.CDNMbps {
					t.Errorf("bound %.2f, want n·r %.2f", r.FluidBoundMbps, r.CDNMbps)
				}
			}
		})
	}
}

// TestSimStarved: in a swarm whose relays cannot feed it (half relay off,
// half at 1.2× the stream), the tracker overbooks the relays (120% of the
// slots their announced budgets buy: 96% of their whole budget), and the
// origin sends at most a bounded multiple of the fluid bound. With 4
// substreams a 4.8 Mbit/s relay serves 4 links of 1 Mbit/s: 1.25× at 200
// viewers, where the budgets' slots alone give 1.57×. With 8 substreams
// and a 4 s buffer (the time the finer split costs a hop) it serves 9 of
// 0.5 Mbit/s: 1.12×.
func TestSimStarved(t *testing.T) {
	tests := []struct {
		name       string
		substreams int
		buffer     time.Duration
		most       float64 // × the fluid bound
	}{
		{"K=4", 4, 0, 1.35},
		{"K=8, 4 s buffer", 8, 4 * time.Second, 1.17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := RunSim(context.Background(), SimParams{
				Scenario: scenario(t, "starved"), Viewers: 200, Duration: 40 * time.Second, Seed: 1,
				Substreams: tt.substreams, Buffer: tt.buffer,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("egress %.1f Mbps (%.1f copies), bound %.1f (÷ %.2f), continuity %.4f, p95 %.0f ms",
				r.ServerEgressMbps, r.Copies, r.FluidBoundMbps, r.Efficiency, r.Continuity, r.LatencyP95Ms)
			if r.Substreams != tt.substreams {
				t.Errorf("ran with %d substreams, want %d", r.Substreams, tt.substreams)
			}
			if r.Efficiency > tt.most || r.Continuity < 0.995 {
				t.Errorf("egress %.2f × the bound, continuity %.4f; want ≤ %.2f ×, ≥ 0.995", r.Efficiency, r.Continuity, tt.most)
			}
		})
	}
}

// TestSimHTTPCap: the origin's HTTP egress cap (seedcast serve
// --http-egress) is honoured to its burst in every second, and the viewers
// it refuses pull from their peers meanwhile: a starved swarm that fetches
// 361 Mbit/s over HTTP uncapped (1.25× the bound) plays on at 340 with
// its relays' spare upload (1.19×), continuity ≥ 99.5%.
func TestSimHTTPCap(t *testing.T) {
	sc := scenario(t, "starved")
	sc.Origin.HTTPEgress = 340_000
	r := runSim(t, sc, 200, 40*time.Second, 1)
	t.Logf("http %.1f Mbps (peak %.1f in a second, cap %.0f), %d refused; egress ÷ bound %.2f, continuity %.4f",
		r.HTTPMbps, r.HTTPPeakMbps, r.HTTPCapMbps, r.HTTPRefused, r.Efficiency, r.Continuity)
	burst := float64(origin.EgressBurst(340_000)) * 8 / 1e6
	switch {
	case r.HTTPPeakMbps > 340+burst:
		t.Errorf("%.1f Mbit/s over HTTP in a second, cap 340 + a burst of %.1f", r.HTTPPeakMbps, burst)
	case r.HTTPRefused == 0:
		t.Error("the cap refused nothing: the test does not reach it")
	case r.Continuity < 0.995:
		t.Errorf("continuity %.4f under the cap, want ≥ 0.995", r.Continuity)
	case r.Efficiency > 1.22:
		t.Errorf("egress %.2f × the bound: the peers did not take up what the cap refused", r.Efficiency)
	}
}

// TestSimReport: a run of 1,000 viewers (100 under -race) over 30 s of
// stream fills every field of the report with sane values, and its files
// (results.json, results.md, the plots) are written.
func TestSimReport(t *testing.T) {
	n := 1000
	if raceEnabled {
		n = 100
	}
	start := time.Now()
	r := runSim(t, scenario(t, "generous"), n, 30*time.Second, 1)
	t.Logf("%d viewers, 30 s: %d events in %v; egress %.1f Mbps (%.1f copies), bound %.1f, offload %.3f, continuity %.4f, p50/p95/p99 %.0f/%.0f/%.0f ms, startup %.0f ms, max depth %d, peak RSS %.0f MB",
		n, r.Events, time.Since(start).Round(time.Millisecond), r.ServerEgressMbps, r.Copies, r.FluidBoundMbps, r.Offload, r.Continuity,
		r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyP99Ms, r.StartupP50Ms, r.MaxDepth, r.PeakRSSMB)
	check := func(name string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s out of range", name)
		}
	}
	check("viewers", r.Viewers == n && r.Joins == n && r.MeanViewers == float64(n))
	check("bitrate", r.BitrateMbps == 4)
	check("egress", r.ServerEgressMbps > 0 && math.Abs(r.SeedMbps+r.HTTPMbps-r.ServerEgressMbps) < 1e-9)
	check("copies", math.Abs(r.Copies-r.ServerEgressMbps/4) < 1e-9)
	check("bound", r.FluidBoundMbps == 4 && r.ServerEgressMbps >= 0.98*r.FluidBoundMbps && r.Efficiency >= 0.98)
	check("CDN", r.CDNMbps == float64(n)*4)
	check("claim", r.ClaimMbps != nil && *r.ClaimMbps > 0)
	check("offload", r.Offload > 0 && r.Offload <= 1)
	check("continuity", r.Continuity > 0.95 && r.Continuity <= 1 && r.OnTime > 0)
	if !raceEnabled {
		// Issue 13's shape at 1,000 viewers: the origin's seed fills its
		// 40 links (10 copies, and 1% of framing) and HTTP adds next to
		// nothing; every chunk on time.
		check("copies ≤ 10.5", r.Copies <= 10.5)
		check("continuity ≥ 99.5%", r.Continuity >= 0.995)
	}
	check("latency", r.LatencyP50Ms > 0 && r.LatencyP50Ms <= r.LatencyP95Ms && r.LatencyP95Ms <= r.LatencyP99Ms && r.LatencyP99Ms < 10_000)
	check("startup", r.StartupP50Ms > 0 && r.StartupP50Ms <= r.StartupP95Ms && r.StartupP95Ms < 10_000 && r.NotStarted == 0)
	check("depth", r.MaxDepth >= 1 && r.MaxDepth < 64 && r.MeanDepth >= 1 && len(r.Depths) > 0 && r.Depths[len(r.Depths)-1].Depth == r.MaxDepth)
	sum := 0
	for _, d := range r.Depths {
		sum += d.Viewers
	}
	check("depth distribution", sum == n)
	check("latency by depth", len(r.LatencyByDepth) > 0 && len(r.LatencyCDF) == len(r.LatencyByDepth))
	for _, c := range r.LatencyCDF {
		check("cdf", len(c.Ms) == 101 && c.Ms[0] <= c.Ms[50] && c.Ms[50] <= c.Ms[100])
	}
	check("window", r.WindowSeconds >= 7.5 && r.WindowStartSeconds+r.WindowSeconds == 30)
	check("cost", r.Events > 0 && r.WallSeconds > 0 && (r.PeakRSSMB > 0 || !hasProc()))
	check("traffic", r.Traffic.Sent > 0 && r.Traffic.Sent == r.Traffic.Delivered+r.Traffic.Lost+r.InFlightBytes)

	dir := t.TempDir()
	if err := WriteSimResults(dir, []SimResult{r}); err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back) != 1 {
		t.Fatalf("results.json: %v, %d runs", err, len(back))
	}
	for _, k := range []string{"viewers", "bitrateMbps", "serverEgressMbps", "copies", "fluidBoundMbps", "offload", "continuity",
		"latencyP50Ms", "latencyP95Ms", "latencyP99Ms", "startupP50Ms", "maxDepth", "wallSeconds", "peakRSSMB"} {
		if _, ok := back[0][k]; !ok {
			t.Errorf("results.json has no %s", k)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil || !strings.Contains(string(md), "| viewers | CDN n·r | design claim | fluid bound | measured |") {
		t.Errorf("results.md: %v\n%s", err, md)
	}
	for _, f := range []string{"egress", "latency-cdf-" + itoa(n), "depths-" + itoa(n)} {
		for _, ext := range []string{".svg", ".png"} {
			if st, err := os.Stat(filepath.Join(dir, f+ext)); err != nil || st.Size() == 0 {
				t.Errorf("%s%s: %v", f, ext, err)
			}
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func hasProc() bool {
	_, err := os.Stat("/proc/self/status")
	return err == nil
}

// TestSimRegionsMix: every region gets the audience's mix of classes, and
// every class the regions' shares (geo: three classes and three regions
// whose interleaves, shared, would cycle in step and give us-east none of
// the largest budgets).
func TestSimRegionsMix(t *testing.T) {
	sc := scenario(t, "geo")
	s, err := newSim(SimParams{Scenario: sc, Viewers: 1000, Duration: time.Minute, Seed: 1, BitrateKbps: int(sc.Bitrate), ChunkDuration: manifest.DefaultChunkDuration})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	count := make([][]int, len(sc.Audience))
	for c := range count {
		count[c] = make([]int, len(sc.Regions))
	}
	for range n {
		c, r := s.draw()
		count[c][r]++
	}
	for c, cl := range sc.Audience {
		for r, reg := range sc.Regions {
			want := n * cl.Share * reg.Share
			if got := float64(count[c][r]); math.Abs(got-want) > 2 {
				t.Errorf("class %d in %s: %.0f viewers, want %.0f", c, reg.Name, got, want)
			}
		}
	}
}

// TestSimGeo: with viewers in three regions, the tracker's GeoIP-based
// choice puts more peer links within a region than picking at random
// would.
func TestSimGeo(t *testing.T) {
	sc := scenario(t, "geo")
	sc.JoinOver, sc.Settle = Duration(10*time.Second), Duration(10*time.Second)
	r := runSim(t, sc, 120, 30*time.Second, 1)
	if r.SameRegionLinks == nil || r.SameRegionBytes == nil {
		t.Fatal("no region figures")
	}
	t.Logf("peer links within a region %.3f (random %.3f), peer bytes %.3f, mean peer-link RTT %.1f ms; egress %.1f Mbps, continuity %.4f",
		*r.SameRegionLinks, *r.RandomSameRegion, *r.SameRegionBytes, r.PeerLinkRTTMs, r.ServerEgressMbps, r.Continuity)
	if *r.SameRegionLinks < *r.RandomSameRegion+0.1 {
		t.Errorf("%.3f of peer links within a region (random: %.3f)", *r.SameRegionLinks, *r.RandomSameRegion)
	}
	if *r.SameRegionBytes < *r.RandomSameRegion+0.1 {
		t.Errorf("%.3f of peer bytes within a region (random: %.3f)", *r.SameRegionBytes, *r.RandomSameRegion)
	}
}

// TestSimAdversaries: 10% of the audience lies (declares 25× the stream
// rate of relay and forwards nothing) or poisons (relays bytes that are not
// the chunk's, and batches with forged signatures). No bad chunk is stored
// anywhere, the poisoners are cut off, the honest viewers play on, and no
// adversary feeds an honest viewer's substream for long. The same run
// without the adversaries' harm (both classes honest) is the baseline.
func TestSimAdversaries(t *testing.T) {
	sc := scenario(t, "liars")
	sc.JoinOver, sc.Settle = Duration(15*time.Second), Duration(10*time.Second)
	r := runSim(t, sc, 100, 40*time.Second, 1)
	honest := sc
	honest.Audience = append([]Class(nil), sc.Audience...)
	for i := range honest.Audience {
		honest.Audience[i].Adversary = ""
	}
	base := runSim(t, honest, 100, 40*time.Second, 1)
	t.Logf("adversaries %d: bad chunks stored %d, peers cut off %d, longest fed %v s, fed share %.4f; honest continuity %.5f, egress %.1f Mbps (baseline %.5f, %.1f Mbps)",
		r.Adversaries, r.BadChunksStored, r.Complaints, r.AdversaryFedMaxSeconds, r.AdversaryFedShare, r.Continuity, r.ServerEgressMbps, base.Continuity, base.ServerEgressMbps)
	if r.Adversaries != 10 || base.Adversaries != 0 {
		t.Fatalf("%d adversaries, baseline %d: want 10 and 0", r.Adversaries, base.Adversaries)
	}
	if r.BadChunksStored != 0 {
		t.Errorf("%d bad chunks stored", r.BadChunksStored)
	}
	if r.Complaints == 0 {
		t.Error("no poisoner was cut off")
	}
	if r.Continuity < 0.99 {
		t.Errorf("honest continuity %.4f, want ≥ 0.99", r.Continuity)
	}
	for kind, s := range r.AdversaryFedMaxSeconds {
		if s > 8 {
			t.Errorf("a %s fed one honest substream for %d s in a row", kind, s)
		}
	}
	if r.AdversaryFedShare > 0.1 {
		t.Errorf("adversaries fed %.3f of the honest viewers' substream-time", r.AdversaryFedShare)
	}
}

// TestScenarioFiles: every scenario shipped loads, and runs briefly.
func TestScenarioFiles(t *testing.T) {
	names := Scenarios()
	if len(names) < 6 {
		t.Fatalf("scenarios: %v", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			sc := scenario(t, name)
			if sc.Name != name {
				t.Errorf("scenarios/%s.json names itself %q", name, sc.Name)
			}
			if sc.About == "" {
				t.Error("no about")
			}
			sc.JoinOver, sc.Settle = Duration(3*time.Second), Duration(3*time.Second)
			r := runSim(t, sc, 12, 12*time.Second, 1)
			if r.Joins < 12 || r.OnTime == 0 {
				t.Errorf("%d joins, %d chunks on time", r.Joins, r.OnTime)
			}
		})
	}
	generous, residential := scenario(t, "generous"), scenario(t, "residential")
	if m := generous.MeanBudgetKbps(4000); math.Abs(m/4000-1.4) > 1e-9 {
		t.Errorf("generous: mean relay %.0f kbps, want 1.4 × 4000", m)
	}
	for _, c := range []struct {
		relay string
		kbps  int
	}{{"off", 0}, {"low", 500}, {"medium", 1250}, {"high", 2500}, {"5Mbps", 5000}} {
		found := false
		for _, cl := range residential.Audience {
			if cl.Relay == c.relay {
				found = true
				if got := cl.BudgetKbps(4000); got != c.kbps {
					t.Errorf("residential %s: %d kbps, want %d", c.relay, got, c.kbps)
				}
			}
		}
		if !found {
			t.Errorf("residential has no %s class", c.relay)
		}
	}
	if starved := scenario(t, "starved"); starved.MeanBudgetKbps(4000) >= 4000 {
		t.Error("starved: total relay not below n·r")
	}
	if _, err := LoadScenario("nope"); !errors.Is(err, ErrScenario) {
		t.Errorf("an unknown scenario: %v", err)
	}
}

// TestScenarioMalformed: a malformed scenario gives a clear error wrapping
// ErrScenario, never a panic.
func TestScenarioMalformed(t *testing.T) {
	base := `"name":"x","audience":[{"share":1,"relayX":1}]`
	for _, c := range []struct{ name, in, want string }{
		{"empty", ``, "EOF"},
		{"not json", `{"name":`, "unexpected EOF"},
		{"unknown field", `{` + base + `,"viewrs":10}`, "unknown field"},
		{"trailing", `{` + base + `} {}`, "after the scenario"},
		{"no name", `{"audience":[{"share":1,"relayX":1}]}`, "name"},
		{"no audience", `{"name":"x"}`, "audience"},
		{"shares", `{"name":"x","audience":[{"share":0.5,"relayX":1}]}`, "sum to 0.5"},
		{"both relays", `{"name":"x","audience":[{"share":1,"relayX":1,"relay":"low"}]}`, "one of them"},
		{"bad level", `{"name":"x","audience":[{"share":1,"relay":"loud"}]}`, "bad relay"},
		{"bad rate", `{` + base + `,"bitrate":"fast"}`, "fast"},
		{"rate a number", `{` + base + `,"bitrate":4}`, "a rate is a string"},
		{"bad duration", `{` + base + `,"duration":"soon"}`, "soon"},
		{"negative", `{` + base + `,"duration":"-5s"}`, "negative"},
		{"loss", `{` + base + `,"loss":0.9}`, "loss"},
		{"buffer", `{` + base + `,"buffer":"2m"}`, "buffer over a minute"},
		{"rtt without regions", `{` + base + `,"rttMs":[[10]]}`, "need regions"},
		{"rtt shape", `{` + base + `,"regions":[{"name":"a","share":1,"lat":0,"lon":0}],"rttMs":[[10,20]]}`, "rttMs row 0"},
		{"origin region", `{` + base + `,"regions":[{"name":"a","share":1,"lat":0,"lon":0}],"rttMs":[[10]],"origin":{"region":"b"}}`, "not a region"},
		{"churn", `{` + base + `,"churn":{"perMinute":2}}`, "churn"},
		{"adversary", `{"name":"x","audience":[{"share":1,"relayX":1,"adversary":"troll"}]}`, "liar or poisoner"},
		{"huge", `{"name":"` + strings.Repeat("x", MaxScenarioBytes) + `"}`, "over"},
		{"substreams", `{` + base + `,"substreams":65}`, "substreams"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(c.in))
			if !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an ErrScenario saying %q", err, c.want)
			}
		})
	}
}

// FuzzScenario: the decoder never panics; what it accepts is in range,
// runs its budget math, and survives a round trip through JSON.
func FuzzScenario(f *testing.F) {
	for _, name := range Scenarios() {
		b, err := scenarioFiles.ReadFile("scenarios/" + name + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","audience":[{"share":1,"relayX":1e308}]}`))
	f.Add([]byte(`{"name":"x","audience":[{"share":1,"relay":"1e9Mbps"}],"loss":-0}`))
	f.Add([]byte(`{"name":"x","audience":[{"share":1,"relayX":1}],"origin":{"httpEgress":"100Mbps"},"substreams":8}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseScenario(b)
		if err != nil {
			if !errors.Is(err, ErrScenario) {
				t.Fatalf("error %v does not wrap ErrScenario", err)
			}
			return
		}
		sum := 0.0
		for _, c := range sc.Audience {
			sum += c.Share
			if c.BudgetKbps(int(sc.Bitrate)) < 0 {
				t.Fatalf("negative budget: %+v", c)
			}
		}
		if math.Abs(sum-1) > 1e-6 || sc.Bitrate <= 0 || sc.Duration <= 0 {
			t.Fatalf("accepted out of range: %+v", sc)
		}
		out, err := json.Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseScenario(out)
		if err != nil {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
		if len(back.Audience) != len(sc.Audience) || back.Duration != sc.Duration {
			t.Fatalf("round trip changed the scenario:\n%+v\n%+v", sc, back)
		}
	})
}

// TestSimClaim: the design's table, at its points and between them (on
// log n), scaled to the bitrate, and nothing outside 10 to 100,000.
func TestSimClaim(t *testing.T) {
	for _, c := range []struct {
		n    float64
		kbps int
		want float64
		ok   bool
	}{
		{10, 4000, 40, true}, {100, 4000, 60, true}, {1000, 4000, 80, true}, {10000, 4000, 100, true}, {100000, 4000, 150, true},
		{math.Sqrt(10 * 100), 4000, 50, true}, {1000, 2000, 40, true}, {5, 4000, 0, false}, {200000, 4000, 0, false},
	} {
		got, ok := ClaimMbps(c.n, c.kbps)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("ClaimMbps(%v, %d) = %v, %v; want %v, %v", c.n, c.kbps, got, ok, c.want, c.ok)
		}
	}
}

// TestSimTimeline: the run second by second adds up to the window's
// figures: with no one leaving, the seconds after the window's start sum to
// its origin pulls, stall reports and reassignments, and to its HTTP egress.
func TestSimTimeline(t *testing.T) {
	sc := scenario(t, "flash-crowd")
	r := runSim(t, sc, 200, 16*time.Second, 2)
	if len(r.Timeline) != 16 {
		t.Fatalf("%d seconds in the timeline, want 16", len(r.Timeline))
	}
	var pulls, stalls, moved int
	var copies float64
	for _, s := range r.Timeline {
		if s.T > r.WindowStartSeconds {
			pulls += s.OriginPulls
			stalls += s.StallReports
			moved += s.Reassigned
			copies += s.HTTPCopies
		}
	}
	if pulls != r.OriginPulls || stalls != r.StallReports || moved != r.Reassigned {
		t.Errorf("the window's seconds sum to %d origin pulls, %d stall reports, %d reassigned; the window says %d, %d, %d",
			pulls, stalls, moved, r.OriginPulls, r.StallReports, r.Reassigned)
	}
	t.Logf("window from %.0f s: %d origin pulls, %d stall reports, %d reassigned, %.1f HTTP copies", r.WindowStartSeconds, pulls, stalls, moved, copies)
	secs := r.DurationSeconds - r.WindowStartSeconds
	if want := r.HTTPMbps / r.BitrateMbps; math.Abs(copies/secs-want) > 0.05+want*0.01 {
		t.Errorf("the window's seconds average %.2f HTTP copies; the window says %.2f", copies/secs, want)
	}
	if pulls == 0 || copies == 0 {
		t.Errorf("the window had %d origin pulls and %.1f HTTP copies: the run does not exercise what it checks", pulls, copies)
	}
	last := r.Timeline[len(r.Timeline)-1]
	if last.Viewers != 200 || last.PeerLinks != r.Tracker.PeerLinks || last.MaxDepth != r.MaxDepth {
		t.Errorf("the last second: %+v; the run ends with %d links, max depth %d", last, r.Tracker.PeerLinks, r.MaxDepth)
	}
	if r.Timeline[0].Viewers != 0 || r.Timeline[5].Viewers == 0 {
		t.Errorf("viewers by second: %d at 1 s (joins start after it), %d at 6 s", r.Timeline[0].Viewers, r.Timeline[5].Viewers)
	}
}
