package call

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Version is the signalling protocol's version (docs/protocol.md §6).
const Version = 1

// Limits of the protocol, checked by Decode.
const (
	MaxMessageBytes = 64 << 10 // one WebSocket message (an SDP with simulcast is 5–15 KB)
	MaxChatRunes    = 2000
	MaxNameRunes    = 40
	MaxTracks       = 8  // tracks in one publish
	MaxIDs          = 64 // track ids in one subscribe
	MaxSDPBytes     = 48 << 10
	// MaxSealedBytes bounds an end-to-end encrypted chat envelope or key
	// box (base64url): a MaxChatRunes message of 4-byte runes, sealed.
	MaxSealedBytes = 12 << 10
)

// Message types, client to server.
const (
	TypeJoin        = "join"
	TypeResume      = "resume"
	TypePublish     = "publish"
	TypeUnpublish   = "unpublish"
	TypeAnswer      = "answer" // also server to client: the answer to a publish
	TypeTrickle     = "trickle"
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypeSize        = "size"
	TypeMute        = "mute" // also server to client
	TypeChat        = "chat" // also server to client
	TypeHost        = "host"
	TypeInvite      = "invite" // also server to client: the link
	TypePing        = "ping"
	TypeLeave       = "leave"
	// TypeE2EE carries an opaque end-to-end key message (a host's key
	// rotation) to the room's other members; also server to client.
	TypeE2EE = "e2ee"
)

// Message types, server to client.
const (
	TypeWelcome     = "welcome"
	TypeWaiting     = "waiting"
	TypeKnock       = "knock"
	TypeKnockEnd    = "knock-end"
	TypeJoined      = "joined"
	TypeLeft        = "left"
	TypeTracks      = "tracks"
	TypeOffer       = "offer"
	TypeSpeaker     = "speaker"
	TypeLevels      = "levels"
	TypeLayers      = "layers"
	TypeRoom        = "room"
	TypeError       = "error"
	TypePong        = "pong"
	TypeClosed      = "closed"
	TypeHostChanged = "host-changed"
)

// Sources of a published track.
const (
	SourceMicrophone  = "microphone"
	SourceCamera      = "camera"
	SourceScreen      = "screen"
	SourceScreenAudio = "screen-audio"
)

// Host actions.
const (
	ActionAdmit  = "admit"
	ActionDeny   = "deny"
	ActionLock   = "lock"
	ActionUnlock = "unlock"
	ActionMute   = "mute"
	ActionRemove = "remove"
)

// Candidate is a trickled ICE candidate (RTCIceCandidateInit).
type Candidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

// TrackMeta is what a publisher says of a track it sends.
type TrackMeta struct {
	Mid    string `json:"mid"`
	Source string `json:"source"`
	// Width and Height of the full layer (video), for the layer choice.
	Width  int  `json:"width,omitempty"`
	Height int  `json:"height,omitempty"`
	Muted  bool `json:"muted,omitempty"`
}

