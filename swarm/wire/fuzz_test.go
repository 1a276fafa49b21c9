package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/seedcast/seedcast/manifest"
)

// addFrames seeds f with every sample message and every vector.
func addFrames(f *testing.F) [][]byte {
	var frames [][]byte
	for _, m := range sampleMessages(f) {
		frames = append(frames, m.Append(nil))
	}
	for _, m := range wireVectors(f) {
		if m != nil {
			frames = append(frames, m.Append(nil))
		}
	}
	frames = append(frames, []byte{0, 0, 0, 4, 0x7f, 1, 2, 3}, []byte{0, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0xff, 1})
	return frames
}

// FuzzDecode: Decode never panics, refuses with ErrMalformed or
// ErrUnknownType only, and whatever it accepts re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, fr := range addFrames(f) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			if errors.Is(err, ErrUnknownType) && (len(frame) < HeaderSize || FrameType(frame) <= TypeOutboard && FrameType(frame) != 0) {
				t.Fatalf("ErrUnknownType for type %v", FrameType(frame))
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded message fails Validate: %v", err)
		}
		if re := m.Append(nil); !bytes.Equal(re, frame) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", frame, re)
		}
		if len(frame) > MaxFrame {
			t.Fatalf("accepted a frame of %d bytes", len(frame))
		}
	})
}

// FuzzReader: Reader and Splitter agree on any stream, whatever the piece
// size, and never return a frame over MaxFrame.
func FuzzReader(f *testing.F) {
	frames := addFrames(f)
	f.Add(bytes.Join(frames, nil), uint16(7))
	f.Add(bytes.Join(frames[:3], nil), uint16(1))
	f.Add([]byte{0, 0, 0, 2, 1}, uint16(0))
	f.Fuzz(func(t *testing.T, stream []byte, piece uint16) {
		var fromReader [][]byte
		var readerErr error
		r := NewReader(bytes.NewReader(stream))
		for {
			fr, err := r.Next()
			if err != nil {
				readerErr = err
				break
			}
			if len(fr) > MaxFrame || int(binary.BigEndian.Uint32(fr))+4 != len(fr) {
				t.Fatalf("bad frame of %d bytes", len(fr))
			}
			fromReader = append(fromReader, bytes.Clone(fr))
			_, _ = Decode(fr)
		}
		if readerErr != io.EOF && readerErr != io.ErrUnexpectedEOF && !errors.Is(readerErr, ErrMalformed) {
			t.Fatalf("reader error %v", readerErr)
		}

		var s Splitter
		var fromSplitter [][]byte
		var splitErr error
		step := int(piece)%MaxPiece + 1
	feed:
		for i := 0; i < len(stream); i += step {
			if _, err := s.Write(stream[i:min(i+step, len(stream))]); err != nil {
				splitErr = err
				break
			}
			for {
				fr, err := s.Next()
				if err != nil {
					splitErr = err
					break feed
				}
				if fr == nil {
					break
				}
				fromSplitter = append(fromSplitter, bytes.Clone(fr))
			}
			if s.Buffered() >= MaxFrame {
				t.Fatalf("splitter holds %d bytes after draining", s.Buffered())
			}
		}
		if len(fromSplitter) != len(fromReader) {
			t.Fatalf("splitter gave %d frames (%v), reader %d (%v)", len(fromSplitter), splitErr, len(fromReader), readerErr)
		}
		for i := range fromReader {
			if !bytes.Equal(fromReader[i], fromSplitter[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
		if errors.Is(readerErr, ErrMalformed) != (splitErr != nil) {
			t.Fatalf("reader %v, splitter %v", readerErr, splitErr)
		}
	})
}

// FuzzReassembler feeds fragments described by the input to a Reassembler
// with small limits: it never panics, keeps its accounting within bounds, and
// any chunk it completes has exactly the bytes sent at each offset.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{0, 0, 100, 0, 0, 50, 0, 50, 0, 50})
	f.Add([]byte{1, 0, 10, 0, 5, 5, 0, 0, 5, 1, 0, 10, 0, 0, 5})
	f.Add([]byte{0, 0, 10, 0, 0, 5, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReassembler(ReassemblerParams{MaxInProgress: 3, MaxBytes: 600, MaxGaps: 4})
		// Each 5 bytes: id (0…3), size (u16, ≤ 300), offset (u8), length (u8).
		for ; len(in) >= 5; in = in[5:] {
			id := manifest.ID{in[0] % 4}
			size := uint32(binary.BigEndian.Uint16(in[1:]))%300 + 1
			off, n := uint32(in[3]), int(in[4])
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(uint32(i)+off) ^ id[0] // byte at position p = p ^ id
			}
			c := &Chunk{ID: id, Size: size, Offset: off, Data: data}
			out, err := r.Add(c)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error %v", err)
				}
				continue // a real node would close the connection; keep going to stress state
			}
			if out != nil {
				if len(out) != int(size) {
					t.Fatalf("chunk of %d bytes, size %d", len(out), size)
				}
				for p := range out {
					if out[p] != byte(p)^id[0] {
						t.Fatalf("byte %d wrong", p)
					}
				}
			}
			if n, b := r.InProgress(); n > 3 || b > 600 || b < 0 {
				t.Fatalf("in progress: %d chunks, %d bytes", n, b)
			}
		}
	})
}
