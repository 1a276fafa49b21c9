//go:build !race

package swarmtest

const raceEnabled = false
