package call

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// The presence protocol (docs/protocol.md §7): one WebSocket per open page
// or device, GET /presence/ws, JSON messages with "v":1.

// Limits of the presence protocol, checked by DecodePresence.
const (
	MaxPresenceBytes = 48 << 10 // one message (a contact list of MaxContacts keys fits)
	MaxContacts      = 500
	MaxBoxBytes      = 512 // an opaque key box carried by a ring
)

// Presence message types, client to server.
const (
	PTypeHello    = "hello"    // the signed answer to the challenge
	PTypeContacts = "contacts" // a new contact list
	PTypeSettings = "settings" // name, auto-answer
	PTypeRing     = "ring"
	PTypeAnswer   = "answer"
	PTypeDecline  = "decline"
	PTypeBusy     = "busy"
	PTypeCancel   = "cancel"
	PTypeHangup   = "hangup"
	PTypeHold     = "hold"
	PTypeResume   = "resume"
	PTypeJoined   = "joined" // this device is in the call's media room
	PTypePing     = "ping"
)

// Presence message types, server to client.
const (
	PTypeChallenge = "challenge"
	PTypeReady     = "ready"
	PTypePresence  = "presence" // a mutual contact came or went
	PTypeCall      = "call"     // a call's state, as this device sees it
	PTypeError     = "error"
	PTypePong      = "pong"
	PTypeClosed    = "closed"
)

// Presence error codes, besides the signalling ones (CodeBadMessage,
// CodeRateLimited, CodeTooMany).
const (
	CodeBadSignature = "bad-signature" // hello's signature does not verify
	CodeNotContact   = "not-contact"   // the callee is not a mutual contact
	CodeUnavailable  = "unavailable"   // no device of the callee is online
	CodeBusyCaller   = "busy"          // you are already in a call
	CodeNoCall       = "no-call"       // no such call for this device
	CodeCallRefused  = "call-refused"  // the event is not valid now
	CodeTooManyDev   = "too-many-devices"
	CodeNotReady     = "not-ready" // send hello first
)

// PresenceSigContext prefixes what a device signs to prove its key:
//
//	"seedcast presence v1" 0x00 host 0x00 nonce(32 raw bytes) 0x00 device
//
// host is the server's host as the page sees it (location.host), so a
// challenge relayed from another server does not verify here.
const PresenceSigContext = "seedcast presence v1"

// PresenceSigned returns the bytes a device signs for a challenge.
func PresenceSigned(host string, nonce []byte, device string) []byte {
	var b bytes.Buffer
	b.WriteString(PresenceSigContext)
	b.WriteByte(0)
	b.WriteString(host)
	b.WriteByte(0)
	b.Write(nonce)
	b.WriteByte(0)
	b.WriteString(device)
	return b.Bytes()
}

// PMsg is one client presence message.
type PMsg struct {
	V    int    `json:"v,omitempty"`
	Type string `json:"type"`
	Ref  string `json:"ref,omitempty"`

	// hello
	Key    string `json:"key,omitempty"`    // Ed25519 public key, base64url (43 chars)
	Device string `json:"device,omitempty"` // this device's id
	Sig    string `json:"sig,omitempty"`    // base64url Ed25519 signature of PresenceSigned
	// hello, settings
	Name       string `json:"name,omitempty"`
	AutoAnswer bool   `json:"autoAnswer,omitempty"`
	// hello, contacts: the public keys this device accepts calls from
	Contacts []string `json:"contacts,omitempty"`
	// ring
	To    string `json:"to,omitempty"`
	Video bool   `json:"video,omitempty"`
	E2EE  bool   `json:"e2ee,omitempty"`
	Salt  string `json:"salt,omitempty"` // base64url, per call, for the E2EE key
	Box   string `json:"box,omitempty"`  // base64url, opaque: a sealed group key (upgrade)
	Room  string `json:"room,omitempty"` // ring into this call's room (upgrade to a group)
	// answer, decline, busy, cancel, hangup, hold, resume, joined
	Call string `json:"call,omitempty"`
}

