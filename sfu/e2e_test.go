package sfu

import (
	"context"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestBroadcastEndToEnd publishes H.264 and Opus over WHIP, plays them over
// WHEP and checks every frame arrives intact and in sequence; it reports the
// one-way latency through the SFU.
func TestBroadcastEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(t, nil)

	tap := newRecordingTap()
	pub, resp, body := startPublisher(ctx, t, env, testStream, testKey, pubOptions{})
	if pub == nil {
		t.Fatalf("WHIP: %d %s", resp.StatusCode, body)
	}
	defer pub.close()
	room, ok := env.s.Room(testStream)
	if !ok {
		t.Fatal("no room after WHIP")
	}
	defer room.AddTap(tap)()

	sub, resp, body := startSubscriber(ctx, t, env, testStream, "")
	if sub == nil {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	defer sub.close()

	// Video: from the first (key)frame on, every frame complete and every
	// sequence number +1.
	const frames = 60
	var lat []time.Duration
	first := next(ctx, t, sub.video)
	if !first.info.keyStart {
		t.Fatalf("first video packet is not a keyframe start: nal %d", first.info.nalType)
	}
	prev := first
	frame, got := first.info.frame, 1
	completed := 0
	for completed < frames {
		p := next(ctx, t, sub.video)
		if p.seq != prev.seq+1 {
			t.Fatalf("video seq %d after %d", p.seq, prev.seq)
		}
		if p.ts < prev.ts && prev.ts-p.ts < 1<<31 {
			t.Fatalf("video timestamp went back: %d after %d", p.ts, prev.ts)
		}
		if p.info.frame != frame {
			if p.info.frame != frame+1 || got != int(prev.info.count) {
				t.Fatalf("frame %d incomplete (%d/%d packets) or skipped (next %d)", frame, got, prev.info.count, p.info.frame)
			}
			frame, got = p.info.frame, 0
			completed++
		}
		got++
		lat = append(lat, p.arrived.Sub(p.info.sent))
		prev = p
	}
	// Audio: continuous too.
	a := next(ctx, t, sub.audio)
	for i := 0; i < 50; i++ {
		b := next(ctx, t, sub.audio)
		if b.seq != a.seq+1 || b.info.frame != a.info.frame+1 {
			t.Fatalf("audio seq %d frame %d after seq %d frame %d", b.seq, b.info.frame, a.seq, a.info.frame)
		}
		lat = append(lat, b.arrived.Sub(b.info.sent))
		a = b
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("latency publisher→SFU→subscriber over %d packets: p50 %v, p95 %v, max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*95/100], lat[len(lat)-1])

	tap.waitUntil(ctx, t, "video and audio packets", func() bool {
		return tap.packets["video/"] > 100 && tap.packets["audio/"] > 50
	})
	if n := tap.badOrder.Load(); n != 0 {
		t.Errorf("%d tap packets before OnTrack", n)
	}

	// DELETE ends the broadcast.
	resp, _ = env.do(ctx, http.MethodDelete, pub.location, "", "", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	tap.waitUntil(ctx, t, "publisher left", func() bool {
		return len(tap.events) > 0 && !tap.events[len(tap.events)-1].Joined &&
			tap.ended["video/"] == 1 && tap.ended["audio/"] == 1
	})
	if room.Live() {
		t.Error("room still live after DELETE")
	}
	if resp, _ := env.post(ctx, "/whep/"+testStream, "application/sdp", "", makeOffer(ctx, t, webrtc.RTPTransceiverDirectionRecvonly, false)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("WHEP after DELETE: %d, want 404", resp.StatusCode)
	}
}
