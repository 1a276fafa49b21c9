//go:build !linux

package bench

func resetPeakRSS() {}

// peakRSSMB is unknown here.
func peakRSSMB() float64 { return 0 }
