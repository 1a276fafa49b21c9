package scheduler

import (
	"slices"
	"strings"
)

// Upstream is one peer the tracker assigned us as a push source, with the
// health the node measured.
type Upstream struct {
	ID          string
	LateRatio   float64 // share of its recent pushes that arrived late, 0..1
	BytesPerSec float64 // measured push throughput; 0 if not yet known
	Capacity    int     // most substreams it will push us; 0 means no limit
}

// SubstreamParams configures AssignSubstreams.
type SubstreamParams struct {
	K         int        // number of substreams (sequence mod K)
	Current   []string   // upstream ID per substream now, "" if none; len K or nil
	Upstreams []Upstream // the tracker's current assignment for us
	// An upstream is failing if LateRatio > MaxLateRatio or, once measured,
	// BytesPerSec < MinBytesPerSec. Zero MaxLateRatio means 0.2.
	MaxLateRatio   float64
	MinBytesPerSec float64
	// Distinct upstreams to spread the substreams over; zeros mean 3 and 6.
	MinDistinct, MaxDistinct int
}

// AssignSubstreams returns the upstream ID for each of the K substreams. It
// keeps the current choice unless that upstream is gone from the tracker's
// list or failing; such substreams move to the healthy upstream with the most
// spare capacity (fewest substreams, then ID). It then spreads substreams so
// that between MinDistinct and MaxDistinct upstreams are used, as far as K and
// the healthy upstreams allow. With no healthy upstream, a failing one is kept
// rather than none; "" means no upstream at all (pull repair covers it).
func AssignSubstreams(p SubstreamParams) []string {
	if p.K <= 0 {
		return nil
	}
	if p.MaxLateRatio <= 0 {
		p.MaxLateRatio = 0.2
	}
	if p.MinDistinct <= 0 {
		p.MinDistinct = 3
	}
	if p.MaxDistinct <= 0 {
		p.MaxDistinct = 6
	}
	ups := slices.Clone(p.Upstreams)
	slices.SortFunc(ups, func(a, b Upstream) int { return strings.Compare(a.ID, b.ID) })
	ups = slices.CompactFunc(ups, func(a, b Upstream) bool { return a.ID == b.ID })
	healthy := func(u *Upstream) bool {
		return u.LateRatio <= p.MaxLateRatio && (u.BytesPerSec == 0 || u.BytesPerSec >= p.MinBytesPerSec)
	}
	find := func(id string) int {
		i, ok := slices.BinarySearchFunc(ups, id, func(u Upstream, id string) int { return strings.Compare(u.ID, id) })
		if !ok {
			return -1
		}
		return i
	}
	load := make([]int, len(ups))
	room := func(i int) bool { return ups[i].Capacity <= 0 || load[i] < ups[i].Capacity }
	out := make([]string, p.K)
	owner := make([]int, p.K) // index into ups, -1 unassigned
	for s := range owner {
		owner[s] = -1
		if s < len(p.Current) {
			if i := find(p.Current[s]); i >= 0 && healthy(&ups[i]) && room(i) {
				owner[s] = i
				load[i]++
			}
		}
	}
	// pick returns the healthy upstream with room and the least load,
	// excluding skip; -1 if none.
	pick := func(skip int) int {
		best := -1
		for i := range ups {
			if i == skip || !healthy(&ups[i]) || !room(i) {
				continue
			}
			if best < 0 || load[i] < load[best] {
				best = i
			}
		}
		return best
	}
	for s := range owner {
		if owner[s] >= 0 {
			continue
		}
		if i := pick(-1); i >= 0 {
			owner[s] = i
			load[i]++
		}
	}
	distinct := func() int {
		n := 0
		for _, l := range load {
			if l > 0 {
				n++
			}
		}
		return n
	}
	// Spread: move a substream from the most loaded upstream to an unused healthy one.
	for distinct() < min(p.MinDistinct, p.K) {
		to := -1
		for i := range ups {
			if load[i] == 0 && healthy(&ups[i]) && room(i) {
				to = i
				break
			}
		}
		from := 0
		for i := range load {
			if load[i] > load[from] {
				from = i
			}
		}
		if to < 0 || load[from] < 2 {
			break
		}
		s := len(owner) - 1
		for owner[s] != from {
			s--
		}
		owner[s] = to
		load[from]--
		load[to]++
	}
	// Consolidate: empty the least loaded upstreams into others with room.
	for distinct() > p.MaxDistinct {
		from := -1
		for i := range ups {
			if load[i] > 0 && (from < 0 || load[i] < load[from]) {
				from = i
			}
		}
		moved := false
		for s := range owner {
			if owner[s] != from {
				continue
			}
			to := -1
			for i := range ups {
				if i != from && load[i] > 0 && room(i) && (to < 0 || load[i] < load[to]) {
					to = i
				}
			}
			if to < 0 {
				break
			}
			owner[s] = to
			load[from]--
			load[to]++
			moved = true
		}
		if !moved || load[from] > 0 {
			break
		}
	}
	for s := range out {
		switch {
		case owner[s] >= 0:
			out[s] = ups[owner[s]].ID
		case s < len(p.Current) && find(p.Current[s]) >= 0:
			out[s] = p.Current[s] // failing, but better than nothing
		}
	}
	return out
}
