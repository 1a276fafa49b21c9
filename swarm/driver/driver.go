package driver

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// Errors of the package.
var (
	// ErrParams is returned by Start for unusable Params.
	ErrParams = errors.New("swarm/driver: bad params")
	// ErrWelcome is returned by FromWelcome for a welcome that carries no
	// valid stream key.
	ErrWelcome = errors.New("swarm/driver: the welcome carries no valid stream key")
	// ErrNoPing is what the core is told when it asks for a ping and the
	// Origin is no Pinger.
	ErrNoPing = errors.New("swarm/driver: the origin cannot be pinged")
)

// Link is one open data-channel link to a peer. Its messages are pieces of
// a byte stream of wire frames.
type Link interface {
	// Remote is the peer at the other end.
	Remote() protocol.PeerID
	// SendFrame sends encoded wire frames (the peer's reader splits them).
	// It must not keep frame after it returns.
	SendFrame(frame []byte) error
	// Recv delivers what the peer sends. It is never closed: Done is.
	Recv() <-chan []byte
	// Done is closed when the link closes, from either end.
	Done() <-chan struct{}
	// Buffered is the send backlog in bytes.
	Buffered() uint64
	// Close ends the link; why is the core's reason, or nil. It may take a
	// while and may be called again.
	Close(why error)
}

// Drainer is a Link that can tell when its send backlog has drained (a data
// channel's bufferedamountlow). Without it, the backlog is read at each of
// the core's wake-ups only.
type Drainer interface {
	// OnDrain sets f to be called when the backlog falls low. f does not
	// block.
	OnDrain(f func())
}

// Linker opens links to the peers the tracker links this node with,
// signalling through the tracker. Closing it is the driver's, in
// Params.Leave.
type Linker interface {
	// Dial links to an upstream peer and returns once the link is open.
	Dial(ctx context.Context, peer protocol.PeerID) (Link, error)
	// Accept returns the next link a downstream peer dialed, once open, or
	// ctx's error when ctx ends first.
	Accept(ctx context.Context) (Link, error)
	// HandleSignal takes a signal the tracker relayed (an offer, or the
	// answer to a dial).
	HandleSignal(ctx context.Context, s *protocol.Signal) error
}

// Tracker is the node's connection to the tracker, once joined. Closing it
// is the driver's, in Params.Leave.
type Tracker interface {
	// Events delivers *protocol.Signal and *protocol.Reassign in order; it
	// is closed when the connection ends.
	Events() <-chan any
	// Report sends a health report or a complaint.
	Report(ctx context.Context, r protocol.Report) error
	// Err is why the connection ended (nil while it is up).
	Err() error
}

// Origin is the origin as a node sees it: where the signed manifest comes
// from, and the chunks no peer can deliver in time. What it returns is
// verified like anything else.
type Origin interface {
	// Manifest returns the signed manifest window; with after ≥ 0, only
	// the chunks of batches numbered above after (and the init segments).
	Manifest(ctx context.Context, after int64) (*manifest.Manifest, error)
	Chunk(ctx context.Context, id manifest.ID) ([]byte, error)
}

// Pinger is an Origin that can measure its round-trip time cheaply; the
// core's RTT guard feeds on it. Without it the core is told ErrNoPing.
type Pinger interface {
	Ping(ctx context.Context) (time.Duration, error)
}

// Notifier is an Origin that can say when its manifest changed (the
// origin's own seed node uses it instead of polling): Loop.Follow makes each
// change call the core's ManifestChanged.
type Notifier interface {
	Changed() <-chan struct{}
}

// WaitLive fetches the whole manifest window from origin, again every
// every while the stream is not live yet (its manifest names no
// rendition), until ctx ends.
func WaitLive(ctx context.Context, origin Origin, every time.Duration) (*manifest.Manifest, error) {
	for {
		m, err := origin.Manifest(ctx, -1)
		if err != nil || len(m.Renditions) > 0 {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("swarm/driver: waiting for the stream to go live: %w", ctx.Err())
		case <-time.After(every):
		}
	}
}

// FromWelcome reads what a core needs from the tracker's welcome: the
// verifier of stream's signatures, whose key comes from the tracker (the
// server's word, never a peer's), and the upstream of each substream (""
// over HTTP).
func FromWelcome(stream string, w protocol.Welcome) (*core.Verifier, []protocol.PeerID, error) {
	key, err := hex.DecodeString(w.PublicKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, nil, ErrWelcome
	}
	verify, err := core.NewVerifier(core.VerifierParams{Stream: stream, PublicKey: key})
	if err != nil {
		return nil, nil, err
	}
	ups := make([]protocol.PeerID, max(w.Substreams, 1))
	for _, u := range w.Upstreams {
		if u.Substream >= 0 && u.Substream < len(ups) {
			ups[u.Substream] = u.Peer
		}
	}
	return verify, ups, nil
}

// Delay is the playback delay a node keeps: own, when its user or test set
// one, else the swarm's from the welcome (0 when it names none: the core's
// default). Every viewer of a swarm keeping the tracker's delay is what
// gives each hop of the push tree its time.
func Delay(own time.Duration, w protocol.Welcome) time.Duration {
	if own > 0 {
		return own
	}
	return time.Duration(w.DelayMs) * time.Millisecond
}
