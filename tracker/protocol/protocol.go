package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/seedcast/seedcast/manifest"
)

// ProtocolVersion is the tracker protocol spoken here (docs/protocol.md §4).
const ProtocolVersion = 1

// Limits of the protocol.
const (
	MaxMessageBytes = 64 << 10 // one WebSocket message
	MaxSDPBytes     = 32 << 10 // an SDP in a signal
	MaxCandidate    = 1 << 10  // an ICE candidate line
	MaxRenditions   = 16
	MaxBudgetKbps   = 10_000_000 // a relay budget (join, report) and a report's uploadKbps
	MaxStalled      = 16         // peers named in one report's stalled list
	MaxReceipts     = 32         // peers named in one report's received list
	MaxBufferSec    = 120        // a report's bufferSec
	MaxRTTms        = 60_000     // a report's rttMs
	// MaxReceiptBytes bounds one receipt: far more than any link carries
	// between two reports.
	MaxReceiptBytes = 1 << 40
	// MaxDelayMs bounds a welcome's delayMs.
	MaxDelayMs = 30_000
)

// DefaultDelay is the playback delay behind the live edge that a tracker
// gives its viewers in welcome.delayMs unless configured otherwise, and
// the one a node keeps when its welcome names none. Every hop of the push
// tree spends some of it: at 2.5 s a flash crowd of 30,000 viewers,
// 7–8 hops deep, collapses onto the origin, and at 3.5 s it holds, as
// 50,000 do (docs/benchmarks.md, "the playback delay").
const DefaultDelay = 3500 * time.Millisecond

// Message types.
const (
	TypeJoin     = "join"
	TypeWelcome  = "welcome"
	TypeSignal   = "signal"
	TypeReport   = "report"
	TypeReassign = "reassign"
	TypeLeave    = "leave"
	TypeError    = "error"
)

// ErrBadMessage is wrapped by every decoding error.
var ErrBadMessage = errors.New("tracker: bad message")

// Envelope is the part every message has.
type Envelope struct {
	Type string `json:"type"`
}

// Join is a client's first message: a viewer's (kind browser or native), or
// the origin seed node's (kind origin, Token the tracker's origin secret).
type Join struct {
	Type       string   `json:"type"`
	V          int      `json:"v"`
	Stream     string   `json:"stream"`
	Token      string   `json:"token,omitempty"` // viewer token for private streams; the origin secret for kind origin
	Renditions []string `json:"renditions,omitempty"`
	BudgetKbps int      `json:"budgetKbps"` // declared relay budget; 0 = relay off
	Kind       Kind     `json:"kind"`       // browser, native or origin
	Region     string   `json:"region,omitempty"`
}

// ICEServer is a STUN/TURN server for the peers' connections.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Upstream names a substream's upstream peer; an empty Peer means none is
// free for now: fetch the substream from the origin over HTTP until a
// reassign names one.
type Upstream struct {
	Substream int    `json:"substream"`
	Peer      PeerID `json:"peer"`
}

// Welcome answers a join.
type Welcome struct {
	Type       string      `json:"type"`
	V          int         `json:"v"`
	Peer       PeerID      `json:"peer"`
	PublicKey  string      `json:"publicKey"` // the stream's Ed25519 key, hex
	Manifest   string      `json:"manifest"`  // manifest URL (path on this server)
	ICEServers []ICEServer `json:"iceServers"`
	Substreams int         `json:"substreams"`
	Upstreams  []Upstream  `json:"upstreams"` // none for the origin seed
	// Depth is the peer's deepest hop count from the origin over all its
	// substreams (1: fed by the origin, or over HTTP); 0 for the origin seed.
	Depth int `json:"depth"`
	// DelayMs is the playback delay behind the live edge that every viewer
	// of the stream keeps, in milliseconds (0 or absent: DefaultDelay). It
	// is the swarm's, not the viewer's: a viewer playing closer to live
	// than its upstreams would wait on pushes they have not made yet.
	DelayMs int `json:"delayMs,omitempty"`
}

// SDP is a session description in a signal.
type SDP struct {
	Type string `json:"type"` // offer or answer
	SDP  string `json:"sdp"`
}

// Candidate is an ICE candidate in a signal (RTCIceCandidateInit).
type Candidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

// Signal carries WebRTC signaling between two linked peers: To on the way
// in, From (set by the tracker) on the way out.
type Signal struct {
	Type      string     `json:"type"`
	To        PeerID     `json:"to,omitempty"`
	From      PeerID     `json:"from,omitempty"`
	SDP       *SDP       `json:"sdp,omitempty"`
	Candidate *Candidate `json:"candidate,omitempty"`
}

