package sfu

import "errors"

// Errors returned by the package. They are wrapped with %w; test with errors.Is.
var (
	// ErrUnauthorized means a stream key or token was missing or wrong.
	ErrUnauthorized = errors.New("sfu: unauthorized")
	// ErrStreamBusy means a broadcast room already has a live publisher.
	ErrStreamBusy = errors.New("sfu: stream already has a publisher")
	// ErrNotLive means the room does not exist or has no publisher.
	ErrNotLive = errors.New("sfu: stream is not live")
	// ErrBadOffer means an SDP offer could not be parsed or used.
	ErrBadOffer = errors.New("sfu: bad SDP offer")
	// ErrUnsupportedCodec means an offer carried no codec the room accepts.
	ErrUnsupportedCodec = errors.New("sfu: no supported codec")
	// ErrBadStreamName means a stream (room) name is empty, too long or
	// contains characters outside [A-Za-z0-9_.-].
	ErrBadStreamName = errors.New("sfu: bad stream name")
	// ErrRoomKind means a room exists with another kind than asked for.
	ErrRoomKind = errors.New("sfu: room exists with another kind")
	// ErrUnknownLayer means a simulcast layer (rid) is not published.
	ErrUnknownLayer = errors.New("sfu: unknown layer")
	// ErrBadTrickle means an application/trickle-ice-sdpfrag body is malformed.
	ErrBadTrickle = errors.New("sfu: bad trickle-ice-sdpfrag")
	// ErrBusy means the server holds as many peer connections (or pending
	// ones) as it may, in total or for this stream (HTTP 503). Errors
	// carrying it also carry connlimit.ErrFull when a cap refused.
	ErrBusy = errors.New("sfu: at the peer-connection limit")
	// ErrTooMany means the client's address holds as many sessions as one
	// address may (HTTP 429); also carries connlimit.ErrTooMany.
	ErrTooMany = errors.New("sfu: too many sessions from this address")
	// ErrUnknownTrack means a call has no track with the id asked for.
	ErrUnknownTrack = errors.New("sfu: unknown track")
	// ErrNegotiation means a call peer connection's renegotiation failed
	// (an answer out of turn or one pion refused).
	ErrNegotiation = errors.New("sfu: negotiation failed")
	// ErrClosed means the server, room or session has been closed.
	ErrClosed = errors.New("sfu: closed")
)
