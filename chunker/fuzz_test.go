package chunker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/avc"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
)

// h264FuzzUnits splits fuzz input into access units. Each unit is a 4-byte
// header — flags (bit 0 keyframe, bit 1 discontinuity, bits 2–3 PTS offset in
// frames), DTS step s (the unit comes s²×100 µs after the previous one; 0
// repeats its time), payload length (big-endian uint16) — then the payload,
// cut short at the end of the input.
func h264FuzzUnits(data []byte) []media.AccessUnit {
	var out []media.AccessUnit
	var dts time.Duration
	for len(data) >= 4 {
		flags, step, n := data[0], time.Duration(data[1]), int(binary.BigEndian.Uint16(data[2:4]))
		data = data[4:]
		n = min(n, len(data))
		dts += step * step * 100 * time.Microsecond
		out = append(out, media.AccessUnit{
			DTS: dts, PTS: dts + time.Duration(flags>>2&3)*time.Second/30,
			Data: data[:n], Keyframe: flags&1 != 0, Discontinuity: flags&2 != 0,
		})
		data = data[n:]
	}
	return out
}

// h264FuzzInput is the inverse of h264FuzzUnits for units 1/30 s apart
// (step 18: 32.4 ms).
func h264FuzzInput(units [][]byte, keyframes []bool) []byte {
	var out []byte
	for i, u := range units {
		var flags byte
		if keyframes[i] {
			flags = 1
		}
		out = append(out, flags, 18, byte(len(u)>>8), byte(len(u)))
		out = append(out, u...)
	}
	return out
}

// demoH264Seeds returns demo clip units from..to as fuzz input, Annex-B or
// AVCC, with the clip's parameter sets (or sps, pps when given) in front of
// the first unit.
func demoH264Seeds(tb testing.TB, from, to int, avcc bool, sps, pps []byte) []byte {
	tb.Helper()
	clip, err := media.DemoClip()
	if err != nil {
		tb.Fatal(err)
	}
	if sps == nil {
		sps, pps = clip.Video.SPS[0], clip.Video.PPS[0]
	}
	var units [][]byte
	var keys []bool
	for i, u := range clip.VideoUnits[from:to] {
		var b []byte
		if avcc {
			if i == 0 {
				b = appendAVCC(appendAVCC(b, sps), pps)
			}
			b = append(b, u.Data...)
		} else {
			if i == 0 {
				b = append(append(append(append(b, 0, 0, 0, 1), sps...), 0, 0, 0, 1), pps...)
			}
			b = append(b, avc.ConvertSampleToByteStream(bytes.Clone(u.Data))...)
		}
		units = append(units, b)
		keys = append(keys, u.Keyframe)
	}
	return h264FuzzInput(units, keys)
}

// pushAllocBudget bounds what chunking fuzz input of n bytes may allocate:
// a few copies of the input plus init segments and signatures. Parsing a
// 30-byte parameter set must not cost megabytes.
func pushAllocBudget(n int) uint64 { return 4<<20 + 64*uint64(n) }

func FuzzPushH264(f *testing.F) {
	clip, err := media.DemoClip()
	if err != nil {
		f.Fatal(err)
	}
	for _, avcc := range []bool{false, true} {
		f.Add(demoH264Seeds(f, 0, 12, avcc, nil, nil), avcc) // 1½ chunks from an IDR
		f.Add(demoH264Seeds(f, 0, 1, avcc, nil, nil), avcc)  // one IDR
		f.Add(demoH264Seeds(f, 1, 4, avcc, nil, nil), avcc)  // no keyframe
	}
	// New parameter sets on the second IDR: a second init segment mid-stream.
	changed := bytes.Clone(clip.Video.SPS[0])
	changed[3] = 0x1f // level 3.1
	f.Add(append(demoH264Seeds(f, 0, 3, false, nil, nil), demoH264Seeds(f, 30, 32, false, changed, clip.Video.PPS[0])...), false)
	// Junk.
	for _, junk := range [][]byte{
		{},
		{1, 18, 0, 0},
		{1, 18, 0, 4, 0, 0, 0, 1},
		{1, 18, 0, 9, 0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1},
		{1, 18, 0, 12, 0, 0, 0, 1, 0x67, 0xff, 0xff, 0, 0, 1, 0x68, 0xff},
		{1, 18, 0, 20, 0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 1, 0x65},
		{1, 18, 0, 8, 0, 0, 0, 4, 0x65, 0x88, 0x84, 0x00},
		{1, 18, 0, 8, 0xff, 0xff, 0xff, 0xff, 0x65, 0x88, 0x84, 0x00},
		{3, 255, 0xff, 0xff, 0, 0, 1, 0x65, 0x88},
		bytes.Repeat([]byte{0, 0, 1}, 40),
	} {
		f.Add(junk, false)
		f.Add(junk, true)
	}

	f.Fuzz(func(t *testing.T, data []byte, avcc bool) {
		units := h264FuzzUnits(data)
		format := media.AnnexB
		if avcc {
			format = media.AVCC
		}
		var outs []Output
		c, err := New(Params{
			Stream: "fuzz", Now: fixedClock(),
			Publish: func(o Output) { outs = append(outs, o) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddRendition("v0", media.Track{Codec: media.CodecH264, Format: format}); err != nil {
			t.Fatal(err)
		}

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, u := range units {
			err := c.Push("v0", u)
			if err != nil && !errors.Is(err, ErrBadUnit) && !errors.Is(err, ErrNeedKeyframe) && !errors.Is(err, ErrTimestamp) {
				t.Fatalf("Push: unexpected error %v", err)
			}
		}
		c.Flush()
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, pushAllocBudget(len(data)); got > limit {
			t.Fatalf("chunking %d bytes in %d units allocated %d bytes (budget %d)", len(data), len(units), got, limit)
		}

		// Whatever came out is unsigned but signable, self-consistent and in order.
		var lastN uint64
		lastSeq := map[bool]uint64{}
		seen := map[bool]bool{}
		sawInit := false
		for i, o := range outs {
			if i > 0 && o.Batch.N != lastN+1 {
				t.Fatalf("batch %d follows %d", o.Batch.N, lastN)
			}
			lastN = o.Batch.N
			if o.Batch.Signature != nil {
				t.Fatalf("batch %d is signed", o.Batch.N)
			}
			if _, err := o.Batch.Encode(); err != nil {
				t.Fatalf("batch %d: %v", o.Batch.N, err)
			}
			if len(o.Data) != len(o.Batch.Entries) {
				t.Fatalf("batch %d: %d entries, %d data", o.Batch.N, len(o.Batch.Entries), len(o.Data))
			}
			for j, e := range o.Batch.Entries {
				if manifest.Sum(o.Data[j]) != e.Hash || int(e.Size) != len(o.Data[j]) {
					t.Fatalf("batch %d entry %d: hash or size does not match its data", o.Batch.N, j)
				}
				isInit := e.Kind == manifest.KindInit
				sawInit = sawInit || isInit
				if !isInit && !sawInit {
					t.Fatalf("chunk %d published before any init segment", e.Seq)
				}
				if !isInit && seen[false] && e.Seq <= lastSeq[false] {
					t.Fatalf("chunk seq %d after %d: two chunks of a slot or out of order", e.Seq, lastSeq[false])
				}
				if isInit && seen[true] && e.Seq < lastSeq[true] {
					t.Fatalf("init seq %d after %d", e.Seq, lastSeq[true])
				}
				lastSeq[isInit], seen[isInit] = e.Seq, true
			}
		}
	})
}