// Msg is one client message. Type says which fields matter; Decode checks
// them.
type Msg struct {
	V    int    `json:"v,omitempty"`
	Type string `json:"type"`
	// Ref is echoed in the reply (answer, error, pong), so a client can
	// match them.
	Ref string `json:"ref,omitempty"`

	// join
	Name   string `json:"name,omitempty"`
	Invite string `json:"invite,omitempty"`
	// resume
	Participant string `json:"participant,omitempty"`
	Token       string `json:"token,omitempty"`
	// publish, unpublish, answer
	SDP    string      `json:"sdp,omitempty"`
	Tracks []TrackMeta `json:"tracks,omitempty"`
	// trickle
	Target    string     `json:"target,omitempty"` // "publish" or "subscribe"
	Candidate *Candidate `json:"candidate,omitempty"`
	// subscribe, unsubscribe
	IDs []string `json:"ids,omitempty"`
	// size
	Track  string `json:"track,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	// mute
	Source string `json:"source,omitempty"`
	Muted  bool   `json:"muted,omitempty"`
	// chat: Text, or Sealed (an end-to-end encrypted envelope the server
	// relays and stores but cannot read); e2ee: Sealed
	Text   string `json:"text,omitempty"`
	Sealed string `json:"sealed,omitempty"`
	// host
	Action string `json:"action,omitempty"`
}

// Decode parses and checks one client message. Unknown fields are ignored
// (a newer client may send more); everything else out of bounds is an
// error wrapping ErrBadMessage.
func Decode(b []byte) (Msg, error) {
	var m Msg
	if len(b) > MaxMessageBytes {
		return m, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadMessage, len(b), MaxMessageBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return Msg{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if dec.More() {
		return Msg{}, fmt.Errorf("%w: trailing data", ErrBadMessage)
	}
	if m.V != 0 && m.V != Version {
		return Msg{}, fmt.Errorf("%w: version %d (this server speaks %d)", ErrBadMessage, m.V, Version)
	}
	if len(m.Ref) > 64 {
		return Msg{}, fmt.Errorf("%w: ref longer than 64 bytes", ErrBadMessage)
	}
	if err := m.check(); err != nil {
		return Msg{}, fmt.Errorf("%w: %s: %v", ErrBadMessage, m.Type, err)
	}
	return m, nil
}

func (m *Msg) check() error {
	switch m.Type {
	case TypeJoin:
		if err := checkText("name", m.Name, MaxNameRunes); err != nil {
			return err
		}
		if len(m.Invite) > 256 {
			return fmt.Errorf("invite too long")
		}
	case TypeResume:
		if m.Participant == "" || m.Token == "" || len(m.Participant) > 64 || len(m.Token) > 64 {
			return fmt.Errorf("participant and token are required")
		}
	case TypePublish, TypeUnpublish:
		if err := checkSDP(m.SDP); err != nil {
			return err
		}
		if len(m.Tracks) > MaxTracks {
			return fmt.Errorf("%d tracks (at most %d)", len(m.Tracks), MaxTracks)
		}
		for _, t := range m.Tracks {
			if t.Mid == "" || len(t.Mid) > 16 {
				return fmt.Errorf("bad mid %q", t.Mid)
			}
			switch t.Source {
			case SourceMicrophone, SourceCamera, SourceScreen, SourceScreenAudio:
			default:
				return fmt.Errorf("unknown source %q", t.Source)
			}
			if t.Width < 0 || t.Height < 0 || t.Width > 8192 || t.Height > 8192 {
				return fmt.Errorf("bad size %dx%d", t.Width, t.Height)
			}
		}
	case TypeAnswer:
		return checkSDP(m.SDP)
	case TypeTrickle:
		if m.Target != "publish" && m.Target != "subscribe" {
			return fmt.Errorf("target %q (want publish or subscribe)", m.Target)
		}
		if m.Candidate == nil || len(m.Candidate.Candidate) > 1024 {
			return fmt.Errorf("bad candidate")
		}
	case TypeSubscribe, TypeUnsubscribe:
		if len(m.IDs) == 0 || len(m.IDs) > MaxIDs {
			return fmt.Errorf("%d ids (1 to %d)", len(m.IDs), MaxIDs)
		}
		for _, id := range m.IDs {
			if id == "" || len(id) > 128 {
				return fmt.Errorf("bad track id")
			}
		}
	case TypeSize:
		if m.Track == "" || len(m.Track) > 128 {
			return fmt.Errorf("track is required")
		}
		if m.Width < 0 || m.Height < 0 || m.Width > 16384 || m.Height > 16384 {
			return fmt.Errorf("bad size %dx%d", m.Width, m.Height)
		}
	case TypeMute:
		switch m.Source {
		case SourceMicrophone, SourceCamera, SourceScreen, SourceScreenAudio:
		default:
			return fmt.Errorf("unknown source %q", m.Source)
		}
	case TypeChat:
		if m.Sealed != "" {
			if m.Text != "" {
				return fmt.Errorf("text and sealed: one or the other")
			}
			return checkSealed(m.Sealed)
		}
		if m.Text == "" {
			return fmt.Errorf("empty text")
		}
		return checkText("text", m.Text, MaxChatRunes)
	case TypeE2EE:
		return checkSealed(m.Sealed)
	case TypeHost:
		switch m.Action {
		case ActionLock, ActionUnlock:
		case ActionAdmit, ActionDeny, ActionMute, ActionRemove:
			if m.Participant == "" || len(m.Participant) > 64 {
				return fmt.Errorf("participant is required")
			}
		default:
			return fmt.Errorf("unknown action %q", m.Action)
		}
	case TypeInvite, TypePing, TypeLeave:
	default:
		return fmt.Errorf("unknown type")
	}
	return nil
}

// checkSealed checks an opaque sealed envelope: base64url (with dots
// between parts), at most MaxSealedBytes.
func checkSealed(s string) error {
	if s == "" || len(s) > MaxSealedBytes {
		return fmt.Errorf("sealed: want 1 to %d bytes", MaxSealedBytes)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("sealed: not base64url")
		}
	}
	return nil
}

func checkSDP(s string) error {
	if s == "" {
		return fmt.Errorf("sdp is required")
	}
	if len(s) > MaxSDPBytes {
		return fmt.Errorf("sdp of %d bytes (at most %d)", len(s), MaxSDPBytes)
	}
	return nil
}

func checkText(what, s string, maxRunes int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", what)
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return fmt.Errorf("%s of %d characters (at most %d)", what, n, maxRunes)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' {
			return fmt.Errorf("%s has control characters", what)
		}
	}
	return nil
}

// Server to client messages.

// TrackInfo is a published track as every participant sees it.
type TrackInfo struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Kind   string `json:"kind"` // "audio" or "video"
	Muted  bool   `json:"muted,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
}

