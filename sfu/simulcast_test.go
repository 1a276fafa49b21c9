package sfu

import (
	"context"
	"testing"
	"time"
)

// TestSimulcastSwitch publishes three rid layers; a tap gets them all, and a
// subscriber switching layers by hand gets a continuous stream that starts
// each new layer with a keyframe.
func TestSimulcastSwitch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	env := newTestEnv(t, nil)

	pub, resp, body := startPublisher(ctx, t, env, testStream, testKey, pubOptions{rids: []string{"q", "h", "f"}})
	if pub == nil {
		t.Fatalf("WHIP: %d %s", resp.StatusCode, body)
	}
	defer pub.close()
	room, _ := env.s.Room(testStream)
	tap := newRecordingTap()
	defer room.AddTap(tap)()

	tap.waitUntil(ctx, t, "packets of every layer", func() bool {
		return tap.packets["video/q"] > 30 && tap.packets["video/h"] > 30 &&
			tap.packets["video/f"] > 30 && tap.packets["audio/"] > 30
	})
	if n := tap.badOrder.Load(); n != 0 {
		t.Errorf("%d tap packets before OnTrack", n)
	}
	tap.mu.Lock()
	for _, k := range []string{"video/q", "video/h", "video/f"} {
		if ti := tap.tracks[k]; ti.MimeType != "video/H264" || ti.ClockRate != 90000 || ti.SSRC == 0 {
			t.Errorf("tap track %s: %+v", k, ti)
		}
	}
	tap.mu.Unlock()

	sub, resp, body := startSubscriber(ctx, t, env, testStream, "?layer=q")
	if sub == nil {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	defer sub.close()

	first := next(ctx, t, sub.video)
	if first.info.layer != 'q' || !first.info.keyStart {
		t.Fatalf("first packet: layer %c keyStart %v", first.info.layer, first.info.keyStart)
	}
	prev := first
	// expect reads packets until n packets of layer want arrived after the
	// switch, checking continuity and that the switch lands on a keyframe.
	expect := func(want byte, n int) {
		t.Helper()
		switched := prev.info.layer == want
		seen := 0
		for seen < n {
			p := next(ctx, t, sub.video)
			if p.seq != prev.seq+1 {
				t.Fatalf("seq %d after %d (layer %c after %c)", p.seq, prev.seq, p.info.layer, prev.info.layer)
			}
			if d := p.ts - prev.ts; d > 1<<31 {
				t.Fatalf("timestamp went back: %d after %d", p.ts, prev.ts)
			}
			if p.ssrc != prev.ssrc {
				t.Fatalf("SSRC changed: %d after %d", p.ssrc, prev.ssrc)
			}
			if p.info.layer == want {
				if !switched {
					if !p.info.keyStart {
						t.Fatalf("switched to layer %c on a non-keyframe packet (nal %d)", want, p.info.nalType)
					}
					if p.ts == prev.ts {
						t.Fatalf("new layer's first frame kept the old timestamp")
					}
					switched = true
				}
				seen++
			} else if switched {
				t.Fatalf("got layer %c after switching to %c", p.info.layer, want)
			}
			prev = p
		}
	}
	expect('q', 20)
	for _, rid := range []string{"h", "f", "q", "f"} {
		if err := room.SetLayer(sub.id, "video", rid); err != nil {
			t.Fatal(err)
		}
		expect(rid[0], 20)
	}
	if err := room.SetLayer(sub.id, "video", "x"); err == nil {
		t.Error("SetLayer to an unknown rid succeeded")
	}
	if sub.dropped.Load() != 0 {
		t.Errorf("test subscriber dropped %d packets", sub.dropped.Load())
	}

	// Automatic selection starts a subscriber on some layer, with a keyframe.
	auto, resp, body := startSubscriber(ctx, t, env, testStream, "")
	if auto == nil {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	defer auto.close()
	if p := next(ctx, t, auto.video); !p.info.keyStart {
		t.Errorf("auto subscriber's first packet is not a keyframe start")
	}
}
