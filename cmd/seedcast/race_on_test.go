//go:build race

package main

// raceEnabled: under -race (and the whole suite running beside it on two
// cores) nodes run several times slower, so swarm tests assert correctness
// but not timing; ./scripts/test runs them again without -race for that.
const raceEnabled = true
