package sfu

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/media"
)

const testCall = "CALLROOMTESTAAAAAAAAAAAAAA"

// callSub is a pion client's subscribe connection: it answers the
// server's offers and counts what it receives by track id and layer.
type callSub struct {
	t    testing.TB
	p    *Participant
	pc   *webrtc.PeerConnection
	errs chan error

	mu      sync.Mutex
	packets map[string]map[byte]int // track id → layer byte ('q', 'h', 'f', 'a') → packets
	offers  int
	lastSDP string
	ended   map[string]bool // track ids whose remote track ended
}

func newCallSub(t testing.TB) *callSub {
	t.Helper()
	pc, err := clientAPI(t, nil, false).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	c := &callSub{t: t, pc: pc, errs: make(chan error, 16), packets: map[string]map[byte]int{}, ended: map[string]bool{}}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		id := tr.StreamID()
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				c.mu.Lock()
				c.ended[id] = true
				c.mu.Unlock()
				return
			}
			info, err := parsePayload(pkt.Payload, video)
			if err != nil {
				continue
			}
			c.mu.Lock()
			if c.packets[id] == nil {
				c.packets[id] = map[byte]int{}
			}
			c.packets[id][info.layer]++
			c.mu.Unlock()
		}
	})
	t.Cleanup(func() { _ = pc.Close() })
	return c
}

// onOffer answers an offer of the server; it is the participant's OnOffer.
func (c *callSub) onOffer(sdp string) {
	go func() {
		if err := c.answer(sdp); err != nil {
			c.errs <- err
		}
	}()
}

func (c *callSub) answer(sdp string) error {
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return err
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	g := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(ans); err != nil {
		return err
	}
	<-g
	c.mu.Lock()
	c.offers++
	c.lastSDP = sdp
	c.mu.Unlock()
	return c.p.SubscribeAnswer(c.pc.LocalDescription().SDP)
}

func (c *callSub) count(id string, layer byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets[id][layer]
}

func (c *callSub) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.packets = map[string]map[byte]int{}
}

// waitFor polls cond every 20 ms until it holds or ctx ends.
func waitFor(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tk.C:
		}
	}
}

// joinPublisher joins a participant that publishes simulcast video (q, h,
// f) and audio with the test publisher.
func joinPublisher(ctx context.Context, t testing.TB, env *testEnv, id string, o pubOptions) (*Participant, *testPublisher, PublishResult) {
	t.Helper()
	p, err := env.s.Join(ParticipantParams{Room: testCall, ID: id})
	must(t, err)
	t.Cleanup(p.Close)
	var res PublishResult
	o.exchange = func(offer string) (string, error) {
		r, err := p.PublishOffer(ctx, offer)
		res = r
		return r.Answer, err
	}
	pub, _, body := startPublisher(ctx, t, env, "", "", o)
	if pub == nil {
		t.Fatalf("publish: %s", body)
	}
	t.Cleanup(pub.close)
	return p, pub, res
}

