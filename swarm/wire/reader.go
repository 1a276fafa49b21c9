package wire

import (
	"encoding/binary"
	"errors"
	"io"
)

// checkLength checks a frame's length field before anything is allocated
// for the frame.
func checkLength(n uint32) error {
	if n == 0 {
		return malformed("frame of length 0 has no type")
	}
	if n > MaxMessage {
		return malformed("frame length %d over the limit of %d", n, MaxMessage)
	}
	return nil
}

// Reader splits a byte stream (a detached data channel, or any ordered
// reliable stream) into frames. Message boundaries of the transport carry no
// meaning: a frame may span several data-channel messages and one message may
// hold several frames.
type Reader struct {
	r   io.Reader
	buf []byte
}

// NewReader returns a Reader of frames from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the next whole frame (length, type, payload), ready for
// Decode. The frame aliases the Reader's buffer and is valid until the next
// call. It returns io.EOF at a clean end of the stream, io.ErrUnexpectedEOF
// when the stream ends inside a frame, and an error wrapping ErrMalformed
// when the length field is 0 or over MaxMessage; the length is checked before
// the buffer grows, and the buffer never exceeds MaxFrame bytes.
func (r *Reader) Next() ([]byte, error) {
	if cap(r.buf) < 4 {
		r.buf = make([]byte, 0, 512)
	}
	hdr := r.buf[:4]
	if _, err := io.ReadFull(r.r, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if err := checkLength(n); err != nil {
		return nil, err
	}
	size := 4 + int(n)
	if cap(r.buf) < size {
		nb := make([]byte, size, max(size, min(2*cap(r.buf), MaxFrame)))
		copy(nb, hdr)
		r.buf = nb
	}
	frame := r.buf[:size]
	if _, err := io.ReadFull(r.r, frame[4:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return frame, nil
}

// ReadMessage reads and decodes the next frame. On ErrUnknownType the frame
// has been consumed and the Reader stays in sync: call ReadMessage again. The
// message aliases the Reader's buffer (see Decode) until the next call.
func (r *Reader) ReadMessage() (Message, error) {
	frame, err := r.Next()
	if err != nil {
		return nil, err
	}
	return Decode(frame)
}

// Splitter splits data that arrives in pieces (data-channel messages handed
// to a callback) into frames: Write each piece, then call Next until it
// returns nil. Write refuses a frame whose length field is bad as soon as its
// four bytes are in, and never buffers more than one partial frame plus the
// piece being written.
type Splitter struct {
	buf []byte // unread bytes start at off
	off int
}

// MaxPiece bounds one data-channel message, sent or received: 64 KiB, the
// size every WebRTC stack delivers whole (larger messages are refused by
// some and interleave badly in all). A sender splits longer runs of frames
// into pieces of at most MaxPiece; Splitter.Write refuses longer pieces.
const MaxPiece = 64 << 10

// Write appends a piece of the stream. It fails (wrapping ErrMalformed) when
// the piece is over MaxPiece or a complete length field is bad.
func (s *Splitter) Write(p []byte) (int, error) {
	if len(p) > MaxPiece {
		return 0, malformed("data-channel message of %d bytes, over %d", len(p), MaxPiece)
	}
	if s.Buffered() >= MaxFrame {
		return 0, malformed("%d bytes buffered: Next was not called until it returned nil", s.Buffered())
	}
	if s.off > 0 && s.off == len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
	} else if s.off > 0 && s.off >= cap(s.buf)/2 {
		s.buf = s.buf[:copy(s.buf, s.buf[s.off:])]
		s.off = 0
	}
	s.buf = append(s.buf, p...)
	return len(p), s.check()
}

// check validates the length field of the first unread frame, if complete.
func (s *Splitter) check() error {
	if rest := s.buf[s.off:]; len(rest) >= 4 {
		return checkLength(binary.BigEndian.Uint32(rest))
	}
	return nil
}

// Next returns the next whole frame, or nil when the bytes written so far
// end inside a frame. The frame aliases the Splitter's buffer until the next
// Write. An error wraps ErrMalformed: the stream cannot be resynchronised.
func (s *Splitter) Next() ([]byte, error) {
	rest := s.buf[s.off:]
	if len(rest) < 4 {
		return nil, nil
	}
	n := binary.BigEndian.Uint32(rest)
	if err := checkLength(n); err != nil {
		return nil, err
	}
	size := 4 + int(n)
	if len(rest) < size {
		return nil, nil
	}
	s.off += size
	return rest[:size:size], nil
}

// Buffered returns the number of bytes written but not yet returned by Next.
func (s *Splitter) Buffered() int { return len(s.buf) - s.off }
