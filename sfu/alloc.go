package sfu

// Quality is the highest simulcast layer a subscriber wants of a video
// track, from the size it shows the track at. Call publishers name their
// layers "q", "h" and "f" (quarter, half and full resolution).
type Quality int

// Qualities, lowest first.
const (
	QualityOff    Quality = -1 // not shown: forward nothing
	QualityLow    Quality = 0  // layer "q"
	QualityMedium Quality = 1  // layer "h"
	QualityHigh   Quality = 2  // layer "f"
)

// callRIDs are the simulcast layer names of call publishers, by Quality.
var callRIDs = [...]string{"q", "h", "f"}

// RIDOf returns the layer name of a quality ("" for QualityOff).
func RIDOf(q Quality) string {
	if q < 0 || int(q) >= len(callRIDs) {
		return ""
	}
	return callRIDs[q]
}

// rankOf returns the quality of a layer name, or -1 for a name that is
// not one of the call layers.
func rankOf(rid string) int {
	for i, r := range callRIDs {
		if r == rid {
			return i
		}
	}
	return -1
}

// nominalRate is the bitrate assumed for a call layer before it has been
// measured (a paused layer keeps the rate it had when it was paused).
var nominalRate = [...]uint64{150_000, 500_000, 1_500_000}

// allocTrack is one subscribed video track, as the allocator sees it.
type allocTrack struct {
	// rates are the bit/s of the track's layers by quality; a track without
	// simulcast has one.
	rates []uint64
	// want is the highest quality the subscriber's tile can use
	// (QualityOff: nothing).
	want Quality
	// cur is the quality forwarded now (-1: none).
	cur int
}

// layerState is one received simulcast layer of a track, as the
// allocator sees it.
type layerState struct {
	rid     string
	flowing bool   // a packet arrived in the last second
	rate    uint64 // measured bit/s, 0 before it is measured
}

// offerLayers returns the call layers of a track a subscriber may be
// given, lowest first, with their rates, and the index among them of the
// layer it is forwarded now, cur (-1 if none is, or cur is not offered).
// demand is the highest layer anyone forwards or waits for.
//
// When some layer flows, a layer that does not was either dropped by the
// publisher's browser (CPU or bandwidth adaptation) or paused by
// dynacast. A dropped layer (one in demand) is not offered, and that
// includes the subscriber's current layer: dynacast does not pause a
// layer in demand, and a subscriber left on it would see a frozen picture
// until the browser brought it back (seen for 5 to 8 s under CPU load). A
// layer above the demand is paused by dynacast and comes back when asked
// for, so it is offered (with the rate it had) to a subscriber whose
// current layer plays meanwhile, and not to one that has none playing: it
// starts, or starts again, on a layer that flows. When no layer flows (a
// muted camera) every layer is offered, at no cost. Pure.
func offerLayers(ls []layerState, cur string, demand Quality) (rids []string, rates []uint64, curIdx int) {
	curIdx = -1
	silent, playing := true, false
	for _, l := range ls {
		silent = silent && !l.flowing
		playing = playing || (l.flowing && l.rid == cur && cur != "")
	}
	for q, rid := range callRIDs {
		for _, l := range ls {
			if l.rid != rid {
				continue
			}
			if !silent && !l.flowing && (Quality(q) <= demand || !playing) {
				continue
			}
			r := l.rate
			if r == 0 {
				r = nominalRate[q]
			}
			if silent {
				r = 0
			}
			if l.rid == cur {
				curIdx = len(rates)
			}
			rates = append(rates, r)
			rids = append(rids, rid)
		}
	}
	return rids, rates, curIdx
}

// allocate splits a subscriber's downlink budget (bit/s, after its audio)
// between its video tracks. Every shown track gets its lowest layer first,
// even past the budget (a frozen tile is worse than a congested one, and
// the estimate falls if the link cannot carry it); then, largest wanted
// quality first (the spotlight before the grid), each track is raised as
// far as its tile and the budget allow. Raising a track above the quality
// it has now needs room for the rise plus a headroom of the new layer's
// rate times p.UpHeadroom−1, so that an estimate hovering at a layer's
// rate does not make the layer flap. It returns each track's quality (-1
// for tracks not shown). Pure.
func allocate(budget uint64, ts []allocTrack, p LayerPolicy) []int {
	p = p.withDefaults()
	out := make([]int, len(ts))
	left := float64(budget)
	for i, t := range ts {
		out[i] = -1
		if t.want < 0 || len(t.rates) == 0 {
			continue
		}
		out[i] = 0
		left -= float64(t.rates[0])
	}
	// Visit by wanted quality, highest first; ties in track order.
	order := make([]int, 0, len(ts))
	for q := Quality(len(callRIDs) - 1); q >= 0; q-- {
		for i, t := range ts {
			if min(int(t.want), len(t.rates)-1) == int(q) && len(t.rates) > 0 {
				order = append(order, i)
			}
		}
	}
	for _, i := range order {
		t := ts[i]
		for next := out[i] + 1; next <= int(t.want) && next < len(t.rates); next++ {
			rise := float64(t.rates[next]) - float64(t.rates[out[i]])
			need := rise
			if next > t.cur {
				need += (p.UpHeadroom - 1) * float64(t.rates[next])
			}
			if need > left {
				break
			}
			left -= rise
			out[i] = next
		}
	}
	return out
}

// allocateProbing is allocate for an estimate that lags what the link can
// carry. A send-side estimate (GCC) grows only to about 1.5 times what is
// sent, so a subscriber held at low layers would never earn the estimate
// a higher one needs. While the link shows no congestion, no track is
// taken below the layer it has (unless its tile shrank), and when probe is
// true the first track, in allocate's order, that is below what its tile
// wants rises one layer: the rise itself is the probe, and the estimate
// follows it or congestion undoes it. Under congestion it is allocate.
func allocateProbing(budget uint64, ts []allocTrack, p LayerPolicy, congested, probe bool) (out []int, probed int) {
	out = allocate(budget, ts, p)
	probed = -1
	if congested {
		return out, probed
	}
	for i, t := range ts {
		if t.cur >= 0 && out[i] >= 0 && out[i] < t.cur && t.cur <= int(t.want) && t.cur < len(t.rates) {
			out[i] = t.cur
		}
	}
	if !probe {
		return out, probed
	}
	for q := Quality(len(callRIDs) - 1); q >= 0 && probed < 0; q-- {
		for i, t := range ts {
			top := min(int(t.want), len(t.rates)-1)
			if top == int(q) && out[i] >= 0 && out[i] < top {
				out[i]++
				probed = i
				break
			}
		}
	}
	return out, probed
}

// QualityFor returns the quality a tile of height tileH device pixels
// needs from a publisher whose full layer is fullH pixels high, when its
// layers are full, half and quarter height: the smallest layer at least
// 90% of the tile's height (a slight upscale is not visible), QualityOff
// for a tile of no height.
func QualityFor(tileH, fullH int) Quality {
	if tileH <= 0 {
		return QualityOff
	}
	if fullH <= 0 {
		return QualityHigh
	}
	for q := QualityLow; q < QualityHigh; q++ {
		h := fullH >> (int(QualityHigh) - int(q))
		if float64(h) >= 0.9*float64(tileH) {
			return q
		}
	}
	return QualityHigh
}
