package sfu

import (
	"errors"
	"testing"
	"time"
)

func TestRewriter(t *testing.T) {
	type in struct {
		src  uint64
		seq  uint16
		ts   uint32
		at   time.Duration // arrival, from 0
		want uint16        // expected output seq
		drop bool
		// wantTS is checked when nonzero; tsAfter checks ts > previous.
		wantTS uint32
	}
	ms := time.Millisecond
	cases := []struct {
		name  string
		clock uint32
		pkts  []in
	}{
		{"first source passes through", 90000, []in{
			{src: 1, seq: 100, ts: 1000, want: 100, wantTS: 1000},
			{src: 1, seq: 101, ts: 1000, want: 101, wantTS: 1000},
			{src: 1, seq: 102, ts: 4000, at: 33 * ms, want: 102, wantTS: 4000},
		}},
		{"layer switch continues +1, ts advances by elapsed time", 90000, []in{
			{src: 1, seq: 100, ts: 1000, want: 100, wantTS: 1000},
			{src: 1, seq: 101, ts: 4000, at: 33 * ms, want: 101, wantTS: 4000},
			{src: 2, seq: 5000, ts: 777777, at: 66 * ms, want: 102, wantTS: 4000 + 33*90},
			{src: 2, seq: 5001, ts: 777777 + 3000, at: 99 * ms, want: 103, wantTS: 4000 + 33*90 + 3000},
			{src: 1, seq: 103, ts: 10000, at: 100 * ms, want: 104, wantTS: 4000 + 33*90 + 3000 + 90},
		}},
		{"reconnect with wrapped seq and ts", 48000, []in{
			{src: 1, seq: 65534, ts: 0xfffffe00, want: 65534, wantTS: 0xfffffe00},
			{src: 1, seq: 65535, ts: 0x000001c0, at: 20 * ms, want: 65535},
			{src: 1, seq: 0, ts: 0x00000400, at: 40 * ms, want: 0},
			{src: 9, seq: 31337, ts: 123, at: 2040 * ms, want: 1, wantTS: 0x00000400 + 2000*48},
			{src: 9, seq: 31338, ts: 123 + 960, at: 2060 * ms, want: 2, wantTS: 0x00000400 + 2000*48 + 960},
		}},
		{"same-instant switch still advances ts", 90000, []in{
			{src: 1, seq: 10, ts: 500, want: 10, wantTS: 500},
			{src: 2, seq: 90, ts: 9, want: 11, wantTS: 501},
		}},
		{"reordering and gaps kept within a source", 90000, []in{
			{src: 1, seq: 10, ts: 0, want: 10},
			{src: 1, seq: 12, ts: 0, want: 12},
			{src: 1, seq: 11, ts: 0, want: 11},
			{src: 1, seq: 11, ts: 0, want: 11}, // duplicate (retransmission) passes
		}},
		{"late packets of the new source from before the switch are dropped", 90000, []in{
			{src: 1, seq: 10, ts: 0, want: 10},
			{src: 2, seq: 500, ts: 0, at: ms, want: 11},
			{src: 2, seq: 499, ts: 0, at: ms, drop: true},
			{src: 2, seq: 501, ts: 0, at: ms, want: 12},
		}},
		{"very late packets dropped", 90000, []in{
			{src: 1, seq: 0, ts: 0, want: 0},
			{src: 1, seq: 2000, ts: 0, want: 2000},
			{src: 1, seq: 500, ts: 0, drop: true},
		}},
		{"long run after a switch does not wrap into drops", 90000, func() []in {
			p := []in{{src: 1, seq: 1, want: 1}, {src: 2, seq: 100, want: 2}}
			for i := 1; i < 70000; i += 997 {
				p = append(p, in{src: 2, seq: uint16(100 + i), want: uint16(2 + i)})
			}
			return p
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rw := newRewriter(c.clock)
			base := time.Unix(1000, 0)
			var lastTS uint32
			for i, p := range c.pkts {
				seq, ts, ok := rw.rewrite(p.src, p.seq, p.ts, base.Add(p.at).UnixNano())
				if ok == p.drop {
					t.Fatalf("packet %d: ok=%v, want drop=%v", i, ok, p.drop)
				}
				if !ok {
					continue
				}
				if seq != p.want {
					t.Fatalf("packet %d: seq %d, want %d", i, seq, p.want)
				}
				if p.wantTS != 0 && ts != p.wantTS {
					t.Fatalf("packet %d: ts %d, want %d", i, ts, p.wantTS)
				}
				_ = lastTS
				lastTS = ts
			}
		})
	}
}

