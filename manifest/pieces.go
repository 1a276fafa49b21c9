package manifest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"lukechampine.com/blake3/bao"
)

// PieceSize is the unit in which a chunk still arriving can be verified and
// relayed (cut-through): 16 KiB, 16 BLAKE3 chunks of 1 KiB. A chunk's
// outboard holds the BLAKE3 tree above its pieces (Bao's outboard encoding
// with chunk groups of 2^pieceGroup, docs/protocol.md §5.8); with it, each
// piece is checked against the chunk's ID as soon as it is whole.
const PieceSize = 1024 << pieceGroup

const pieceGroup = 4

// ErrBadPiece is returned when bytes of a chunk, or the outboard proving
// them, do not hash to the chunk's ID.
var ErrBadPiece = errors.New("manifest: piece does not match its chunk id")

// OutboardSize returns the size of the outboard of a chunk of size bytes:
// 8 bytes of length, then 64 bytes for each of the tree's pieces − 1 parent
// nodes (a 125 KB chunk: 8 pieces, 456 bytes).
func OutboardSize(size int) int { return bao.EncodedSize(size, pieceGroup, true) }

// Outboard returns the outboard of data: its length (8 bytes, little
// endian) and the tree's parent nodes in pre-order, each as its two child
// chaining values (Bao, groups of PieceSize).
func Outboard(data []byte) []byte {
	ob, _ := bao.EncodeBuf(data, pieceGroup, true)
	return ob
}

// CheckPieceBounds checks what VerifyPieces checks before hashing: that
// outboard has the size and length field of a chunk of size bytes, and
// that bytes [off, off+n) are whole pieces of it (the chunk's last piece
// may be short). The error wraps ErrBadPiece.
func CheckPieceBounds(size int, outboard []byte, off, n int) error {
	switch {
	case len(outboard) != OutboardSize(size) || binary.LittleEndian.Uint64(outboard) != uint64(size):
		return fmt.Errorf("%w: outboard of %d bytes for a chunk of %d", ErrBadPiece, len(outboard), size)
	case off < 0 || off%PieceSize != 0 || off+n > size || n == 0:
		return fmt.Errorf("%w: bytes [%d, %d) of %d are not whole pieces", ErrBadPiece, off, off+n, size)
	case n%PieceSize != 0 && off+n != size:
		return fmt.Errorf("%w: bytes [%d, %d) of %d end inside a piece", ErrBadPiece, off, off+n, size)
	}
	return nil
}

// VerifyPieces reports whether data is bytes [off, off+len(data)) of the
// chunk named id, of size bytes, as proven by outboard. off must be a
// multiple of PieceSize and data whole pieces (the chunk's last piece may be
// short). The error wraps ErrBadPiece.
func VerifyPieces(id ID, size int, outboard []byte, off int, data []byte) error {
	if err := CheckPieceBounds(size, outboard, off, len(data)); err != nil {
		return err
	}
	if !bao.VerifyChunk(data, outboard, pieceGroup, uint64(off), id) {
		return fmt.Errorf("%w: bytes [%d, %d) of %s", ErrBadPiece, off, off+len(data), id)
	}
	return nil
}