func TestCallParticipants(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	env := newTestEnv(t, nil)

	a, pubA, res := joinPublisher(ctx, t, env, "alice", pubOptions{rids: []string{"q", "h", "f"}})
	if len(res.Added) != 2 || len(res.Removed) != 0 {
		t.Fatalf("publish added %v removed %v, want a video and an audio track", res.Added, res.Removed)
	}
	var video, audio string
	for _, tr := range res.Added {
		if !strings.HasPrefix(tr.ID, "alice-") {
			t.Errorf("track id %q does not name its participant", tr.ID)
		}
		if tr.Kind == media.KindVideo {
			video = tr.ID
		} else {
			audio = tr.ID
		}
	}
	var demandMu sync.Mutex
	demand := map[string]Quality{}
	a.Room().OnLayerDemand(func(id string, q Quality) {
		demandMu.Lock()
		demand[id] = q
		demandMu.Unlock()
	})
	demandOf := func(id string) Quality {
		demandMu.Lock()
		defer demandMu.Unlock()
		return demand[id]
	}

	waitFor(ctx, t, "three layers", func() bool { return len(a.Room().Tracks()) == 4 })
	sub := newCallSub(t)
	b, err := env.s.Join(ParticipantParams{Room: testCall, ID: "bob", OnOffer: sub.onOffer})
	must(t, err)
	defer b.Close()
	sub.p = b
	if err := b.Subscribe(video, QualityLow); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(audio, QualityLow); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe("bob-0", QualityLow); err == nil {
		t.Error("subscribing to an unknown track succeeded")
	}
	if err := b.Subscribe(video, QualityLow); err != nil { // again: no change
		t.Fatal(err)
	}
	if err := a.Subscribe(video, QualityLow); err == nil {
		t.Error("a participant subscribed to its own track")
	}

	// Low quality: only layer q, and audio.
	waitFor(ctx, t, "layer q and audio", func() bool { return sub.count(video, 'q') > 30 && sub.count(audio, 'a') > 20 })
	if n := sub.count(video, 'f'); n != 0 {
		t.Errorf("got %d packets of layer f at low quality", n)
	}
	// A tile as large as the full layer: f within a few seconds, and
	// the publisher is asked for it.
	must(t, b.SetQuality(video, QualityHigh))
	sub.reset()
	waitFor(ctx, t, "layer f", func() bool { return sub.count(video, 'f') > 30 })
	waitFor(ctx, t, "demand for f", func() bool { return demandOf(video) == QualityHigh })
	if est := b.Estimate(); est <= 0 {
		t.Errorf("no bandwidth estimate: %d", est)
	}
	// Small again: back to q, and f is no longer in demand.
	must(t, b.SetQuality(video, QualityLow))
	waitFor(ctx, t, "demand back to q", func() bool { return demandOf(video) == QualityLow })
	sub.reset()
	waitFor(ctx, t, "layer q again", func() bool { return sub.count(video, 'q') > 30 })
	if n := sub.count(video, 'f'); n > 0 {
		t.Errorf("%d packets of layer f after the switch down", n)
	}
	// Hidden: no video at all, audio goes on.
	must(t, b.SetQuality(video, QualityOff))
	time.Sleep(200 * time.Millisecond) // let packets in flight land
	sub.reset()
	waitFor(ctx, t, "audio while the video is off", func() bool { return sub.count(audio, 'a') > 25 })
	if n := sub.count(video, 'q') + sub.count(video, 'h') + sub.count(video, 'f'); n > 0 {
		t.Errorf("%d video packets while the tile is hidden", n)
	}
	must(t, b.SetQuality(video, QualityLow))

	// The subscriber's ICE restarts and media carries on.
	before := sub.pc.RemoteDescription().SDP
	b.RestartICE()
	waitFor(ctx, t, "an ICE restart offer", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return sub.lastSDP != "" && ufragOf(t, sub.lastSDP) != ufragOf(t, before)
	})
	sub.reset()
	waitFor(ctx, t, "media after the ICE restart", func() bool { return sub.count(video, 'q') > 30 })

	// Alice stops her camera: the track ends for Bob, who renegotiates.
	var videoSender *webrtc.RTPSender
	for _, tr := range pubA.pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			videoSender = tr.Sender()
		}
	}
	must(t, pubA.pc.RemoveTrack(videoSender))
	offer := offerFor(ctx, t, pubA.pc)
	res2, err := a.PublishOffer(ctx, offer)
	must(t, err)
	must(t, pubA.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: res2.Answer}))
	if len(res2.Removed) != 1 || res2.Removed[0] != video || len(res2.Added) != 0 {
		t.Fatalf("unpublish: added %v removed %v, want removed [%s]", res2.Added, res2.Removed, video)
	}
	waitFor(ctx, t, "bob's subscription to end", func() bool {
		s := b.Subscriptions()
		return len(s) == 1 && s[0] == audio
	})
	if err := b.Subscribe(video, QualityLow); err == nil {
		t.Error("subscribed to an unpublished track")
	}
	// Alice leaves: her audio ends for Bob too.
	a.Close()
	waitFor(ctx, t, "bob's subscriptions to end", func() bool { return len(b.Subscriptions()) == 0 })
	select {
	case err := <-sub.errs:
		t.Fatalf("subscriber: %v", err)
	default:
	}
}