func TestSelectLayer(t *testing.T) {
	rates := []uint64{150_000, 500_000, 1_500_000}
	cases := []struct {
		name     string
		current  int
		estimate uint64
		want     int
	}{
		{"join, plenty", -1, 5_000_000, 2},
		{"join, middle", -1, 700_000, 1},
		{"join, starved", -1, 50_000, 0},
		{"up needs headroom", 1, 1_600_000, 1},
		{"up with headroom", 1, 1_900_000, 2},
		{"hold just under bitrate margin", 2, 1_500_000, 2},
		{"down when it no longer fits", 2, 1_400_000, 1},
		{"down two layers", 2, 400_000, 0},
		{"stay at lowest", 0, 10_000, 0},
		{"out of range current", 7, 700_000, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := selectLayer(rates, c.current, c.estimate, LayerPolicy{}); got != c.want {
				t.Errorf("selectLayer(%d, %d) = %d, want %d", c.current, c.estimate, got, c.want)
			}
		})
	}
	if got := selectLayer(nil, 0, 1e6, LayerPolicy{}); got != -1 {
		t.Errorf("no layers: %d", got)
	}
	// Hysteresis: an estimate oscillating around the top layer's bitrate
	// does not flap.
	cur := 2
	for _, est := range []uint64{1_450_000, 1_550_000, 1_450_000, 1_600_000, 1_700_000} {
		cur = selectLayer(rates, cur, est, LayerPolicy{})
	}
	if cur != 1 {
		t.Errorf("after oscillation: layer %d, want 1 (went down once, never back up)", cur)
	}
}

func TestLossEstimator(t *testing.T) {
	now := time.Unix(0, 0)
	e := newLossEstimator(EstimatorParams{Initial: 1_000_000})
	e.onLoss(0)
	if v := e.value(now); v != 1_080_000 {
		t.Errorf("after no loss: %d", v)
	}
	e.onLoss(13) // ~5%: hold
	if v := e.value(now); v != 1_080_000 {
		t.Errorf("after 5%% loss: %d", v)
	}
	e.onLoss(64) // 25%
	if v := e.value(now); v != uint64(1_080_000*(1-0.125)) {
		t.Errorf("after 25%% loss: %d", v)
	}
	e.onREMB(300_000, now)
	if v := e.value(now.Add(time.Second)); v != 300_000 {
		t.Errorf("REMB cap: %d", v)
	}
	if v := e.value(now.Add(10 * time.Second)); v == 300_000 {
		t.Errorf("stale REMB still caps")
	}
	for range 100 {
		e.onLoss(255)
	}
	if v := e.value(now.Add(time.Minute)); v != 100_000 {
		t.Errorf("floor: %d", v)
	}
}

func TestSpeakerDetector(t *testing.T) {
	type obs struct {
		at    time.Duration
		id    string
		level uint8
	}
	// talk produces packets every 20 ms from..to for id at a level.
	talk := func(id string, level uint8, from, to time.Duration) []obs {
		var o []obs
		for at := from; at < to; at += 20 * time.Millisecond {
			o = append(o, obs{at, id, level})
		}
		return o
	}
	cat := func(parts ...[]obs) []obs {
		var o []obs
		for _, p := range parts {
			o = append(o, p...)
		}
		// Interleave by time.
		for i := 1; i < len(o); i++ {
			for j := i; j > 0 && o[j].at < o[j-1].at; j-- {
				o[j], o[j-1] = o[j-1], o[j]
			}
		}
		return o
	}
	s := time.Second
	cases := []struct {
		name string
		obs  []obs
		want string
		// changes is the expected sequence of dominant speakers.
		changes []string
	}{
		{"single speaker takes over after hold", talk("a", 30, 0, 2*s), "a", []string{"a"}},
		{"too short to take over", talk("a", 30, 0, 800*time.Millisecond), "", nil},
		{"silence never becomes dominant", talk("a", 127, 0, 3*s), "", nil},
		{"quiet background is not speech", talk("a", 90, 0, 3*s), "", nil},
		{"speaker over background wins", cat(talk("a", 60, 0, 3*s), talk("b", 20, 0, 3*s)), "b", []string{"b"}},
		{"louder of two speakers wins", cat(talk("a", 35, 0, 3*s), talk("b", 10, 0, 3*s)), "b", []string{"b"}},
		{"similar speakers: the first to lead keeps it", cat(talk("a", 30, 0, 3*s), talk("b", 28, 1500*time.Millisecond, 3*s)), "a", []string{"a"}},
		{"silence does not switch", cat(talk("a", 30, 0, 2*s), talk("a", 127, 2*s, 5*s), talk("b", 127, 0, 5*s)), "a", []string{"a"}},
		{"turn taking", cat(talk("a", 30, 0, 2*s), talk("b", 30, 2*s, 4*s)), "b", []string{"a", "b"}},
		{"interjection shorter than hold does not switch",
			cat(talk("a", 30, 0, 4*s), talk("b", 10, 2*s, 2500*time.Millisecond), talk("a", 30, 4*s, 5*s)), "a", []string{"a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newSpeakerDetector(SpeakerParams{})
			base := time.Unix(100, 0)
			var changes []string
			dom := ""
			for _, o := range c.obs {
				var changed bool
				dom, changed = d.observe(o.id, o.level, base.Add(o.at))
				if changed {
					changes = append(changes, dom)
				}
			}
			if dom != c.want {
				t.Errorf("dominant %q, want %q", dom, c.want)
			}
			if len(changes) != len(c.changes) {
				t.Fatalf("changes %v, want %v", changes, c.changes)
			}
			for i := range changes {
				if changes[i] != c.changes[i] {
					t.Fatalf("changes %v, want %v", changes, c.changes)
				}
			}
		})
	}
	d := newSpeakerDetector(SpeakerParams{})
	for _, o := range talk("a", 30, 0, 2*s) {
		d.observe(o.id, o.level, time.Unix(0, 0).Add(o.at))
	}
	if dom, changed := d.remove("a"); dom != "" || !changed {
		t.Errorf("remove dominant: %q %v", dom, changed)
	}
}

