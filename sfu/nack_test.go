package sfu

import (
	"slices"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// feed enters seqs in g, all at now.
func feed(g *nackLog, now int64, seqs ...uint16) {
	for _, s := range seqs {
		g.received(s, now)
	}
}

func TestNackLogGap(t *testing.T) {
	var g nackLog
	feed(&g, 0, 100, 101, 104) // 102 and 103 lost
	if got := g.due(5*ms, nil); len(got) != 0 {
		t.Fatalf("asked for %v within the reorder grace", got)
	}
	if got := g.due(10*ms, nil); !slices.Equal(got, []uint16{102, 103}) {
		t.Fatalf("due after the grace = %v, want [102 103]", got)
	}
	if got := g.due(50*ms, nil); len(got) != 0 {
		t.Fatalf("asked again for %v before the retry interval", got)
	}
	// 102 comes back (a retransmission): only 103 is asked for again.
	if !g.received(102, 60*ms) {
		t.Fatal("102 arrived after it was missing, but received says it was not missing")
	}
	if got := g.due(110*ms, nil); !slices.Equal(got, []uint16{103}) {
		t.Fatalf("due after the retry interval = %v, want [103]", got)
	}
}

// TestNackLogRepairedNotAskedAgain is pion/interceptor#320's case: a packet
// repaired once must never be asked for again.
func TestNackLogRepairedNotAskedAgain(t *testing.T) {
	var g nackLog
	feed(&g, 0, 1, 3)
	if got := g.due(20*ms, nil); !slices.Equal(got, []uint16{2}) {
		t.Fatalf("due = %v, want [2]", got)
	}
	g.received(2, 30*ms)
	next := uint16(4)
	for now := 30 * ms; now < 5*int64(time.Second); now += 20 * ms {
		feed(&g, now, next)
		next++
		if got := g.due(now, nil); len(got) != 0 {
			t.Fatalf("at %v: asked for %v, though nothing was lost since", time.Duration(now), got)
		}
	}
}

func TestNackLogGivesUp(t *testing.T) {
	var g nackLog
	feed(&g, 0, 10, 12)
	asks := 0
	for now := int64(0); now < 2*int64(time.Second); now += 10 * ms {
		asks += len(g.due(now, nil))
	}
	if asks != nackMaxTries {
		t.Fatalf("a packet that never came was asked for %d times, want %d", asks, nackMaxTries)
	}
	if len(g.missing) != 0 {
		t.Fatalf("%d packets still tracked after giving up", len(g.missing))
	}
}

func TestNackLogReorderWithinGrace(t *testing.T) {
	var g nackLog
	feed(&g, 0, 1, 3)
	if g.received(2, 2*ms) != true {
		t.Fatal("a reordered packet should count as missing-then-found")
	}
	if got := g.due(20*ms, nil); len(got) != 0 {
		t.Fatalf("asked for %v: the reordered packet arrived within the grace", got)
	}
	if g.received(3, 25*ms) {
		t.Fatal("a duplicate of a packet received counted as missing")
	}
}

func TestNackLogWraps(t *testing.T) {
	var g nackLog
	feed(&g, 0, 65533, 65534, 1) // 65535 and 0 lost across the wrap
	if got := g.due(10*ms, nil); !slices.Equal(got, []uint16{65535, 0}) {
		t.Fatalf("due across the wrap = %v, want [65535 0]", got)
	}
	// A packet from before the wrap, old and never missing: ignored.
	if g.received(65000, 11*ms) {
		t.Fatal("an old packet counted as missing")
	}
	if g.newest != 65537 {
		t.Fatalf("newest = %d, want 65537 (extended)", g.newest)
	}
}

// TestNackLogLongGap: after a cut, only the newest nackMaxMissing packets
// are asked for, and the account stays bounded.
func TestNackLogLongGap(t *testing.T) {
	var g nackLog
	feed(&g, 0, 0, 1000)
	got := g.due(10*ms, nil)
	if len(got) != nackMaxMissing {
		t.Fatalf("asked for %d packets after a gap of 999, want %d", len(got), nackMaxMissing)
	}
	if got[0] != 1000-nackMaxMissing || got[len(got)-1] != 999 {
		t.Fatalf("asked for %d..%d, want the newest: %d..999", got[0], got[len(got)-1], 1000-nackMaxMissing)
	}
	// A second gap pushes the oldest out.
	feed(&g, 20*ms, 1010)
	if len(g.missing) != nackMaxMissing {
		t.Fatalf("%d tracked, want at most %d", len(g.missing), nackMaxMissing)
	}
	if g.missing[len(g.missing)-1].seq != 1009 {
		t.Fatalf("newest tracked = %d, want 1009", g.missing[len(g.missing)-1].seq)
	}
}

// FuzzNackLog feeds a publisher's arbitrary sequence numbers (a lying or
// broken publisher) to a nackLog: the account stays bounded and ordered,
// and no packet is asked for more than nackMaxTries times.
func FuzzNackLog(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 2, 0, 0, 9, 0, 255, 255, 0})
	f.Add([]byte{255, 250, 1, 0, 5, 1, 128, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		var g nackLog
		asked := map[int64]int{}
		now := int64(0)
		for i := 0; i+2 < len(data); i += 3 {
			now += int64(data[i+2]) * ms
			g.received(uint16(data[i])<<8|uint16(data[i+1]), now)
			for _, s := range g.due(now, nil) {
				ext := g.extend(s)
				asked[ext]++
				if asked[ext] > nackMaxTries {
					t.Fatalf("packet %d asked for %d times", ext, asked[ext])
				}
			}
			if len(g.missing) > nackMaxMissing {
				t.Fatalf("%d packets tracked, cap %d", len(g.missing), nackMaxMissing)
			}
			for j, m := range g.missing {
				if m.seq >= g.newest || (j > 0 && m.seq <= g.missing[j-1].seq) {
					t.Fatalf("account out of order at %d: %d (newest %d)", j, m.seq, g.newest)
				}
			}
		}
	})
}
