package manifest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// pieceData is the vectors' chunk: byte i is i mod 251 (Bao's test input).
func pieceData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func TestOutboardRootIsID(t *testing.T) {
	for _, n := range []int{1, 1023, 1024, PieceSize - 1, PieceSize, PieceSize + 1, 125_000, 3*PieceSize + 7} {
		data := pieceData(n)
		ob := Outboard(data)
		if len(ob) != OutboardSize(n) {
			t.Fatalf("%d bytes: outboard %d bytes, OutboardSize says %d", n, len(ob), OutboardSize(n))
		}
		id := Sum(data)
		for off := 0; off < n; off += PieceSize {
			end := min(off+PieceSize, n)
			if err := VerifyPieces(id, n, ob, off, data[off:end]); err != nil {
				t.Fatalf("%d bytes, piece at %d: %v", n, off, err)
			}
		}
		if err := VerifyPieces(id, n, ob, 0, data); err != nil {
			t.Fatalf("%d bytes whole: %v", n, err)
		}
	}
}

func TestVerifyPiecesRefuses(t *testing.T) {
	const n = 125_000
	data := pieceData(n)
	ob, id := Outboard(data), Sum(data)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	cases := []struct {
		name string
		id   ID
		size int
		ob   []byte
		off  int
		data []byte
	}{
		{"piece byte flipped", id, n, ob, PieceSize, flip(data[PieceSize:2*PieceSize], 100)},
		{"last piece byte flipped", id, n, ob, 7 * PieceSize, flip(data[7*PieceSize:], 5)},
		{"outboard node flipped", id, n, flip(ob, 8+3), 0, data[:PieceSize]},
		{"outboard length field", id, n, func() []byte { c := bytes.Clone(ob); c[0]++; return c }(), 0, data[:PieceSize]},
		{"outboard short", id, n, ob[:len(ob)-1], 0, data[:PieceSize]},
		{"wrong id", Sum([]byte("other")), n, ob, 0, data[:PieceSize]},
		{"wrong size", id, n - 1, ob, 0, data[:PieceSize]},
		{"piece at the wrong offset", id, n, ob, PieceSize, data[:PieceSize]},
		{"unaligned offset", id, n, ob, 100, data[100 : 100+PieceSize]},
		{"part of a piece", id, n, ob, 0, data[:PieceSize-1]},
		{"past the end", id, n, ob, 7 * PieceSize, append(bytes.Clone(data[7*PieceSize:]), 0)},
		{"empty", id, n, ob, 0, nil},
	}
	for _, c := range cases {
		if err := VerifyPieces(c.id, c.size, c.ob, c.off, c.data); !errors.Is(err, ErrBadPiece) {
			t.Errorf("%s: got %v, want ErrBadPiece", c.name, err)
		}
	}
}

// TestOutboardVectors pins the outboard format of docs/protocol.md §2.6
// (input byte i = i mod 251). The ids are BLAKE3's own (Sum); the
// outboards are Bao's outboard encoding with 16-KiB chunk groups.
func TestOutboardVectors(t *testing.T) {
	for _, v := range []struct {
		size   int
		id, ob string
	}{
		{PieceSize, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4", "0040000000000000"},
		{2*PieceSize + 1, "da589428d9b32c97658a04a21c0c8a38aad2ac402120819d956fd6d62bbfa36e",
			"0180000000000000" +
				"1e03bf3657c5076623059f21d92f2ec634dd276b07e3760625c73416f343d857" +
				"837c33e2a2f96da5c3650b94192fe74638ffe422668c3ff95a3a610155b3288a" +
				"5384f9b342c6cb86badedcbe662b0e980476a8db17db3cc1f13b19329749ab1f" +
				"406632eceb31aa6735f072ad0554f5963f4082b5139978455b44f67732cf949d"},
	} {
		data := pieceData(v.size)
		if got := Sum(data).String(); got != v.id {
			t.Errorf("size %d: id %s, want %s", v.size, got, v.id)
		}
		if got := hex.EncodeToString(Outboard(data)); got != v.ob {
			t.Errorf("size %d: outboard %s, want %s", v.size, got, v.ob)
		}
	}
}

func FuzzVerifyPieces(f *testing.F) {
	data := pieceData(3*PieceSize + 10)
	ob := Outboard(data)
	f.Add(ob, 0, data[:PieceSize])
	f.Add(ob, 3*PieceSize, data[3*PieceSize:])
	f.Add(ob[:8], 0, data[:5])
	id := Sum(data)
	f.Fuzz(func(t *testing.T, outboard []byte, off int, piece []byte) {
		err := VerifyPieces(id, len(data), outboard, off, piece)
		if err == nil && (off < 0 || off+len(piece) > len(data) || !bytes.Equal(piece, data[off:off+len(piece)])) {
			t.Fatalf("accepted bytes [%d, %d) that are not the chunk's", off, off+len(piece))
		}
	})
}