// DecodePresence parses and checks one client presence message. Unknown
// fields are ignored; everything out of bounds is an error wrapping
// ErrBadMessage.
func DecodePresence(b []byte) (PMsg, error) {
	var m PMsg
	if len(b) > MaxPresenceBytes {
		return m, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadMessage, len(b), MaxPresenceBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return PMsg{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if dec.More() {
		return PMsg{}, fmt.Errorf("%w: trailing data", ErrBadMessage)
	}
	if m.V != 0 && m.V != Version {
		return PMsg{}, fmt.Errorf("%w: version %d (this server speaks %d)", ErrBadMessage, m.V, Version)
	}
	if len(m.Ref) > 64 {
		return PMsg{}, fmt.Errorf("%w: ref longer than 64 bytes", ErrBadMessage)
	}
	if err := m.check(); err != nil {
		return PMsg{}, fmt.Errorf("%w: %s: %v", ErrBadMessage, m.Type, err)
	}
	return m, nil
}

func (m *PMsg) check() error {
	switch m.Type {
	case PTypeHello:
		if err := checkKey(m.Key); err != nil {
			return err
		}
		if !ValidDevice(m.Device) {
			return fmt.Errorf("device: want 8 to 64 characters of [A-Za-z0-9_-]")
		}
		if sig, err := base64.RawURLEncoding.DecodeString(m.Sig); err != nil || len(sig) != ed25519.SignatureSize {
			return fmt.Errorf("sig: want a base64url Ed25519 signature")
		}
		if err := checkText("name", m.Name, MaxNameRunes); err != nil {
			return err
		}
		return checkContacts(m.Contacts)
	case PTypeContacts:
		return checkContacts(m.Contacts)
	case PTypeSettings:
		return checkText("name", m.Name, MaxNameRunes)
	case PTypeRing:
		if err := checkKey(m.To); err != nil {
			return err
		}
		if s, err := base64.RawURLEncoding.DecodeString(m.Salt); err != nil || len(s) < 16 || len(s) > 32 {
			return fmt.Errorf("salt: want 16 to 32 bytes, base64url")
		}
		if len(m.Box) > MaxBoxBytes {
			return fmt.Errorf("box of %d bytes (at most %d)", len(m.Box), MaxBoxBytes)
		}
		if _, err := base64.RawURLEncoding.DecodeString(m.Box); err != nil {
			return fmt.Errorf("box: not base64url")
		}
		if m.Room != "" && !ValidRoomID(m.Room) {
			return fmt.Errorf("room: not a call room id")
		}
	case PTypeAnswer, PTypeDecline, PTypeBusy, PTypeCancel, PTypeHangup, PTypeHold, PTypeResume, PTypeJoined:
		if !ValidCallID(m.Call) {
			return fmt.Errorf("call: not a call id")
		}
	case PTypePing:
	default:
		return fmt.Errorf("unknown type")
	}
	return nil
}

func checkKey(k string) error {
	if len(k) != 43 {
		return fmt.Errorf("key: want a base64url Ed25519 public key (43 characters)")
	}
	if b, err := base64.RawURLEncoding.DecodeString(k); err != nil || len(b) != ed25519.PublicKeySize {
		return fmt.Errorf("key: want a base64url Ed25519 public key (43 characters)")
	}
	return nil
}

func checkContacts(cs []string) error {
	if len(cs) > MaxContacts {
		return fmt.Errorf("%d contacts (at most %d)", len(cs), MaxContacts)
	}
	for _, c := range cs {
		if err := checkKey(c); err != nil {
			return fmt.Errorf("contacts: %v", err)
		}
	}
	return nil
}

// ValidDevice reports whether id has the form of a device id.
func ValidDevice(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// ValidCallID reports whether id has the form of a ringing call's id (the
// same form as a room id).
func ValidCallID(id string) bool { return ValidRoomID(id) }

// CallInfo is a ringing call as one device sees it.
type CallInfo struct {
	ID    string `json:"id"`
	State string `json:"state"` // outgoing-ringing, incoming-ringing, connecting, active, held, ended
	// Reason the call ended (declined, busy, no-answer, cancelled, hangup,
	// failed, lost, unavailable, answered-elsewhere).
	Reason string `json:"reason,omitempty"`
	Side   string `json:"side"` // "caller" or "callee"
	// Peer is the other party's public key, PeerName its display name.
	Peer     string `json:"peer"`
	PeerName string `json:"peerName,omitempty"`
	Video    bool   `json:"video,omitempty"`
	E2EE     bool   `json:"e2ee,omitempty"`
	Salt     string `json:"salt,omitempty"`
	Box      string `json:"box,omitempty"`
	// Room and Invite: the call's media room, and this device's one-time
	// invite into it (from connecting on).
	Room   string `json:"room,omitempty"`
	Invite string `json:"invite,omitempty"`
	// HeldByMe and HeldByPeer say who holds the call.
	HeldByMe   bool   `json:"heldByMe,omitempty"`
	HeldByPeer bool   `json:"heldByPeer,omitempty"`
	Tone       string `json:"tone,omitempty"` // ringback, busy, ended
	Started    int64  `json:"started,omitempty"`
	Answered   int64  `json:"answered,omitempty"`
	Ended      int64  `json:"ended,omitempty"`
	// Group is set when the call's room was joined from another call
	// (a third contact rung in).
	Group bool `json:"group,omitempty"`
}

// POut is one server presence message.
type POut struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	Ref  string `json:"ref,omitempty"`
	// challenge
	Nonce string `json:"nonce,omitempty"`
	// ready: the mutual contacts online now, and this device's calls
	Online []string   `json:"online,omitempty"`
	Calls  []CallInfo `json:"calls,omitempty"`
	// presence
	Key  string `json:"key,omitempty"`
	Here bool   `json:"here,omitempty"` // the contact is online
	// call
	Call *CallInfo `json:"call,omitempty"`
	// error, closed
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}
