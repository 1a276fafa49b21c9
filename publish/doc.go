// Package publish is a WHIP client (RFC 9725) that plays media into a WHIP
// endpoint in real time, the way OBS would: an MP4 file (H.264 + Opus) or the
// built-in demo clip, looped. `seedcast publish` and `seedcast serve --demo`
// use it; tests use it as a real publisher.
//
// DESIGN.md has no room for a broadcaster-side client (sfu is the server
// side), so it lives here; it shares only media types and ICE settings.
package publish
