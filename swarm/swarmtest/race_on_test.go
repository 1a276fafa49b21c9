//go:build race

package swarmtest

// raceEnabled: the race detector slows cores about tenfold; the
// 1,000-node test runs in the pass without it.
const raceEnabled = true
