package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedcast/seedcast/bench"
)

// TestSimCommand runs `seedcast sim` as a user would, for two small
// audiences: a line per run on stdout, and results.json, results.md and
// the plots in --out; no progress bar when stderr is not a terminal.
func TestSimCommand(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"sim", "--scenario", "generous", "--viewers", "5,20", "--bitrate", "2Mbps",
		"--duration", "15s", "--buffer", "3s", "--seed", "3", "--out", dir, "--log-level", "warn"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("sim: %v\n%s", err, stderr.String())
	}
	if lines := strings.Count(stdout.String(), "\n"); lines != 2 || !strings.Contains(stdout.String(), "n=20 egress") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	if strings.Contains(stderr.String(), "[") {
		t.Errorf("a progress bar on a stderr that is no terminal: %q", stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res []bench.SimResult
	if err := json.Unmarshal(b, &res); err != nil || len(res) != 2 {
		t.Fatalf("results.json: %v, %d runs", err, len(res))
	}
	if res[0].Viewers != 5 || res[1].Viewers != 20 || res[1].BitrateMbps != 2 || res[1].Seed != 3 || res[1].BufferSeconds != 3 || res[1].ServerEgressMbps <= 0 {
		t.Errorf("results: %+v", res)
	}
	for _, f := range []string{"results.md", "egress.svg", "egress.png", "latency-cdf-20.svg", "depths-20.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestSimScenarioErrors: a malformed scenario file, an unknown scenario
// and bad flags are refused with a clear error before anything runs.
func TestSimScenarioErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"name":"x","audience":[{"share":0.5,"relayX":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "--scenario-file", bad}, "sum to 0.5"},
		{[]string{"sim", "--scenario", "nope"}, `no scenario "nope"`},
		{[]string{"sim", "--viewers", "10,x"}, "--viewers"},
		{[]string{"sim", "--bitrate", "fast"}, "--bitrate"},
		{[]string{"sim", "--viewers", "5", "--duration", "1s"}, "duration"},
		{[]string{"sim", "--viewers", "5", "--buffer", "2m"}, "buffer"},
	} {
		err := run(context.Background(), c.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	err := run(context.Background(), []string{"sim", "--scenario-file", bad}, io.Discard, io.Discard)
	if !errors.Is(err, bench.ErrScenario) {
		t.Errorf("a malformed file: %v does not wrap ErrScenario", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"sim", "--list"}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "flash-crowd") {
		t.Errorf("--list: %v\n%s", err, out.String())
	}
}
