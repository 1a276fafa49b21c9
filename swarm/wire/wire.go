package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/seedcast/seedcast/manifest"
)

// Protocol constants. See docs/protocol.md, section 5.
const (
	// Version is the highest wire protocol version this package speaks.
	Version = 1
	// Magic starts the payload of every Hello.
	Magic = "SCWP"

	// HeaderSize is the frame header: u32 length, u8 type.
	HeaderSize = 5
	// MaxFragment is the largest fragment of a chunk one Chunk message carries.
	MaxFragment = 64 << 10
	// MaxMessage bounds the length field of a frame (type byte + payload).
	MaxMessage = MaxFragment + 64
	// MaxFrame is the largest whole frame, header included.
	MaxFrame = 4 + MaxMessage
	// MaxChunk bounds the total size of one chunk or init segment.
	MaxChunk = 8 << 20

	// MaxRenditions bounds the renditions listed in a Hello.
	MaxRenditions = 32
	// MaxNameLen bounds a rendition name (as in signed manifest batches).
	MaxNameLen = manifest.MaxNameLen
	// MaxHaveBits bounds the bitmap window of a Have.
	MaxHaveBits = 4096
	// MaxSubstreams bounds K, the number of substreams of a rendition.
	MaxSubstreams = 256
	// MaxBatches bounds the signed batches carried by one Manifest message.
	MaxBatches = 16
	// SignatureSize is the size of an Ed25519 batch signature.
	SignatureSize = 64
)

// Errors of the codec.
var (
	// ErrMalformed is wrapped by every refusal of a frame, a message or a
	// fragment: the caller closes that connection (and only that one).
	ErrMalformed = errors.New("wire: malformed message")
	// ErrUnknownType is returned for a well-framed message of a type this
	// version does not know: the caller skips it and reads on.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrTooManyChunks is returned by Reassembler.Add when a peer has too many
	// chunks (or bytes) in progress. It wraps ErrMalformed.
	ErrTooManyChunks = fmt.Errorf("%w: too many chunks in progress", ErrMalformed)
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Type is a message type, the byte after the frame length.
type Type uint8

// Message types.
const (
	TypeHello       Type = 0x01
	TypeHave        Type = 0x02
	TypeSubscribe   Type = 0x03
	TypeUnsubscribe Type = 0x04
	TypeRequest     Type = 0x05
	TypeCancel      Type = 0x06
	TypeChunk       Type = 0x07
	TypeManifest    Type = 0x08
	TypeChoke       Type = 0x09
	TypeUnchoke     Type = 0x0a
	TypeReject      Type = 0x0b
	TypeStats       Type = 0x0c
	TypeOutboard    Type = 0x0d
)

var typeNames = [...]string{
	TypeHello: "hello", TypeHave: "have", TypeSubscribe: "subscribe", TypeUnsubscribe: "unsubscribe",
	TypeRequest: "request", TypeCancel: "cancel", TypeChunk: "chunk", TypeManifest: "manifest",
	TypeChoke: "choke", TypeUnchoke: "unchoke", TypeReject: "reject", TypeStats: "stats",
	TypeOutboard: "outboard",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type(0x%02x)", uint8(t))
}

// Message is one decoded wire message.
type Message interface {
	// Type is the message's type byte.
	Type() Type
	// Append appends the whole frame (header and payload) to buf and returns
	// the extended slice. It does not allocate when buf has room. It does not
	// check the message: a message that fails Validate encodes to a frame the
	// peer refuses.
	Append(buf []byte) []byte
	// Validate reports whether the message respects every limit of the
	// protocol; Decode applies the same checks.
	Validate() error
}

// AppendFrame validates m and appends its frame to buf.
func AppendFrame(buf []byte, m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return buf, err
	}
	return m.Append(buf), nil
}

// beginFrame appends a frame header with a placeholder length.
func beginFrame(buf []byte, t Type) ([]byte, int) {
	return append(buf, 0, 0, 0, 0, byte(t)), len(buf)
}

