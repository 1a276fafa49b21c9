package swarm

import "github.com/seedcast/seedcast/swarm/peerlink"

// The native node's peer links are package peerlink's, which the browser
// build shares: WebRTC data channels through pion, signalled through the
// tracker.

// MaxQueuedFrames bounds the frames a peer link buffers for its reader.
const MaxQueuedFrames = peerlink.MaxQueuedFrames

// ErrLinkClosed is returned by a closed peer link.
var ErrLinkClosed = peerlink.ErrLinkClosed

type (
	// Signaler sends signaling to a linked peer (the TrackerClient).
	Signaler = peerlink.Signaler
	// LinkerParams configures a Linker.
	LinkerParams = peerlink.LinkerParams
	// Linker makes WebRTC data-channel links to the peers the tracker links
	// this node with (peerlink.Linker).
	Linker = peerlink.Linker
	// Link is one data-channel connection to a peer (peerlink.Link).
	Link = peerlink.Link
)

// NewLinker returns a Linker.
func NewLinker(p LinkerParams) *Linker { return peerlink.NewLinker(p) }
