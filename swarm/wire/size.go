package wire

// FrameSize is the length of m's frame (header included) as Append writes
// it, computed without encoding: a node charges its upload budget and a
// simulator counts bytes with it. Unknown message types report 0.
func FrameSize(m Message) int {
	n := 0
	switch m := m.(type) {
	case *Hello:
		n = len(Magic) + 2 + 4 + 2 + len(m.Extension)
		for _, r := range m.Renditions {
			n += 1 + len(r)
		}
	case *Have:
		n = 1 + len(m.Rendition) + 8 + 2 + len(m.Bitmap)
	case *Subscribe:
		n = 1 + len(m.Rendition) + 2 + 2
	case *Unsubscribe:
		n = 1 + len(m.Rendition) + 2 + 2
	case *Request:
		n = 4 + 32 + 1 + len(m.Rendition) + 8
	case *Cancel:
		n = 4 + 32
	case *Chunk:
		n = ChunkHeaderSize + len(m.Data)
	case *Choke:
		n = 1
	case *Unchoke:
	case *Reject:
		n = 4 + 1
	case *Stats:
		n = 4 + 4 + 2
	case *Outboard:
		n = 32 + len(m.Data)
	case *Manifest:
		n = 1
		for _, b := range m.Batches {
			n += 4 + len(b.Encoded) + len(b.Signature)
		}
	default:
		return 0
	}
	return HeaderSize + n
}