func TestCallDominantSpeaker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(t, nil)
	quiet, loud := &atomic.Int32{}, &atomic.Int32{}
	quiet.Store(120)
	loud.Store(120)
	a, _, _ := joinPublisher(ctx, t, env, "ann", pubOptions{level: quiet})
	_, _, _ = joinPublisher(ctx, t, env, "ben", pubOptions{level: loud})
	var mu sync.Mutex
	var got []string
	a.Room().OnDominantSpeaker(func(id string) {
		mu.Lock()
		got = append(got, id)
		mu.Unlock()
	})
	loud.Store(20)
	waitFor(ctx, t, "ben dominant", func() bool { return a.Room().DominantSpeaker() == "ben" })
	levels, th := a.Room().SpeakerLevels()
	if levels["ben"] <= th || levels["ann"] >= th {
		t.Errorf("levels %v (threshold %v): want ben speaking and ann not", levels, th)
	}
	loud.Store(120)
	quiet.Store(20)
	waitFor(ctx, t, "ann dominant", func() bool { return a.Room().DominantSpeaker() == "ann" })
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 2 || got[0] != "ben" || got[len(got)-1] != "ann" {
		t.Errorf("speaker events %v, want ben then ann", got)
	}
}

func TestCallRoomsRefuseWHIPAndWHEP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := newTestEnv(t, func(p *ServerParams) {
		p.PublishAuth = StreamKeys{testCall: "k"}
	})
	joinPublisher(ctx, t, env, "ann", pubOptions{})
	if _, resp, _ := startSubscriber(ctx, t, env, testCall, ""); resp.StatusCode != 404 {
		t.Errorf("WHEP on a call: %d, want 404", resp.StatusCode)
	}
	if _, resp, _ := startPublisher(ctx, t, env, testCall, "k", pubOptions{}); resp.StatusCode != 409 {
		t.Errorf("WHIP into a call: %d, want 409", resp.StatusCode)
	}
}

