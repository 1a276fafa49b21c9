package core

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// BenchmarkNew: a node's start from the newest 32 manifest batches, as a
// browser asks for them (its cost is on the player's start-up path).
func BenchmarkNew(b *testing.B) {
	m := &manifest.Manifest{Version: 1, Stream: "demo", PublicKey: hex.EncodeToString(streamKey.Public().(ed25519.PublicKey)), ChunkDurationMs: 250,
		Renditions: []manifest.RenditionInfo{{Name: "v0", Kind: "video"}, {Name: "a0", Kind: "audio"}}}
	for seq := range uint64(32) {
		sb, _ := rigSlot(seq)
		for _, e := range sb.Entries {
			m.Entries = append(m.Entries, manifest.ToJSON(e, sb.N))
		}
		m.Batches = append(m.Batches, manifest.JSONBatch{N: sb.N, Signature: hex.EncodeToString(sb.Signature)})
	}
	for b.Loop() {
		v, err := NewVerifier(VerifierParams{Stream: "demo", PublicKey: streamKey.Public().(ed25519.PublicKey)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := New(Params{Stream: "demo", Renditions: []string{"v0", "a0"}, Substreams: 4, Upstreams: make([]protocol.PeerID, 4),
			Manifest: m, Verifier: v, Store: NewStore(0), Now: rigStart.Add(32 * rigD)}); err != nil {
			b.Fatal(err)
		}
	}
}
