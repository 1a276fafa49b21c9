package tracker

import "github.com/seedcast/seedcast/tracker/protocol"

// Temporary: re-exports of the protocol identifiers package swarm still
// names as tracker.X, until it imports tracker/protocol itself. The lead
// removes this file then; nothing new should use these names.

type (
	PeerID    = protocol.PeerID
	Kind      = protocol.Kind
	Join      = protocol.Join
	Welcome   = protocol.Welcome
	ICEServer = protocol.ICEServer
	Signal    = protocol.Signal
	SDP       = protocol.SDP
	Candidate = protocol.Candidate
	Report    = protocol.Report
	Complaint = protocol.Complaint
	Reassign  = protocol.Reassign
	Leave     = protocol.Leave
)

const (
	ProtocolVersion = protocol.ProtocolVersion
	MaxMessageBytes = protocol.MaxMessageBytes
	KindNative      = protocol.KindNative
	KindOrigin      = protocol.KindOrigin
	OriginPeer      = protocol.OriginPeer
	TypeJoin        = protocol.TypeJoin
	TypeSignal      = protocol.TypeSignal
	TypeReport      = protocol.TypeReport
	TypeLeave       = protocol.TypeLeave
)

var (
	ErrBadMessage = protocol.ErrBadMessage
	DecodeServer  = protocol.DecodeServer
)
