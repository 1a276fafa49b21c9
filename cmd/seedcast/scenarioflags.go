package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/seedcast/seedcast/bench"
)

// runFlags are the flags of a command that runs a scenario for a list of
// audience sizes and writes its results (seedcast bench).
type runFlags struct {
	scenario, file, viewers, out string
	seed                         uint64
	log                          logFlags
}

func (r *runFlags) register(fs *flag.FlagSet, viewers, outHelp string) {
	fs.StringVar(&r.scenario, "scenario", "generous", "built-in scenario: "+strings.Join(bench.Scenarios(), ", "))
	fs.StringVar(&r.file, "scenario-file", "", "a scenario JSON file instead of a built-in one")
	fs.StringVar(&r.viewers, "viewers", viewers, "audience sizes to run, comma-separated")
	fs.Uint64Var(&r.seed, "seed", 1, "the run's seed")
	fs.StringVar(&r.out, "out", "", outHelp)
	r.log.register(fs)
}

// load is the scenario and the audience sizes the flags name.
func (r *runFlags) load() (bench.Scenario, []int, error) {
	sc, err := loadScenario(r.scenario, r.file)
	if err != nil {
		return sc, nil, err
	}
	ns, err := parseViewers(r.viewers)
	if err != nil {
		return sc, nil, fmt.Errorf("--viewers: %w", err)
	}
	return sc, ns, nil
}
