package bench

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/seedcast/seedcast/scheduler"
)

// ErrScenario reports a scenario file that cannot be read or run.
var ErrScenario = errors.New("bench: bad scenario")

// MaxScenarioBytes bounds a scenario file.
const MaxScenarioBytes = 64 << 10

//go:embed scenarios/*.json
var scenarioFiles embed.FS

// Scenario is one simulator scenario, as its JSON file says it: the
// audience's relay budgets, how viewers come and go, where they are and
// the links between them. Rates are strings such as "4Mbps" or "500kbps",
// durations strings such as "30s". Zero fields take the defaults shown.
type Scenario struct {
	Name  string `json:"name"`
	About string `json:"about"`
	// Bitrate is the stream rate r ("4Mbps"); Duration the run ("120s").
	Bitrate  Rate     `json:"bitrate"`
	Duration Duration `json:"duration"`
	// JoinOver is the time from the first viewer's join to the last
	// (40 s), at a steady rate; Settle the time after it before the
	// measured window (20 s). The window is the rest of the run, and at
	// least its last quarter.
	JoinOver Duration `json:"joinOver"`
	Settle   Duration `json:"settle"`
	// Audience is the viewers' relay settings and their shares (summing
	// to 1), given out interleaved so that any prefix of the joins
	// follows the mix.
	Audience []Class `json:"audience"`
	// Origin is the origin's seed and HTTP service.
	Origin Origin `json:"origin"`
	// Churn, when PerMinute > 0, replaces that share of the audience
	// every minute once every viewer has joined.
	Churn Churn `json:"churn"`
	// Regions are where viewers are (one region, "local", when empty);
	// RTTms[i][j] the round trip between a viewer in region i and one in
	// region j (in-region on the diagonal). Without regions, peers are
	// PeerRTTms apart (40 ms).
	Regions   []Region    `json:"regions"`
	RTTms     [][]float64 `json:"rttMs"`
	PeerRTTms float64     `json:"peerRttMs"`
	// Buffer is the viewers' playback delay behind the live edge
	// (the tracker's delay, sent to every viewer; 0: the production default,
	// protocol.DefaultDelay).
	Buffer Duration `json:"buffer"`
	// Substreams is K, the substreams the stream is split into for push
	// delivery (0: the tracker's default, 4; seedcast tracker
	// --substreams). Finer substreams let a relay use more of its budget
	// in whole links, and cost a hop more time: each chunk goes to more
	// downstreams one after the other.
	Substreams int `json:"substreams"`
	// Loss is the chance a frame between peers is lost once (and sent
	// again: data channels are reliable); 0 to 0.5.
	Loss float64 `json:"loss"`
}

// Class is one kind of viewer: its share of the audience and its relay
// setting, either a level on a line (Relay: off, low, medium, high, or an
// exact rate such as "5Mbps", with Upload and Reserve: the production
// budget math, scheduler.Budget) or a multiple of the stream rate (RelayX).
type Class struct {
	Share   float64  `json:"share"`
	Relay   string   `json:"relay,omitempty"`
	RelayX  *float64 `json:"relayX,omitempty"`
	Upload  Rate     `json:"upload,omitempty"`  // the viewer's upload line (10Mbps)
	Reserve Rate     `json:"reserve,omitempty"` // kept for other apps (5Mbps)
	Down    Rate     `json:"down,omitempty"`    // the download line (100Mbps)
	// Adversary makes the class hostile: "liar" declares its relay
	// setting and forwards nothing (its links stay up, it chokes nobody);
	// "poisoner" relays chunks whose bytes are not the chunk's and batches
	// whose signatures are forged. Their own viewing is left out of the
	// measures; what they cost the origin is in them.
	Adversary string `json:"adversary,omitempty"`
}

// Adversary kinds (Class.Adversary).
const (
	Liar     = "liar"
	Poisoner = "poisoner"
)