// endFrame fills in the length of the frame started at start.
func endFrame(buf []byte, start int) []byte {
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
	return buf
}

// FrameType returns the type byte of a complete frame.
func FrameType(frame []byte) Type {
	if len(frame) < HeaderSize {
		return 0
	}
	return Type(frame[4])
}

// Decode decodes one whole frame (length, type, payload), as returned by
// Reader.Next or Splitter.Next. The result aliases frame: Have.Bitmap,
// Chunk.Data, Hello.Extension and the bytes of Manifest batches point into it,
// so the caller must copy them (or finish with them) before frame's memory is
// reused. Strings are copied.
//
// A frame of an unknown type returns ErrUnknownType; any other refusal wraps
// ErrMalformed.
func Decode(frame []byte) (Message, error) {
	if len(frame) < HeaderSize {
		return nil, malformed("frame of %d bytes, shorter than its header", len(frame))
	}
	n := binary.BigEndian.Uint32(frame)
	if n > MaxMessage {
		return nil, malformed("frame length %d over the limit of %d", n, MaxMessage)
	}
	if int(n) != len(frame)-4 {
		return nil, malformed("frame length %d, but %d bytes follow it", n, len(frame)-4)
	}
	d := decoder{b: frame[HeaderSize:]}
	var m Message
	switch t := Type(frame[4]); t {
	case TypeHello:
		m = decodeHello(&d)
	case TypeHave:
		m = decodeHave(&d)
	case TypeSubscribe:
		v := &Subscribe{}
		v.decode(&d)
		m = v
	case TypeUnsubscribe:
		v := &Unsubscribe{}
		(*Subscribe)(v).decode(&d)
		m = v
	case TypeRequest:
		m = decodeRequest(&d)
	case TypeCancel:
		m = &Cancel{ReqID: d.u32(), ID: d.id()}
	case TypeChunk:
		m = decodeChunk(&d)
	case TypeManifest:
		m = decodeManifest(&d)
	case TypeChoke:
		m = &Choke{Reason: ChokeReason(d.u8())}
	case TypeUnchoke:
		m = &Unchoke{}
	case TypeReject:
		m = &Reject{ReqID: d.u32(), Reason: RejectReason(d.u8())}
	case TypeStats:
		m = &Stats{BufferMs: d.u32(), UploadKbps: d.u32(), Peers: d.u16()}
	case TypeOutboard:
		m = &Outboard{ID: d.id(), Data: d.bytes(len(d.b))}
	default:
		return nil, fmt.Errorf("%w 0x%02x (%d bytes skipped)", ErrUnknownType, uint8(t), n)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%v: %w", m.Type(), d.err)
	}
	if len(d.b) != 0 {
		return nil, malformed("%v: %d bytes after the message", m.Type(), len(d.b))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// decoder reads big-endian fields from a payload. The first short read sets
// err and makes every later read return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(field string, need int) {
	if d.err == nil {
		d.err = malformed("truncated at %s (%d bytes needed, %d left)", field, need, len(d.b))
	}
	d.b = nil
}

func (d *decoder) u8() uint8 {
	if len(d.b) < 1 {
		d.fail("u8", 1)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u16() uint16 {
	if len(d.b) < 2 {
		d.fail("u16", 2)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail("u32", 4)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail("u64", 8)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail("bytes", n)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) id() (id [32]byte) {
	copy(id[:], d.bytes(32))
	return id
}

// name reads a u8-length-prefixed name. Its content is checked by Validate.
func (d *decoder) name() string {
	n := int(d.u8())
	return string(d.bytes(n))
}

func appendName(buf []byte, s string) []byte {
	buf = append(buf, byte(len(s)))
	return append(buf, s...)
}

// checkName applies the name rule of docs/protocol.md §2.1: package
// manifest's (manifest.ValidName), the one every package checks.
func checkName(what, s string) error {
	if !manifest.ValidName(s) {
		return malformed("%s name %q (1–%d bytes of A–Z a–z 0–9 . _ -, not . or ..)", what, s, MaxNameLen)
	}
	return nil
}
