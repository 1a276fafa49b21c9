// Command seedcast is the Seedcast binary. Its subcommands: `serve` runs
// the server (SFU with WHIP and WHEP, ingest, origin, tracker, and one seed
// node per stream through swarm.Seeds; --demo adds a built-in live stream
// published over WHIP; --debug-addr serves net/http/pprof on a loopback
// listener of its own, never on the public one); `publish` plays a file or
// the demo clip into a WHIP endpoint in real time; `viewer` runs a headless
// swarm node (swarm.Node) and prints its stats, or several in one process
// (--nodes, or a harness's --plan); `sim` runs the simulator and `bench`
// the real-process harness (package bench); `token` issues a viewer token for a private stream;
// `version` prints the build. Every flag can also be set through an
// environment variable named SEEDCAST_ plus the flag in upper case with
// dashes as underscores (--log-format → SEEDCAST_LOG_FORMAT).
//
// This package only parses flags and wires the other packages together.
package main