// Origin is the origin: its seed's egress budget (50 Mbit/s, seedcast
// serve's default) and the substream links the tracker gives it (Slots;
// 0: what 80% of its budget pays for, ⌊0.8·egress·K/r⌋, the rest left to
// repairs and HTTP fallback — serve's fixed default of 64 over-commits a 50
// Mbit/s seed for streams above 3.1 Mbit/s), and its round trip to viewers
// without regions (40 ms).
type Origin struct {
	Slots  int     `json:"slots"`
	Egress Rate    `json:"egress"`
	RTTms  float64 `json:"rttMs"`
	// HTTPEgress caps the origin's HTTP media egress (seedcast serve
	// --http-egress): fetches past it are refused, and the viewers pull
	// from peers meanwhile. 0: no cap.
	HTTPEgress Rate `json:"httpEgress,omitempty"`
	// Region is where the origin is (a region's name); RTTms then comes
	// from the region matrix.
	Region string `json:"region"`
}

// Churn replaces PerMinute of the audience every minute: a viewer leaves
// and a new one joins. Silent is the share who leave without a word; their
// peers find them gone after LinkTimeout (5 s, ICE consent), the tracker
// after TrackerTimeout (30 s, keepalive).
type Churn struct {
	PerMinute      float64  `json:"perMinute"`
	Silent         float64  `json:"silent"`
	LinkTimeout    Duration `json:"linkTimeout"`
	TrackerTimeout Duration `json:"trackerTimeout"`
}

// Region is a place viewers are in, as GeoIP would tell the tracker: its
// centre, its country and ASNs; viewers are spread within SpreadKm of the
// centre (50 km) and take its ASNs in turn.
type Region struct {
	Name     string   `json:"name"`
	Share    float64  `json:"share"`
	Lat      float64  `json:"lat"`
	Lon      float64  `json:"lon"`
	Country  string   `json:"country"`
	ASNs     []uint32 `json:"asns"`
	SpreadKm float64  `json:"spreadKm"`
}

// Rate is a bit rate in kbit/s, written as a string ("4Mbps").
type Rate int64

// UnmarshalJSON reads "4Mbps", "500kbps" (scheduler.ParseKbps).
func (r *Rate) UnmarshalJSON(b []byte) error {
	return unmarshalString(b, `a rate is a string such as "4Mbps"`, scheduler.ParseKbps, (*int64)(r))
}

// unmarshalString decodes a JSON string b with parse into *dst.
func unmarshalString[T any](b []byte, what string, parse func(string) (T, error), dst *T) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	v, err := parse(s)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// MarshalJSON writes the rate in kbps.
func (r Rate) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprintf("%dkbps", int64(r))) }

// Duration is a time.Duration written as a string ("30s").
type Duration time.Duration

// UnmarshalJSON reads "30s", "2m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	return unmarshalString(b, `a duration is a string such as "30s"`, time.ParseDuration, (*time.Duration)(d))
}

// MarshalJSON writes the duration as time.Duration.String does.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Scenarios lists the scenarios built in, by name.
func Scenarios() []string {
	ents, _ := fs.ReadDir(scenarioFiles, "scenarios")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	return out
}

// LoadScenario returns the built-in scenario of that name.
func LoadScenario(name string) (Scenario, error) {
	if !slices.Contains(Scenarios(), name) {
		return Scenario{}, fmt.Errorf("%w: no scenario %q (there are %s)", ErrScenario, name, strings.Join(Scenarios(), ", "))
	}
	b, err := scenarioFiles.ReadFile(path.Join("scenarios", name+".json"))
	if err != nil {
		return Scenario{}, fmt.Errorf("%w: %v", ErrScenario, err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenarios/%s.json: %w", name, err)
	}
	return sc, nil
}

// ReadScenario decodes a scenario from r, at most MaxScenarioBytes.
func ReadScenario(r io.Reader) (Scenario, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxScenarioBytes+1))
	if err != nil {
		return Scenario{}, fmt.Errorf("%w: %v", ErrScenario, err)
	}
	return ParseScenario(b)
}

