package wire

import (
	"encoding/binary"
	"math"

	"github.com/seedcast/seedcast/manifest"
)

// Hello opens a connection: each side sends one as its first message.
type Hello struct {
	// Version is the highest protocol version the sender speaks (≥ 1). Both
	// sides then speak NegotiateVersion of the two.
	Version uint8
	// Renditions the sender holds or wants, in the stream's order (≤ 32).
	Renditions []string
	// BudgetKbps is the upload the sender will give this swarm, in kbit/s;
	// 0 = relay off (it uploads nothing).
	BudgetKbps uint32
	// Slots is how many substream subscriptions the sender will serve in all.
	Slots uint16
	// Extension holds what a hello of a later version carries after the
	// version 1 fields; it must be empty when Version is 1. It aliases the
	// frame after Decode.
	Extension []byte
}

func (*Hello) Type() Type { return TypeHello }

func (m *Hello) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeHello)
	buf = append(buf, Magic...)
	buf = append(buf, m.Version, byte(len(m.Renditions)))
	for _, r := range m.Renditions {
		buf = appendName(buf, r)
	}
	buf = binary.BigEndian.AppendUint32(buf, m.BudgetKbps)
	buf = binary.BigEndian.AppendUint16(buf, m.Slots)
	buf = append(buf, m.Extension...)
	return endFrame(buf, start)
}

func (m *Hello) Validate() error {
	if m.Version == 0 {
		return malformed("hello: version 0")
	}
	if len(m.Renditions) > MaxRenditions {
		return malformed("hello: %d renditions, over %d", len(m.Renditions), MaxRenditions)
	}
	for _, r := range m.Renditions {
		if err := checkName("hello: rendition", r); err != nil {
			return err
		}
	}
	if m.Version == 1 && len(m.Extension) != 0 {
		return malformed("hello: %d bytes after the version 1 fields", len(m.Extension))
	}
	return nil
}

func decodeHello(d *decoder) *Hello {
	m := &Hello{}
	if magic := d.bytes(len(Magic)); d.err == nil && string(magic) != Magic {
		d.err = malformed("hello: bad magic %q", magic)
		return m
	}
	m.Version = d.u8()
	n := int(d.u8())
	if n > MaxRenditions {
		d.err = malformed("hello: %d renditions, over %d", n, MaxRenditions)
		return m
	}
	if d.err == nil && n > 0 {
		m.Renditions = make([]string, 0, n)
		for range n {
			m.Renditions = append(m.Renditions, d.name())
		}
	}
	m.BudgetKbps = d.u32()
	m.Slots = d.u16()
	if d.err == nil && m.Version > 1 && len(d.b) > 0 {
		m.Extension = d.bytes(len(d.b))
	}
	return m
}

// NegotiateVersion returns the version both sides speak after exchanging
// hellos: the lower of Version and theirs.
func NegotiateVersion(theirs uint8) uint8 {
	return min(theirs, Version)
}

// Have announces which chunks of one rendition the sender holds (verified),
// as a window of up to MaxHaveBits slots: bit i set = holds seq Base+i.
type Have struct {
	Rendition string
	Base      uint64
	// Bits is the window length N (0 … MaxHaveBits).
	Bits int
	// Bitmap has ⌈Bits/8⌉ bytes, most significant bit first; the bits past
	// Bits are zero. It aliases the frame after Decode.
	Bitmap []byte
}

func (*Have) Type() Type { return TypeHave }

func (m *Have) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeHave)
	buf = appendName(buf, m.Rendition)
	buf = binary.BigEndian.AppendUint64(buf, m.Base)
	buf = binary.BigEndian.AppendUint16(buf, uint16(m.Bits))
	buf = append(buf, m.Bitmap...)
	return endFrame(buf, start)
}

