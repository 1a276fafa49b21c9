// Package call runs group calls and voice channels over the SFU's call
// participants (sfu.Participant): who is in a room, who waits at its door,
// its host, chat, mute states, speaking levels, one-time invites, and the
// JSON-over-WebSocket signalling between each participant and the server
// (docs/protocol.md §6).
//
// A call's room id is 128 random bits; the first to join is its host, and
// later joiners knock until the host admits them (or bring an invite). A
// voice channel is a named, persistent, audio-only room that anyone may
// join. A participant whose WebSocket drops keeps its place, its tracks
// and its subscriptions for Limits.ResumeWindow, and resumes with its id
// and token on a new WebSocket; nobody else sees it leave.
//
// Ringing calls (presence.go, ringcalls.go; docs/protocol.md §7): every
// open page of a user holds a presence WebSocket and proves its Ed25519
// key by signing a challenge. A ring goes only to the callee's devices
// that list the caller, when the caller lists the callee; each call is a
// state machine of package ring, fed by presence (while it rings) and by
// its call room's membership (joined, lost, back: the watchdog), and its
// media goes through an ordinary call room entered with one-time invites.
//
// End-to-end encryption happens in the clients (docs/e2ee.md). The server
// relays and keeps sealed chat lines it cannot read (on disk with
// Params.ChatDir, bounded; plain lines never touch the disk), relays
// opaque key messages, and counts each room's leaves (the key epoch).
//
// Every resource is capped (rooms, members, people waiting, connections
// per address, message size and rate) and every refusal is a clear error
// code and a metric. Media never passes through this package.
package call
