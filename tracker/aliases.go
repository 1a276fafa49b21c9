package tracker

import "github.com/seedcast/seedcast/tracker/protocol"

// Temporary: re-exports of the protocol identifiers package swarm still
// names as tracker.X, until it imports tracker/protocol itself. The lead
// removes this file then; nothing new should use these names.

type (
	Join     = protocol.Join
	Signal   = protocol.Signal
	SDP      = protocol.SDP
	Report   = protocol.Report
	Reassign = protocol.Reassign
)

const KindNative = protocol.KindNative