func TestKeyframeDetection(t *testing.T) {
	cases := []struct {
		name string
		c    codecKind
		p    []byte
		want bool
	}{
		{"h264 sps", codecH264, []byte{0x67, 1, 2}, true},
		{"h264 idr", codecH264, []byte{0x65, 1}, true},
		{"h264 non-idr", codecH264, []byte{0x41, 1}, false},
		{"h264 stap-a sps", codecH264, []byte{0x78, 0, 3, 0x67, 1, 2}, true},
		{"h264 stap-a non-idr", codecH264, []byte{0x78, 0, 2, 0x41, 1}, false},
		{"h264 stap-a short", codecH264, []byte{0x78, 0}, false},
		{"h264 fu-a idr start", codecH264, []byte{0x7c, 0x85, 1}, true},
		{"h264 fu-a idr middle", codecH264, []byte{0x7c, 0x05, 1}, false},
		{"h264 fu-a non-idr start", codecH264, []byte{0x7c, 0x81, 1}, false},
		{"h264 empty", codecH264, nil, false},
		{"vp8 key", codecVP8, []byte{0x10, 0x00}, true},
		{"vp8 delta", codecVP8, []byte{0x10, 0x01}, false},
		{"vp8 not start", codecVP8, []byte{0x00, 0x00}, false},
		{"vp8 key with picture id", codecVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"vp8 truncated", codecVP8, []byte{0x90, 0x80}, false},
		{"audio", codecAudio, []byte{0xfc}, true},
		{"other", codecOther, []byte{0x67}, false},
	}
	for _, c := range cases {
		if got := startsKeyframe(c.c, c.p); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(500 * time.Millisecond)
	ms := int64(time.Millisecond)
	steps := []struct {
		at   int64
		want bool
	}{{1 * ms, true}, {2 * ms, false}, {400 * ms, false}, {501 * ms, true}, {900 * ms, false}, {1001 * ms, true}}
	for _, s := range steps {
		if got := l.allow(s.at); got != s.want {
			t.Errorf("allow(%dms) = %v, want %v", s.at/ms, got, s.want)
		}
	}
}

func TestTrickleFragment(t *testing.T) {
	f, err := parseTrickleFragment([]byte("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
		"m=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
		"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n" +
		"m=video 9 RTP/AVP 0\r\na=mid:1\r\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Ufrag != "EsAw" || f.Pwd != "P2uYro0UCOQ4zxjKXaWCBui1" || !f.EndOfCandidates || len(f.Candidates) != 3 {
		t.Fatalf("%+v", f)
	}
	if c := f.Candidates[2]; c.Mid != "1" || c.MLineIndex != 1 || c.Candidate != "candidate:1 1 udp 1 192.0.2.1 5000 typ host" {
		t.Errorf("%+v", c)
	}
	for _, bad := range []string{"hello", "a=candidate:\r\n", "a=ice-ufrag:\r\n", "=x", "A=b"} {
		if _, err := parseTrickleFragment([]byte(bad)); !errors.Is(err, ErrBadTrickle) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestStreamKeys(t *testing.T) {
	k := StreamKeys{"live": "key"}
	for _, c := range []struct {
		stream, token string
		ok            bool
	}{{"live", "key", true}, {"live", "kez", false}, {"live", "", false}, {"other", "key", false}, {"other", "\x00unknown-stream\x00", false}} {
		err := k.CheckPublish(c.stream, c.token)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrUnauthorized)) {
			t.Errorf("%q %q: %v", c.stream, c.token, err)
		}
	}
}
