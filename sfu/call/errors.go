package call

import "errors"

// Errors of the package, wrapped with %w.
var (
	// ErrBadMessage means a signalling message could not be decoded or
	// broke a limit.
	ErrBadMessage = errors.New("call: bad message")
	// ErrInvite means an invite token is malformed, for another room,
	// expired or used.
	ErrInvite = errors.New("call: invalid invite")
	// ErrBadRoom means a room id or channel name is not one the server
	// serves.
	ErrBadRoom = errors.New("call: no such room")
	// ErrBadParams means Params that cannot work.
	ErrBadParams = errors.New("call: bad params")
)

// Error codes sent in "error" and "closed" messages (docs/protocol.md §6).
const (
	CodeBadMessage   = "bad-message"
	CodeRateLimited  = "rate-limited"
	CodeRoomFull     = "room-full"
	CodeServerFull   = "server-full"
	CodeTooMany      = "too-many-connections"
	CodeLocked       = "locked"
	CodeDenied       = "denied"
	CodeRemoved      = "removed"
	CodeNotHost      = "not-host"
	CodeNotJoined    = "not-joined"
	CodeUnknown      = "unknown-participant"
	CodeInvite       = "invite-invalid"
	CodeInviteUsed   = "invite-used"
	CodeMedia        = "media"
	CodeUnknownTrack = "unknown-track"
	CodeAudioOnly    = "audio-only"
	CodeWaitingFull  = "waiting-room-full"
	CodeTimeout      = "timeout"
	CodeReplaced     = "replaced"
)