func TestAllocate(t *testing.T) {
	rates := []uint64{150_000, 500_000, 1_500_000}
	for _, tc := range []struct {
		name   string
		budget uint64
		ts     []allocTrack
		want   []int
	}{
		{"one track, plenty", 5_000_000, []allocTrack{{rates, QualityHigh, -1}}, []int{2}},
		{"tile caps it", 5_000_000, []allocTrack{{rates, QualityMedium, -1}}, []int{1}},
		{"hidden", 5_000_000, []allocTrack{{rates, QualityOff, 2}}, []int{-1}},
		{"lowest even past the budget", 100_000, []allocTrack{{rates, QualityHigh, -1}, {rates, QualityHigh, -1}}, []int{0, 0}},
		{"largest tile first", 2_000_000, []allocTrack{{rates, QualityMedium, -1}, {rates, QualityHigh, -1}}, []int{0, 2}},
		{"both fit", 2_600_000, []allocTrack{{rates, QualityMedium, -1}, {rates, QualityHigh, -1}}, []int{1, 2}},
		// Raising to f needs 1.35 M × 1.2 = 1.62 M; keeping it needs 1.35 M.
		{"no rise without headroom", 1_700_000, []allocTrack{{rates, QualityHigh, 0}}, []int{1}},
		{"keeps a layer it has at the line", 1_500_000, []allocTrack{{rates, QualityHigh, 2}}, []int{2}},
		{"one layer", 1_000_000, []allocTrack{{[]uint64{800_000}, QualityHigh, -1}}, []int{0}},
		{"three medium tiles share", 1_400_000, []allocTrack{{rates, QualityHigh, -1}, {rates, QualityHigh, -1}, {rates, QualityHigh, -1}}, []int{1, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := allocate(tc.budget, tc.ts, LayerPolicy{})
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("allocate = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestQualityFor(t *testing.T) {
	for _, tc := range []struct {
		tile, full int
		want       Quality
	}{
		{0, 720, QualityOff},
		{100, 720, QualityLow}, // q is 180 high
		{190, 720, QualityLow}, // 180 ≥ 0.9 × 190
		{300, 720, QualityMedium},
		{360, 720, QualityMedium},
		{500, 720, QualityHigh},
		{1080, 720, QualityHigh},
		{300, 0, QualityHigh}, // unknown size: the best there is
	} {
		if got := QualityFor(tc.tile, tc.full); got != tc.want {
			t.Errorf("QualityFor(%d, %d) = %v, want %v", tc.tile, tc.full, got, tc.want)
		}
	}
}

func TestHoldLayer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sb := &subscribed{want: QualityHigh, last: -2}
	steps := []struct {
		at   time.Duration
		want Quality
		next int
		got  int
	}{
		{0, QualityHigh, 2, 2},                       // first choice: taken
		{500 * time.Millisecond, QualityHigh, 0, 2},  // the estimate dips: held for dropHold
		{1200 * time.Millisecond, QualityHigh, 0, 0}, // still low after 1 s: dropped
		{2 * time.Second, QualityHigh, 2, 0},         // back up: held for riseHold
		{4300 * time.Millisecond, QualityHigh, 2, 2}, // 3 s after the drop: risen
		{4400 * time.Millisecond, QualityLow, 0, 0},  // the tile shrank: at once
		{4500 * time.Millisecond, QualityHigh, 2, 2}, // and grew: at once
	}
	for i, st := range steps {
		sb.want = st.want
		if got := holdLayer(sb, st.next, callRIDs[:], t0.Add(st.at)); got != st.got {
			t.Fatalf("step %d (%v): holdLayer = %d, want %d", i, st.at, got, st.got)
		}
	}
}

func TestAllocateProbing(t *testing.T) {
	rates := []uint64{150_000, 500_000, 1_500_000}
	low := []allocTrack{{rates, QualityHigh, 1}, {rates, QualityMedium, 0}}
	// The estimate covers only q+q: without congestion the first track
	// keeps h, and a probe raises the track wanting most first.
	out, probed := allocateProbing(300_000, low, LayerPolicy{}, false, true)
	if out[0] != 2 || out[1] != 0 || probed != 0 {
		t.Fatalf("probing: %v (probed %d), want [2 0] probing track 0", out, probed)
	}
	out, probed = allocateProbing(300_000, low, LayerPolicy{}, false, false)
	if out[0] != 1 || out[1] != 0 || probed != -1 {
		t.Fatalf("holding: %v (probed %d), want [1 0]", out, probed)
	}
	// Congested: the estimate rules, and no probe.
	out, probed = allocateProbing(300_000, low, LayerPolicy{}, true, true)
	if out[0] != 0 || out[1] != 0 || probed != -1 {
		t.Fatalf("congested: %v (probed %d), want [0 0]", out, probed)
	}
	// A shrunk tile drops at once, congestion or not.
	shrunk := []allocTrack{{rates, QualityLow, 2}}
	if out, _ := allocateProbing(5_000_000, shrunk, LayerPolicy{}, false, true); out[0] != 0 {
		t.Fatalf("shrunk tile: %v, want [0]", out)
	}
	if !congestedBWE(map[string]any{"usage": "overuse"}) || !congestedBWE(map[string]any{"averageLoss": 0.2}) ||
		congestedBWE(map[string]any{"usage": "normal", "state": "increase", "averageLoss": 0.01}) {
		t.Fatal("congestedBWE misreads GCC's state")
	}
}
