package wire

import "github.com/seedcast/seedcast/manifest"

// Re-exports of what moved to package manifest, for package swarm, which
// still names them here. They go once package swarm uses manifest directly.

// SignedBatch is manifest.SignedBatch.
type SignedBatch = manifest.SignedBatch

// NewSignedBatch is manifest.NewSignedBatch.
var NewSignedBatch = manifest.NewSignedBatch