// Member is a participant as the others see it.
type Member struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Host   bool        `json:"host,omitempty"`
	Tracks []TrackInfo `json:"tracks"`
	// Mic and Camera mute state as the participant last said (a
	// participant without a microphone track is muted).
	MicMuted    bool `json:"micMuted"`
	CameraMuted bool `json:"cameraMuted"`
}

// ChatLine is one chat message.
type ChatLine struct {
	From string `json:"from"`
	Name string `json:"name"`
	Text string `json:"text,omitempty"`
	// Sealed is an end-to-end encrypted line (docs/e2ee.md): the server
	// keeps it, on disk too, but cannot read it.
	Sealed string `json:"sealed,omitempty"`
	At     int64  `json:"at"` // Unix ms
}

// Out is one server message. Type says which fields are set.
type Out struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	Ref  string `json:"ref,omitempty"`

	// welcome
	Participant string     `json:"participant,omitempty"`
	Token       string     `json:"token,omitempty"`
	Kind        string     `json:"kind,omitempty"` // "call" or "voice"
	Host        bool       `json:"host,omitempty"`
	Locked      bool       `json:"locked,omitempty"`
	Resumed     bool       `json:"resumed,omitempty"`
	Members     []Member   `json:"members,omitempty"`
	Chat        []ChatLine `json:"chat,omitempty"`
	ICEServers  []ICE      `json:"iceServers,omitempty"`
	// joined, knock, host-changed: the member; left, knock-end: Participant
	Member *Member `json:"member,omitempty"`
	// tracks: Participant's tracks now
	Tracks []TrackInfo `json:"tracks,omitempty"`
	// offer, answer
	SDP string `json:"sdp,omitempty"`
	// mute: Participant, Source, Muted, By ("host" when the host muted)
	Source string `json:"source,omitempty"`
	Muted  bool   `json:"muted,omitempty"`
	By     string `json:"by,omitempty"`
	// speaker
	Dominant string `json:"dominant,omitempty"`
	// levels: loudness 0..1 by participant, speaking ones
	Levels map[string]float64 `json:"levels,omitempty"`
	// layers: the publisher's simulcast layers to keep sending
	Track  string   `json:"track,omitempty"`
	Mid    string   `json:"mid,omitempty"`
	Active []string `json:"active,omitempty"`
	// chat
	Line *ChatLine `json:"line,omitempty"`
	// e2ee: Participant (the sender) and Sealed
	Sealed string `json:"sealed,omitempty"`
	// Epoch counts the members that left the room (welcome, left): end-to-end
	// encrypted rooms ratchet their key once per leave.
	Epoch int `json:"epoch,omitempty"`
	// invite
	Invite string `json:"invite,omitempty"`
	// error, closed
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// reason of a knock-end: "admitted", "denied", "left"
	Reason string `json:"reason,omitempty"`
}

// ICE is an ICE server for the client's peer connections.
type ICE struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}