// Report is a viewer's periodic health report.
type Report struct {
	Type            string  `json:"type"`
	BufferSec       float64 `json:"bufferSec"`
	NewestSeq       uint64  `json:"newestSeq"`
	UploadKbps      int     `json:"uploadKbps"`
	BytesFromPeers  uint64  `json:"bytesFromPeers"`
	BytesFromOrigin uint64  `json:"bytesFromOrigin"`
	RTTms           int     `json:"rttMs"` // to the origin
	// The viewer's own figures for the operator's dashboard (cumulative
	// since it joined, except LatencyMs): what the origin's seed sent it
	// (part of BytesFromOrigin), chunks on time and late, and its median
	// delivery latency (ingest to verified) lately. They decide nothing.
	BytesFromSeed uint64 `json:"bytesFromSeed,omitempty"`
	ChunksOnTime  uint64 `json:"chunksOnTime,omitempty"`
	ChunksLate    uint64 `json:"chunksLate,omitempty"`
	LatencyMs     int    `json:"latencyMs,omitempty"`
	// RelayKbps, when set, is the relay budget in force now: the node's RTT
	// guard cut or restored its relay, or its user moved the slider. The
	// tracker takes it up to its ceiling; slots still follow measured
	// delivery. Nil: unchanged.
	RelayKbps *int       `json:"relayKbps,omitempty"`
	Complaint *Complaint `json:"complaint,omitempty"`
	Stalled   []PeerID   `json:"stalled,omitempty"` // upstreams that stopped delivering
	// Received is the media each peer delivered to the sender since its
	// previous report (verified chunk bytes; peers that delivered nothing
	// may be left out). The tracker measures upstreams by it: what a peer's
	// downstreams say they received from it, not what it claims to upload.
	Received []Receipt `json:"received,omitempty"`
}

// Receipt is what the sender of a report received from one peer since its
// previous report.
type Receipt struct {
	Peer  PeerID `json:"peer"`
	Bytes uint64 `json:"bytes"`
}

// Complaint reports a peer the sender cut off for what it sent.
type Complaint struct {
	Peer   PeerID          `json:"peer"`
	Reason ComplaintReason `json:"reason"`
}

// ComplaintReason says what a complained-about peer sent.
type ComplaintReason string

// Complaint reasons.
const (
	// ComplaintBadMessage: a data-channel message that does not decode or
	// breaks the peer wire protocol.
	ComplaintBadMessage ComplaintReason = "bad-message"
	// ComplaintBadChunk: a chunk that fails verification against the
	// signed manifest.
	ComplaintBadChunk ComplaintReason = "bad-chunk"
	// ComplaintForgedManifest: a manifest batch whose signature fails.
	ComplaintForgedManifest ComplaintReason = "forged-manifest"
)

// Valid reports whether r is one of the complaint reasons above.
func (r ComplaintReason) Valid() bool {
	switch r {
	case ComplaintBadMessage, ComplaintBadChunk, ComplaintForgedManifest:
		return true
	}
	return false
}

// Reassign gives a viewer a new upstream for a substream.
type Reassign struct {
	Type      string `json:"type"`
	Substream int    `json:"substream"`
	Peer      PeerID `json:"peer"`
	Reason    string `json:"reason"`
	Depth     int    `json:"depth"` // the viewer's deepest hop count just after this assignment, as in Welcome
}

// Leave is a viewer's last message.
type Leave struct {
	Type string `json:"type"`
}

// Error tells a client why the tracker is closing its connection.
type Error struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// validRegion: 0 to 32 of [a-z0-9-].
func validRegion(s string) bool {
	return spanOf(s, 0, 32, func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' })
}

// DecodeClient decodes one message a client sent: *Join, *Signal, *Report or
// *Leave. It checks sizes and fields; an unknown type is an error (the
// tracker closes such connections: clients are versioned by the join).
func DecodeClient(data []byte) (any, error) {
	if len(data) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadMessage, len(data), MaxMessageBytes)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrBadMessage)
	}
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	var msg interface{ check() error }
	switch env.Type {
	case TypeJoin:
		msg = &Join{}
	case TypeSignal:
		msg = &Signal{}
	case TypeReport:
		msg = &Report{}
	case TypeLeave:
		msg = &Leave{}
	default:
		return nil, fmt.Errorf("%w: type %q", ErrBadMessage, env.Type)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(msg); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadMessage, env.Type, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the message", ErrBadMessage)
	}
	if err := msg.check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadMessage, env.Type, err)
	}
	return msg, nil
}

func (j *Join) check() error {
	switch {
	case j.V != ProtocolVersion:
		return fmt.Errorf("protocol version %d, want %d", j.V, ProtocolVersion)
	case !manifest.ValidName(j.Stream):
		return fmt.Errorf("stream name %q", j.Stream)
	case len(j.Token) > 512:
		return errors.New("token too long")
	case len(j.Renditions) > MaxRenditions:
		return fmt.Errorf("%d renditions", len(j.Renditions))
	case j.BudgetKbps < 0 || j.BudgetKbps > MaxBudgetKbps:
		return fmt.Errorf("budget %d kbps", j.BudgetKbps)
	case j.Kind != KindBrowser && j.Kind != KindNative && j.Kind != KindOrigin:
		return fmt.Errorf("kind %q", j.Kind)
	case !validRegion(j.Region):
		return fmt.Errorf("region %q", j.Region)
	}
	for _, r := range j.Renditions {
		if !manifest.ValidName(r) {
			return fmt.Errorf("rendition %q", r)
		}
	}
	return nil
}

