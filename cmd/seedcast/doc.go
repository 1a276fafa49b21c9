// Command seedcast is the Seedcast binary: `seedcast serve` runs the origin
// (and, with --demo, a built-in live stream); `seedcast version` prints the
// build. Every flag can also be set through an environment variable named
// SEEDCAST_ plus the flag in upper case with dashes as underscores
// (--log-format → SEEDCAST_LOG_FORMAT).
//
// This package only parses flags and wires the other packages together.
package main
