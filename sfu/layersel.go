package sfu

import "time"

// LayerPolicy is the hysteresis of automatic simulcast layer selection.
type LayerPolicy struct {
	// UpHeadroom: move up to a layer only when the estimate is at least its
	// bitrate times this factor. Default 1.2.
	UpHeadroom float64
	// DownMargin: move down from the current layer when the estimate falls
	// below its bitrate times this factor. Default 1.0.
	DownMargin float64
}

func (p LayerPolicy) withDefaults() LayerPolicy {
	if p.UpHeadroom <= 0 {
		p.UpHeadroom = 1.2
	}
	if p.DownMargin <= 0 {
		p.DownMargin = 1.0
	}
	return p
}

// selectLayer picks a simulcast layer for a subscriber. bitrates are the
// layers' measured bitrates (bit/s) in ascending order, current is the index
// of the layer forwarded now (-1 for none) and estimate is the bandwidth
// available to the subscriber (bit/s). It returns the index to forward.
//
// The lowest layer is chosen when nothing fits. Moving up needs headroom and
// moving down needs the estimate to fall clearly below the current layer, so
// an estimate hovering around a layer's bitrate does not make it flap.
func selectLayer(bitrates []uint64, current int, estimate uint64, p LayerPolicy) int {
	if len(bitrates) == 0 {
		return -1
	}
	p = p.withDefaults()
	est := float64(estimate)
	best := 0 // highest layer that fits with headroom
	for i, br := range bitrates {
		if float64(br)*p.UpHeadroom <= est {
			best = i
		}
	}
	if current < 0 || current >= len(bitrates) {
		return best
	}
	if best > current {
		return best // enough headroom for a higher layer
	}
	if current > 0 && est < float64(bitrates[current])*p.DownMargin {
		// The current layer no longer fits: go to the highest one that
		// fits at all.
		down := 0
		for i := current - 1; i >= 0; i-- {
			if float64(bitrates[i]) <= est {
				down = i
				break
			}
		}
		return down
	}
	return current
}

// EstimatorParams tunes the loss-based bandwidth estimator used for
// automatic layer selection.
type EstimatorParams struct {
	Initial uint64 // bit/s before any feedback; default 1.5 Mbit/s
	Min     uint64 // default 100 kbit/s
	Max     uint64 // default 20 Mbit/s
}

func (p EstimatorParams) withDefaults() EstimatorParams {
	if p.Initial == 0 {
		p.Initial = 1_500_000
	}
	if p.Min == 0 {
		p.Min = 100_000
	}
	if p.Max == 0 {
		p.Max = 20_000_000
	}
	return p
}

// lossEstimator estimates a subscriber's available bandwidth from the loss
// fraction in its receiver reports, like the loss-based half of GCC: below 2%
// loss the estimate grows by 8% per report, above 10% it shrinks by half the
// loss fraction, in between it holds. A REMB from the subscriber, when it
// sends one, caps the estimate. Pure: time is passed in.
type lossEstimator struct {
	p        EstimatorParams
	estimate float64
	remb     uint64 // last REMB, 0 if none
	rembAt   time.Time
}

func newLossEstimator(p EstimatorParams) *lossEstimator {
	p = p.withDefaults()
	return &lossEstimator{p: p, estimate: float64(p.Initial)}
}

// onLoss feeds a receiver report's fraction lost (0..255 = 0..1).
func (e *lossEstimator) onLoss(fractionLost uint8) {
	loss := float64(fractionLost) / 256
	switch {
	case loss < 0.02:
		e.estimate *= 1.08
	case loss > 0.10:
		e.estimate *= 1 - 0.5*loss
	}
	e.clamp()
}

// onREMB feeds a receiver-estimated maximum bitrate.
func (e *lossEstimator) onREMB(bitrate uint64, now time.Time) {
	e.remb, e.rembAt = bitrate, now
}

func (e *lossEstimator) clamp() {
	if e.estimate < float64(e.p.Min) {
		e.estimate = float64(e.p.Min)
	}
	if e.estimate > float64(e.p.Max) {
		e.estimate = float64(e.p.Max)
	}
}

// value returns the estimate at now in bit/s. A REMB older than five seconds
// is ignored.
func (e *lossEstimator) value(now time.Time) uint64 {
	v := uint64(e.estimate)
	if e.remb != 0 && now.Sub(e.rembAt) < 5*time.Second && e.remb < v {
		v = e.remb
	}
	return v
}