func (m *Have) Validate() error {
	if err := checkName("have: rendition", m.Rendition); err != nil {
		return err
	}
	if m.Bits < 0 || m.Bits > MaxHaveBits {
		return malformed("have: window of %d bits, over %d", m.Bits, MaxHaveBits)
	}
	if len(m.Bitmap) != (m.Bits+7)/8 {
		return malformed("have: %d bits need %d bitmap bytes, got %d", m.Bits, (m.Bits+7)/8, len(m.Bitmap))
	}
	if m.Bits%8 != 0 && m.Bitmap[len(m.Bitmap)-1]&(0xff>>(m.Bits%8)) != 0 {
		return malformed("have: bits set past the window of %d", m.Bits)
	}
	if m.Bits > 0 && m.Base > math.MaxUint64-uint64(m.Bits-1) {
		return malformed("have: window at %d overflows seq", m.Base)
	}
	return nil
}

// Has reports whether the window says the sender holds seq.
func (m *Have) Has(seq uint64) bool {
	if seq < m.Base || seq-m.Base >= uint64(m.Bits) {
		return false
	}
	i := seq - m.Base
	return m.Bitmap[i/8]&(0x80>>(i%8)) != 0
}

// Set marks seq as held; seq must lie in the window (Bitmap sized for Bits).
func (m *Have) Set(seq uint64) {
	i := seq - m.Base
	m.Bitmap[i/8] |= 0x80 >> (i % 8)
}

func decodeHave(d *decoder) *Have {
	m := &Have{Rendition: d.name(), Base: d.u64(), Bits: int(d.u16())}
	if d.err == nil && m.Bits > MaxHaveBits {
		d.err = malformed("have: window of %d bits, over %d", m.Bits, MaxHaveBits)
		return m
	}
	if n := (m.Bits + 7) / 8; d.err == nil && len(d.b) != n {
		d.err = malformed("have: %d bits need %d bitmap bytes, got %d", m.Bits, n, len(d.b))
		return m
	}
	if len(d.b) > 0 {
		m.Bitmap = d.bytes(len(d.b))
	}
	return m
}

// Subscribe asks the receiver to push every chunk of substream Index of a
// rendition (the chunks whose seq mod K = Index) as soon as it holds it
// verified.
type Subscribe struct {
	Rendition string
	K         uint16 // number of substreams, 1 … MaxSubstreams
	Index     uint16 // substream, < K
}

// Unsubscribe ends a Subscribe; it has the same fields.
type Unsubscribe Subscribe

func (*Subscribe) Type() Type   { return TypeSubscribe }
func (*Unsubscribe) Type() Type { return TypeUnsubscribe }

func (m *Subscribe) Append(buf []byte) []byte   { return m.append(buf, TypeSubscribe) }
func (m *Unsubscribe) Append(buf []byte) []byte { return (*Subscribe)(m).append(buf, TypeUnsubscribe) }

func (m *Subscribe) append(buf []byte, t Type) []byte {
	buf, start := beginFrame(buf, t)
	buf = appendName(buf, m.Rendition)
	buf = binary.BigEndian.AppendUint16(buf, m.K)
	buf = binary.BigEndian.AppendUint16(buf, m.Index)
	return endFrame(buf, start)
}

func (m *Subscribe) Validate() error { return m.validate(TypeSubscribe) }

func (m *Unsubscribe) Validate() error { return (*Subscribe)(m).validate(TypeUnsubscribe) }

func (m *Subscribe) validate(t Type) error {
	if err := checkName(t.String()+": rendition", m.Rendition); err != nil {
		return err
	}
	if m.K == 0 || m.K > MaxSubstreams || m.Index >= m.K {
		return malformed("%v: substream %d of %d", t, m.Index, m.K)
	}
	return nil
}

func (m *Subscribe) decode(d *decoder) {
	m.Rendition, m.K, m.Index = d.name(), d.u16(), d.u16()
}

// Request asks for one chunk (or init segment) by id. The receiver answers
// with the chunk (as Chunk messages carrying ReqID) or a Reject.
type Request struct {
	ReqID uint32 // chosen by the requester, not 0
	ID    manifest.ID
	// Rendition and Seq are a hint (where the chunk sits in the manifest);
	// Rendition "" means no hint, and Seq is then 0.
	Rendition string
	Seq       uint64
}

func (*Request) Type() Type { return TypeRequest }

