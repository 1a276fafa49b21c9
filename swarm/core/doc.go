// Package core is the swarm node's I/O-free core, in the style of str0m and
// quinn-proto: every input carries the time (Tick, LinkOpened, Receive,
// ManifestFetched, ChunkFetched, Reassign, RTT, SetBudget, ...), outputs
// are polled (Poll: messages to send, links to close, peers to dial,
// fetches from the origin, reports to the tracker, chunks ready to play),
// and NextWake says when to call Tick again. It reads no clock (only a
// *Store given a Window reads its driver's, when a chunk is put), starts no
// goroutine and does no I/O, so the native driver (package swarm: pion,
// HTTP, goroutines), the browser's WebAssembly driver and the simulator all
// run this same code, and tests run it on a virtual clock.
//
// Everything that decides is here: message handling, learning signed
// batches, verification (behind ChunkVerifier: *Verifier checks the
// stream's Ed25519 signatures and BLAKE3 ids) and storage (ChunkStore:
// *Store, a byte-bounded LRU, and for the origin's seed also bounded by
// the origin's window), pull repair through scheduler.Planner, push
// queues and backfill (a push is dropped, even half sent, once the peer's
// have shows it holds the chunk, and a node that got a chunk another way
// tells its pusher at once: the head-off), request serving, the upload token bucket and the RTT
// guard, stall detection, health reports, playback deadlines and stats.
// What to fetch from whom is package scheduler's policy. When the origin
// refuses a fetch for load (its egress cap: ErrOriginBusy), the node leaves
// it alone for a growing wait, jittered with Params.Rand, and pulls from
// its peers meanwhile.
//
// Nothing a peer sends is trusted: a chunk is stored, played or relayed
// only when its hash and size match an entry of a batch signed by the
// stream key, and that key comes from the server, never from a peer.
package core