func (s *Signal) check() error {
	switch {
	case !ValidPeerID(s.To):
		return fmt.Errorf("to %q", s.To)
	case s.From != "":
		return errors.New("from is set by the tracker")
	case (s.SDP == nil) == (s.Candidate == nil):
		return errors.New("want exactly one of sdp and candidate")
	case s.SDP != nil && s.SDP.Type != "offer" && s.SDP.Type != "answer":
		return fmt.Errorf("sdp type %q", s.SDP.Type)
	case s.SDP != nil && (len(s.SDP.SDP) == 0 || len(s.SDP.SDP) > MaxSDPBytes):
		return fmt.Errorf("sdp of %d bytes", len(s.SDP.SDP))
	case s.Candidate != nil && len(s.Candidate.Candidate) > MaxCandidate:
		return fmt.Errorf("candidate of %d bytes", len(s.Candidate.Candidate))
	case s.Candidate != nil && s.Candidate.SDPMid != nil && len(*s.Candidate.SDPMid) > 64:
		return errors.New("sdpMid too long")
	}
	return nil
}

func (r *Report) check() error {
	switch {
	case r.BufferSec < 0 || r.BufferSec > MaxBufferSec || r.BufferSec != r.BufferSec:
		return fmt.Errorf("buffer %v s not in 0..%d", r.BufferSec, MaxBufferSec)
	case r.UploadKbps < 0 || r.UploadKbps > MaxBudgetKbps:
		return fmt.Errorf("upload %d kbps not in 0..%d", r.UploadKbps, MaxBudgetKbps)
	case r.RTTms < 0 || r.RTTms > MaxRTTms:
		return fmt.Errorf("rtt %d ms not in 0..%d", r.RTTms, MaxRTTms)
	case r.LatencyMs < 0 || r.LatencyMs > MaxRTTms:
		return fmt.Errorf("latency %d ms not in 0..%d", r.LatencyMs, MaxRTTms)
	case r.BytesFromSeed > r.BytesFromOrigin:
		return fmt.Errorf("%d bytes from the seed, more than the %d from the origin", r.BytesFromSeed, r.BytesFromOrigin)
	case r.RelayKbps != nil && (*r.RelayKbps < 0 || *r.RelayKbps > MaxBudgetKbps):
		return fmt.Errorf("relay budget %d kbps", *r.RelayKbps)
	case len(r.Stalled) > MaxStalled:
		return fmt.Errorf("%d stalled peers", len(r.Stalled))
	case len(r.Received) > MaxReceipts:
		return fmt.Errorf("%d receipts, limit %d", len(r.Received), MaxReceipts)
	case r.Complaint != nil && !ValidPeerID(r.Complaint.Peer):
		return fmt.Errorf("complaint about peer %q", r.Complaint.Peer)
	case r.Complaint != nil && !r.Complaint.Reason.Valid():
		return fmt.Errorf("unknown complaint reason %.64q", r.Complaint.Reason)
	}
	for _, p := range r.Stalled {
		if !ValidPeerID(p) {
			return fmt.Errorf("stalled peer %q", p)
		}
	}
	for i, rc := range r.Received {
		switch {
		case !ValidPeerID(rc.Peer):
			return fmt.Errorf("receipt from peer %q", rc.Peer)
		case rc.Bytes > MaxReceiptBytes:
			return fmt.Errorf("receipt of %d bytes", rc.Bytes)
		}
		for _, prev := range r.Received[:i] {
			if prev.Peer == rc.Peer {
				return fmt.Errorf("two receipts from peer %s", rc.Peer)
			}
		}
	}
	return nil
}

func (l *Leave) check() error { return nil }

// DecodeServer decodes one message the tracker sent: *Welcome, *Signal,
// *Reassign or *Error (for clients: the native node and the browser build).
func DecodeServer(data []byte) (any, error) {
	if len(data) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadMessage, len(data))
	}
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	var msg any
	switch env.Type {
	case TypeWelcome:
		msg = &Welcome{}
	case TypeSignal:
		msg = &Signal{}
	case TypeReassign:
		msg = &Reassign{}
	case TypeError:
		msg = &Error{}
	default:
		return nil, fmt.Errorf("%w: type %q", ErrBadMessage, env.Type)
	}
	if err := json.Unmarshal(data, msg); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadMessage, env.Type, err)
	}
	switch m := msg.(type) {
	case *Welcome:
		if !ValidPeerID(m.Peer) || m.Substreams <= 0 || m.Substreams > 64 || m.DelayMs < 0 || m.DelayMs > MaxDelayMs {
			return nil, fmt.Errorf("%w: welcome", ErrBadMessage)
		}
	case *Signal:
		if !ValidPeerID(m.From) || (m.SDP == nil) == (m.Candidate == nil) {
			return nil, fmt.Errorf("%w: signal", ErrBadMessage)
		}
	case *Reassign:
		// An empty peer means: no upstream for now, fetch over HTTP.
		if m.Peer != "" && !ValidPeerID(m.Peer) || m.Substream < 0 || m.Substream > 64 {
			return nil, fmt.Errorf("%w: reassign", ErrBadMessage)
		}
	}
	return msg, nil
}
