package sfu

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	dto "github.com/prometheus/client_model/go"
)

// blackholeConn is a UDP socket that can be made to vanish: once dead, it
// drops everything in both directions without telling anyone, like a
// publisher whose network went away.
type blackholeConn struct {
	net.PacketConn
	dead atomic.Bool
}

func (c *blackholeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.dead.Load() {
			return n, a, err
		}
	}
}

func (c *blackholeConn) WriteTo(b []byte, a net.Addr) (int, error) {
	if c.dead.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, a)
}

// TestPublisherReconnect: a publisher that vanishes without DELETE frees
// the stream after the ICE timeout, one that closes its peer connection
// frees it at once, and a subscriber watching throughout sees one
// continuous stream across the three publisher sessions.
func TestPublisherReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	env := newTestEnv(t, func(p *ServerParams) { p.ICE = LoopbackICE(time.Second) })

	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	conn := &blackholeConn{PacketConn: udp}
	defer conn.Close()

	pub1, resp, body := startPublisher(ctx, t, env, testStream, testKey, pubOptions{mux: conn})
	if pub1 == nil {
		t.Fatalf("WHIP: %d %s", resp.StatusCode, body)
	}
	defer pub1.close()
	room, _ := env.s.Room(testStream)
	tap := newRecordingTap()
	defer room.AddTap(tap)()

	sub, resp, body := startSubscriber(ctx, t, env, testStream, "")
	if sub == nil {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	defer sub.close()

	// follow reads n frames' worth of video packets from the subscriber,
	// checking continuity, and returns the last one.
	var prev rxPacket
	havePrev := false
	// newSince is when the newest publisher started: packets its
	// predecessor sent before that may still be on their way to the
	// subscriber (a drained channel does not mean a drained pipeline), and
	// do not count as the new publisher's first.
	var newSince time.Time
	follow := func(n int, wantKey bool) {
		t.Helper()
		for i := 0; i < n; i++ {
			p := next(ctx, t, sub.video)
			if i == 0 && wantKey && p.info.sent.Before(newSince) {
				i-- // a straggler from the previous publisher
				if havePrev && p.seq != prev.seq+1 {
					t.Fatalf("seq %d after %d", p.seq, prev.seq)
				}
				prev, havePrev = p, true
				continue
			}
			if havePrev {
				if p.seq != prev.seq+1 {
					t.Fatalf("seq %d after %d", p.seq, prev.seq)
				}
				if d := p.ts - prev.ts; d > 1<<31 {
					t.Fatalf("timestamp went back: %d after %d", p.ts, prev.ts)
				}
			}
			if i == 0 && wantKey {
				if !p.info.keyStart {
					t.Fatalf("first packet from a new publisher is not a keyframe start")
				}
				if havePrev && p.ts == prev.ts {
					t.Fatalf("timestamp did not advance across the reconnect")
				}
			}
			prev, havePrev = p, true
		}
	}
	follow(30, true)

	// The publisher's network vanishes.
	vanished := time.Now()
	conn.dead.Store(true)
	tap.waitUntil(ctx, t, "publisher left after ICE timeout", func() bool {
		return len(tap.events) > 0 && !tap.events[len(tap.events)-1].Joined
	})
	t.Logf("vanished publisher freed the stream after %v", time.Since(vanished).Round(10*time.Millisecond))
	if room.Live() {
		t.Fatal("room live after its publisher left")
	}
	for len(sub.video) > 0 { // packets forwarded before the loss
		follow(1, false)
	}

	newSince = time.Now()
	pub2, resp, body := startPublisher(ctx, t, env, testStream, testKey, pubOptions{})
	if pub2 == nil {
		t.Fatalf("WHIP after vanish: %d %s", resp.StatusCode, body)
	}
	follow(30, true)

	// The second publisher closes its peer connection without DELETE.
	pub2.close()
	tap.waitUntil(ctx, t, "second publisher left", func() bool {
		left := 0
		for _, ev := range tap.events {
			if !ev.Joined {
				left++
			}
		}
		return left == 2 && !tap.events[len(tap.events)-1].Joined
	})
	for len(sub.video) > 0 {
		follow(1, false)
	}
	newSince = time.Now()
	pub3, resp, body := startPublisher(ctx, t, env, testStream, testKey, pubOptions{})
	if pub3 == nil {
		t.Fatalf("WHIP after close: %d %s", resp.StatusCode, body)
	}
	defer pub3.close()
	follow(30, true)

	if resp, _ := env.do(ctx, http.MethodDelete, pub3.location, "", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
}

// TestPublisherReplacesStale: a valid-key WHIP session that never connects
// does not hold the stream: the real publisher coming right after it gets
// 201, not 409, and its media reaches a subscriber; while that publisher is
// connected, another valid-key POST gets 409.
func TestPublisherReplacesStale(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(t, nil)
	sendOffer := makeOffer(ctx, t, webrtc.RTPTransceiverDirectionSendonly, false)

	resp, body := env.post(ctx, "/whip/"+testStream, "application/sdp", testKey, sendOffer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("never-connecting WHIP: %d %s", resp.StatusCode, body)
	}
	stale := resp.Header.Get("Location")

	pub, resp, body := startPublisher(ctx, t, env, testStream, testKey, pubOptions{})
	if pub == nil {
		t.Fatalf("real publisher after a never-connected session: %d %s, want 201", resp.StatusCode, body)
	}
	defer pub.close()
	if resp, _ := env.do(ctx, http.MethodDelete, stale, "", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the replaced session still answers DELETE: %d", resp.StatusCode)
	}
	sub, resp, body := startSubscriber(ctx, t, env, testStream, "")
	if sub == nil {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	defer sub.close()
	next(ctx, t, sub.video) // the real publisher's media flows

	// The real publisher is connected: it is not replaced.
	resp, body = env.post(ctx, "/whip/"+testStream, "application/sdp", testKey, sendOffer)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("WHIP while a publisher is connected: %d %s, want 409", resp.StatusCode, body)
	}
	var m dto.Metric
	must(t, env.s.m.httpResponses.WithLabelValues("whip", "POST", "409").Write(&m))
	if m.GetCounter().GetValue() != 1 {
		t.Errorf("whip POST 409 counted %v times, want 1", m.GetCounter().GetValue())
	}
	next(ctx, t, sub.video) // and media still flows
}