// ParseScenario decodes and checks a scenario file: unknown fields,
// trailing data and values out of range are errors (wrapping ErrScenario),
// and the defaults are filled in.
func ParseScenario(b []byte) (Scenario, error) {
	if len(b) > MaxScenarioBytes {
		return Scenario{}, fmt.Errorf("%w: over %d bytes", ErrScenario, MaxScenarioBytes)
	}
	var sc Scenario
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return Scenario{}, fmt.Errorf("%w: %v", ErrScenario, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Scenario{}, fmt.Errorf("%w: data after the scenario object", ErrScenario)
	}
	if err := sc.check(); err != nil {
		return Scenario{}, fmt.Errorf("%w: %s: %v", ErrScenario, sc.Name, err)
	}
	sc.defaults()
	return sc, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// share checks a share and adds it to *sum.
func share(f float64, sum *float64) error {
	if !finite(f) || f <= 0 || f > 1 {
		return fmt.Errorf("share %v not in (0, 1]", f)
	}
	*sum += f
	return nil
}

func (sc *Scenario) check() error {
	switch {
	case sc.Name == "" || len(sc.Name) > 64:
		return errors.New("a name of 1 to 64 bytes is required")
	case sc.Bitrate < 0 || sc.Duration < 0 || sc.JoinOver < 0 || sc.Settle < 0 || sc.Buffer < 0 || sc.Buffer > Duration(time.Minute):
		return errors.New("negative bitrate or duration, or a buffer over a minute")
	case len(sc.Audience) == 0 || len(sc.Audience) > 64:
		return errors.New("1 to 64 audience classes are required")
	case !finite(sc.Loss) || sc.Loss < 0 || sc.Loss > 0.5:
		return fmt.Errorf("loss %v not in [0, 0.5]", sc.Loss)
	case sc.Substreams < 0 || sc.Substreams > maxSubstreams:
		return fmt.Errorf("substreams %d (0 to %d)", sc.Substreams, maxSubstreams)
	case sc.Origin.Slots < 0 || sc.Origin.Slots > 1024 || sc.Origin.Egress < 0 || sc.Origin.HTTPEgress < 0:
		return fmt.Errorf("origin: %d slots (0 to 1024), egress %d kbps", sc.Origin.Slots, sc.Origin.Egress)
	case !finite(sc.Origin.RTTms) || sc.Origin.RTTms < 0 || sc.Origin.RTTms > 10_000:
		return fmt.Errorf("origin: RTT %v ms", sc.Origin.RTTms)
	case !finite(sc.PeerRTTms) || sc.PeerRTTms < 0 || sc.PeerRTTms > 10_000 || (sc.PeerRTTms > 0 && len(sc.Regions) > 0):
		return fmt.Errorf("peerRttMs %v (0 to 10000, and none with regions: rttMs says)", sc.PeerRTTms)
	}
	sum := 0.0
	for i, c := range sc.Audience {
		if err := share(c.Share, &sum); err != nil {
			return fmt.Errorf("audience %d: %v", i, err)
		}
		if (c.Relay == "") == (c.RelayX == nil) {
			return fmt.Errorf("audience %d: give relay (a level or a rate) or relayX (× the bitrate), one of them", i)
		}
		if c.Relay != "" {
			if _, err := scheduler.ParseRelay(c.Relay); err != nil {
				return fmt.Errorf("audience %d: %v", i, err)
			}
		}
		if c.RelayX != nil && (!finite(*c.RelayX) || *c.RelayX < 0 || *c.RelayX > 100) {
			return fmt.Errorf("audience %d: relayX %v not in [0, 100]", i, *c.RelayX)
		}
		if c.Adversary != "" && c.Adversary != Liar && c.Adversary != Poisoner {
			return fmt.Errorf("audience %d: adversary %q (liar or poisoner)", i, c.Adversary)
		}
		if c.Upload < 0 || c.Reserve < 0 || c.Down < 0 {
			return fmt.Errorf("audience %d: negative rate", i)
		}
	}
	if math.Abs(sum-1) > 1e-6 {
		return fmt.Errorf("audience shares sum to %v, not 1", sum)
	}
	ch := sc.Churn
	if !finite(ch.PerMinute) || ch.PerMinute < 0 || ch.PerMinute > 1 || !finite(ch.Silent) || ch.Silent < 0 || ch.Silent > 1 || ch.LinkTimeout < 0 || ch.TrackerTimeout < 0 {
		return errors.New("churn: perMinute and silent in [0, 1], timeouts ≥ 0")
	}
	if len(sc.Regions) > 16 {
		return errors.New("at most 16 regions")
	}
	if len(sc.Regions) == 0 {
		if sc.RTTms != nil || sc.Origin.Region != "" {
			return errors.New("rttMs and origin.region need regions")
		}
		return nil
	}
	sum = 0
	names := map[string]bool{}
	for i, r := range sc.Regions {
		if r.Name == "" || names[r.Name] {
			return fmt.Errorf("region %d: a name, once", i)
		}
		names[r.Name] = true
		if err := share(r.Share, &sum); err != nil {
			return fmt.Errorf("region %s: %v", r.Name, err)
		}
		if !finite(r.Lat) || !finite(r.Lon) || r.Lat < -89 || r.Lat > 89 || r.Lon < -180 || r.Lon > 180 {
			return fmt.Errorf("region %s: lat %v, lon %v", r.Name, r.Lat, r.Lon)
		}
		if !finite(r.SpreadKm) || r.SpreadKm < 0 || r.SpreadKm > 2000 {
			return fmt.Errorf("region %s: spreadKm %v not in [0, 2000]", r.Name, r.SpreadKm)
		}
		if r.Country != "" && (len(r.Country) != 2 || strings.ToUpper(r.Country) != r.Country) {
			return fmt.Errorf("region %s: country %q (two upper-case letters)", r.Name, r.Country)
		}
	}
	if math.Abs(sum-1) > 1e-6 {
		return fmt.Errorf("region shares sum to %v, not 1", sum)
	}
	if len(sc.RTTms) != len(sc.Regions) {
		return fmt.Errorf("rttMs has %d rows for %d regions", len(sc.RTTms), len(sc.Regions))
	}
	for i, row := range sc.RTTms {
		if len(row) != len(sc.Regions) {
			return fmt.Errorf("rttMs row %d has %d entries for %d regions", i, len(row), len(sc.Regions))
		}
		for _, v := range row {
			if !finite(v) || v <= 0 || v > 10_000 {
				return fmt.Errorf("rttMs row %d: %v not in (0, 10000]", i, v)
			}
		}
	}
	if sc.Origin.Region != "" && !names[sc.Origin.Region] {
		return fmt.Errorf("origin region %q is not a region", sc.Origin.Region)
	}
	return nil
}

// orDefault sets *v to d when it is zero.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

func (sc *Scenario) defaults() {
	orDefault(&sc.Bitrate, 4000)
	orDefault(&sc.Duration, Duration(120*time.Second))
	orDefault(&sc.JoinOver, Duration(40*time.Second))
	orDefault(&sc.Settle, Duration(20*time.Second))
	orDefault(&sc.Churn.LinkTimeout, Duration(5*time.Second))
	orDefault(&sc.Churn.TrackerTimeout, Duration(30*time.Second))
	orDefault(&sc.Origin.Egress, 50_000)
	orDefault(&sc.Origin.RTTms, 40)
	if len(sc.Regions) == 0 {
		orDefault(&sc.PeerRTTms, 40)
	}
	for i := range sc.Audience {
		c := &sc.Audience[i]
		orDefault(&c.Upload, 10_000)
		orDefault(&c.Reserve, 5_000)
		orDefault(&c.Down, 100_000)
	}
	for i := range sc.Regions {
		orDefault(&sc.Regions[i].SpreadKm, 50)
	}
}

// BudgetKbps is a class's relay budget at stream rate bitrateKbps.
func (c Class) BudgetKbps(bitrateKbps int) int {
	if c.RelayX != nil {
		return int(math.Round(*c.RelayX * float64(bitrateKbps)))
	}
	r, err := scheduler.ParseRelay(c.Relay)
	if err != nil {
		return 0 // checked when parsed
	}
	b := scheduler.Budget{TotalKbps: int64(c.Upload), ReservedKbps: int64(c.Reserve), Relay: r}
	return int(b.RelayKbps())
}

// MeanBudgetKbps is the audience's mean relay budget at stream rate
// bitrateKbps.
func (sc Scenario) MeanBudgetKbps(bitrateKbps int) float64 {
	m := 0.0
	for _, c := range sc.Audience {
		m += c.Share * float64(c.BudgetKbps(bitrateKbps))
	}
	return m
}

// interleave returns, for the i-th pick (i = 0, 1, ...) among shares, the
// index whose count is furthest below its share of i+1 picks: any prefix
// of the picks follows the shares (ties go to the first).
type interleave struct {
	shares []float64
	counts []int
	n      int
}

func newInterleave(shares []float64) *interleave {
	return &interleave{shares: shares, counts: make([]int, len(shares))}
}

func (il *interleave) next() int {
	il.n++
	best, gap := 0, math.Inf(-1)
	for i, s := range il.shares {
		if g := s*float64(il.n) - float64(il.counts[i]); g > gap+1e-9 {
			best, gap = i, g
		}
	}
	il.counts[best]++
	return best
}
