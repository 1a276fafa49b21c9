// Package swarm is a viewer node of the peer-assisted network: its
// connections to upstream and downstream peers, the chunk store, the
// verification of every chunk against the stream's signed manifest, and the
// enforcement of the user's upload budget. What to fetch from whom is
// decided by package scheduler; the wire format is package swarm/wire.
//
// Nothing a peer sends is trusted: a chunk is stored, played or relayed only
// when its BLAKE3 hash and size match an entry of a manifest batch signed by
// the stream key, and that key comes from the server, never from a peer.
package swarm