func (m *Request) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeRequest)
	buf = binary.BigEndian.AppendUint32(buf, m.ReqID)
	buf = append(buf, m.ID[:]...)
	buf = appendName(buf, m.Rendition)
	buf = binary.BigEndian.AppendUint64(buf, m.Seq)
	return endFrame(buf, start)
}

func (m *Request) Validate() error {
	if m.ReqID == 0 {
		return malformed("request: request id 0")
	}
	if m.Rendition == "" {
		if m.Seq != 0 {
			return malformed("request: seq hint %d without a rendition", m.Seq)
		}
		return nil
	}
	return checkName("request: rendition", m.Rendition)
}

func decodeRequest(d *decoder) *Request {
	m := &Request{ReqID: d.u32(), ID: d.id()}
	if n := int(d.u8()); n > 0 {
		m.Rendition = string(d.bytes(n))
	}
	m.Seq = d.u64()
	return m
}

// Cancel withdraws a Request; fragments already in flight may still arrive.
type Cancel struct {
	ReqID uint32
	ID    manifest.ID
}

func (*Cancel) Type() Type { return TypeCancel }

func (m *Cancel) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeCancel)
	buf = binary.BigEndian.AppendUint32(buf, m.ReqID)
	buf = append(buf, m.ID[:]...)
	return endFrame(buf, start)
}

func (m *Cancel) Validate() error {
	if m.ReqID == 0 {
		return malformed("cancel: request id 0")
	}
	return nil
}

// Chunk carries one fragment of a chunk: bytes [Offset, Offset+len(Data)) of
// a chunk of Size bytes. Reassembler puts the fragments back together.
type Chunk struct {
	ReqID  uint32 // the Request answered, or 0 for a push (subscription)
	ID     manifest.ID
	Size   uint32 // whole chunk, 1 … MaxChunk
	Offset uint32
	// Data is the fragment, 1 … MaxFragment bytes. It aliases the frame
	// after Decode: it is not copied.
	Data []byte
}

// ChunkHeaderSize is the payload of a Chunk message before its fragment.
const ChunkHeaderSize = 4 + 32 + 4 + 4

func (*Chunk) Type() Type { return TypeChunk }

func (m *Chunk) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeChunk)
	buf = binary.BigEndian.AppendUint32(buf, m.ReqID)
	buf = append(buf, m.ID[:]...)
	buf = binary.BigEndian.AppendUint32(buf, m.Size)
	buf = binary.BigEndian.AppendUint32(buf, m.Offset)
	buf = append(buf, m.Data...)
	return endFrame(buf, start)
}

func (m *Chunk) Validate() error {
	if m.Size == 0 || m.Size > MaxChunk {
		return malformed("chunk: size %d not in 1…%d", m.Size, MaxChunk)
	}
	if len(m.Data) == 0 || len(m.Data) > MaxFragment {
		return malformed("chunk: fragment of %d bytes not in 1…%d", len(m.Data), MaxFragment)
	}
	if uint64(m.Offset)+uint64(len(m.Data)) > uint64(m.Size) {
		return malformed("chunk: fragment [%d, %d) past size %d", m.Offset, uint64(m.Offset)+uint64(len(m.Data)), m.Size)
	}
	return nil
}

func decodeChunk(d *decoder) *Chunk {
	m := &Chunk{ReqID: d.u32(), ID: d.id(), Size: d.u32(), Offset: d.u32()}
	m.Data = d.bytes(len(d.b))
	return m
}

// Outboard carries the BLAKE3 tree of a chunk above its 16 KiB pieces
// (manifest.Outboard), sent before the chunk's first fragment by a pusher
// that has it, so that the receiver can verify the chunk piece by piece and
// relay each verified piece before the chunk is whole (cut-through,
// docs/protocol.md §5.8). It proves nothing alone: the receiver checks every
// piece against it and the signed chunk id.
type Outboard struct {
	ID manifest.ID
	// Data is the outboard: the chunk's size (8 bytes, little endian) and
	// the tree's parent nodes. It aliases the frame after Decode.
	Data []byte
}

func (*Outboard) Type() Type { return TypeOutboard }

func (m *Outboard) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeOutboard)
	buf = append(buf, m.ID[:]...)
	buf = append(buf, m.Data...)
	return endFrame(buf, start)
}

// Size is the chunk size the outboard states (0 if it is too short to say).
func (m *Outboard) Size() int {
	if len(m.Data) < 8 {
		return 0
	}
	return int(min(binary.LittleEndian.Uint64(m.Data), MaxChunk+1))
}

func (m *Outboard) Validate() error {
	n := m.Size()
	if n < 1 || n > MaxChunk {
		return malformed("outboard: %d bytes, for a chunk size not in 1…%d", len(m.Data), MaxChunk)
	}
	if want := manifest.OutboardSize(n); len(m.Data) != want {
		return malformed("outboard: %d bytes for a chunk of %d, want %d", len(m.Data), n, want)
	}
	return nil
}

// Fragments appends to dst the Chunk messages that carry data whole, in
// order, each with at most MaxFragment bytes; the messages alias data.
func Fragments(dst []Chunk, reqID uint32, id manifest.ID, data []byte) []Chunk {
	for off := 0; off < len(data); off += MaxFragment {
		end := min(off+MaxFragment, len(data))
		dst = append(dst, Chunk{ReqID: reqID, ID: id, Size: uint32(len(data)), Offset: uint32(off), Data: data[off:end]})
	}
	return dst
}

// ChokeReason says why an upstream stops serving.
type ChokeReason uint8

// Choke reasons.
const (
	ChokeBudget     ChokeReason = 1 // relay budget spent or cut (or relay turned off)
	ChokeCongested  ChokeReason = 2 // the sender's own connection suffers
	ChokeOverloaded ChokeReason = 3 // too many downstreams
)

// Choke tells the receiver that the sender stops pushing and answering
// requests until it sends Unchoke.
type Choke struct{ Reason ChokeReason }

func (*Choke) Type() Type { return TypeChoke }

func (m *Choke) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeChoke)
	buf = append(buf, byte(m.Reason))
	return endFrame(buf, start)
}

func (m *Choke) Validate() error {
	if m.Reason < ChokeBudget || m.Reason > ChokeOverloaded {
		return malformed("choke: reason %d", m.Reason)
	}
	return nil
}

// Unchoke ends a Choke.
type Unchoke struct{}

func (*Unchoke) Type() Type { return TypeUnchoke }

func (m *Unchoke) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeUnchoke)
	return endFrame(buf, start)
}

func (*Unchoke) Validate() error { return nil }

// RejectReason says why a Request is refused.
type RejectReason uint8

// Reject reasons.
const (
	RejectNotHeld  RejectReason = 1 // the sender does not hold the chunk (any longer)
	RejectNoBudget RejectReason = 2 // relay budget spent
	RejectBusy     RejectReason = 3 // too many requests in progress
)

// Reject refuses one Request.
type Reject struct {
	ReqID  uint32
	Reason RejectReason
}

func (*Reject) Type() Type { return TypeReject }

func (m *Reject) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeReject)
	buf = binary.BigEndian.AppendUint32(buf, m.ReqID)
	buf = append(buf, byte(m.Reason))
	return endFrame(buf, start)
}

func (m *Reject) Validate() error {
	if m.ReqID == 0 {
		return malformed("reject: request id 0")
	}
	if m.Reason < RejectNotHeld || m.Reason > RejectBusy {
		return malformed("reject: reason %d", m.Reason)
	}
	return nil
}

// Stats are the few counters a peer may share with its neighbours.
type Stats struct {
	BufferMs   uint32 // media buffered ahead of the playhead
	UploadKbps uint32 // current upload to peers
	Peers      uint16 // connected peers
}

func (*Stats) Type() Type { return TypeStats }

func (m *Stats) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeStats)
	buf = binary.BigEndian.AppendUint32(buf, m.BufferMs)
	buf = binary.BigEndian.AppendUint32(buf, m.UploadKbps)
	buf = binary.BigEndian.AppendUint16(buf, m.Peers)
	return endFrame(buf, start)
}

func (*Stats) Validate() error { return nil }
