package sfu

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestOfferLayers(t *testing.T) {
	on := func(rid string, rate uint64) layerState { return layerState{rid: rid, flowing: true, rate: rate} }
	off := func(rid string, rate uint64) layerState { return layerState{rid: rid, rate: rate} }
	for _, tc := range []struct {
		name      string
		ls        []layerState
		cur       string
		demand    Quality
		wantRIDs  []string
		wantRates []uint64
		wantCur   int
	}{
		{"all flowing", []layerState{on("f", 900), on("q", 100), on("h", 300)}, "h", QualityHigh,
			[]string{"q", "h", "f"}, []uint64{100, 300, 900}, 1},
		{"unmeasured: nominal", []layerState{on("q", 0), on("h", 0)}, "", QualityLow,
			[]string{"q", "h"}, []uint64{150_000, 500_000}, -1},
		// The browser dropped the layer forwarded now (it is in demand, so
		// dynacast did not pause it): not offered, so the subscriber moves
		// to one that flows instead of freezing on it.
		{"current layer dropped", []layerState{on("q", 100), on("h", 300), off("f", 900)}, "f", QualityHigh,
			[]string{"q", "h"}, []uint64{100, 300}, -1},
		{"a middle layer dropped", []layerState{on("q", 100), off("h", 300), on("f", 900)}, "f", QualityHigh,
			[]string{"q", "f"}, []uint64{100, 900}, 1},
		// Paused by dynacast (above the demand): offered with its rate, to
		// a subscriber that has a layer to keep meanwhile.
		{"paused above the demand", []layerState{on("q", 100), off("h", 300), off("f", 900)}, "q", QualityLow,
			[]string{"q", "h", "f"}, []uint64{100, 300, 900}, 0},
		// The current layer stopped and f is paused: start again on one
		// that flows, not on one that must first be resumed.
		{"current stopped, paused above", []layerState{on("q", 100), off("h", 300), off("f", 900)}, "h", QualityMedium,
			[]string{"q"}, []uint64{100}, -1},
		{"paused, nothing forwarded yet", []layerState{on("q", 100), off("h", 300)}, "", QualityLow,
			[]string{"q"}, []uint64{100}, -1},
		{"muted camera: all, free", []layerState{off("q", 100), off("h", 300)}, "h", QualityMedium,
			[]string{"q", "h"}, []uint64{0, 0}, 1},
		{"not call layers", []layerState{on("", 100)}, "", QualityLow, nil, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rids, rates, cur := offerLayers(tc.ls, tc.cur, tc.demand)
			if !slices.Equal(rids, tc.wantRIDs) || !slices.Equal(rates, tc.wantRates) || cur != tc.wantCur {
				t.Fatalf("offerLayers = %v %v %d, want %v %v %d", rids, rates, cur, tc.wantRIDs, tc.wantRates, tc.wantCur)
			}
		})
	}
}

// TestHoldLayerByRank: the hold names a layer, not an index into the
// layers offered now, which shift when the publisher drops or pauses one.
func TestHoldLayerByRank(t *testing.T) {
	t0 := time.Unix(1000, 0)
	all := []string{"q", "h", "f"}
	noH := []string{"q", "f"}
	noF := []string{"q", "h"}
	sb := &subscribed{want: QualityHigh, last: -2}
	steps := []struct {
		at   time.Duration
		rids []string
		next int
		got  int
	}{
		{0, all, 1, 1}, // h
		// h is dropped: the allocator offers q and f and picks f (index
		// 1, as h was). That is a rise to f, held for riseHold, but h is
		// gone: nothing to hold, f at once.
		{1 * time.Second, noH, 1, 1},
		// The estimate dips to q: held on f (index 1 of [q f]) for dropHold.
		{1500 * time.Millisecond, noH, 0, 1},
		// h is back and f is dropped; the allocator picks h (index 1):
		// the hold names f, which is gone, so h at once, not "index 1".
		{1700 * time.Millisecond, noF, 1, 1},
		// f is back, the allocator wants it at index 2: a rise, held on h
		// (index 1 now) for riseHold.
		{2 * time.Second, all, 2, 1},
		{4800 * time.Millisecond, all, 2, 2},
		// Held drop across a shift: on f (index 2 of all), h dropped and
		// the allocator picks q: f is still offered (index 1 of [q f]).
		{5 * time.Second, noH, 0, 1},
	}
	for i, st := range steps {
		if got := holdLayer(sb, st.next, st.rids, t0.Add(st.at)); got != st.got {
			t.Fatalf("step %d (%v, %v): holdLayer = %d, want %d", i, st.at, st.rids, got, st.got)
		}
	}
}

// TestCallLayerDropped: a subscriber is forwarded layer f when the
// publisher stops sending it (as a browser short of CPU or bandwidth
// drops its top layer), and the first keyframe request on the layer it
// moves to is lost. It must get video again, starting with a keyframe,
// within a bound, not freeze until the browser brings f back.
func TestCallLayerDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	env := newTestEnv(t, nil)

	_, pub, res := joinPublisher(ctx, t, env, "alice", pubOptions{rids: []string{"q", "h", "f"}, noAudio: true})
	video := res.Added[0].ID
	sub := newCallSub(t)
	b, err := env.s.Join(ParticipantParams{Room: testCall, ID: "bob", OnOffer: sub.onOffer})
	must(t, err)
	defer b.Close()
	sub.p = b
	must(t, b.Subscribe(video, QualityHigh))
	waitFor(ctx, t, "layer f", func() bool { return sub.count(video, 'f') > 30 })

	// f stops; the keyframe requests to h and q are lost once each.
	const bound = 4 * time.Second
	pub.lostPLIs[0].Store(1)
	pub.lostPLIs[1].Store(1)
	pub.paused[2].Store(true)
	stopped := time.Now()
	time.Sleep(100 * time.Millisecond) // packets of f in flight land
	sub.reset()
	bctx, bcancel := context.WithTimeout(ctx, bound)
	defer bcancel()
	ok := true
	func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for sub.count(video, 'h')+sub.count(video, 'q') < 10 {
			select {
			case <-bctx.Done():
				ok = false
				return
			case <-tk.C:
			}
		}
	}()
	if !ok {
		b.mu.Lock()
		d := b.subs[video].d
		b.mu.Unlock()
		cur, target := d.wanted()
		t.Fatalf("no video %v after layer f stopped (want ≤ %v); forwarding %v, waiting for %v", time.Since(stopped).Round(10*time.Millisecond), bound, rid(cur), rid(target))
	}
	t.Logf("video again %v after layer f stopped (h %d, q %d packets)", time.Since(stopped).Round(10*time.Millisecond), sub.count(video, 'h'), sub.count(video, 'q'))
	select {
	case err := <-sub.errs:
		t.Fatalf("subscriber: %v", err)
	default:
	}
}

func rid(l *layer) string {
	if l == nil {
		return "none"
	}
	return l.rid
}

func TestKeyframeAskDue(t *testing.T) {
	ms := int64(time.Millisecond)
	now := int64(1_000_000) * ms
	for _, tc := range []struct {
		name             string
		lastAsk, curLast int64
		want             bool
	}{
		{"old layer plays, asked 600 ms ago", now - 600*ms, now - 30*ms, false},
		{"old layer plays, asked 1 s ago", now - 1000*ms, now - 30*ms, true},
		{"nothing forwarded, asked 400 ms ago", now - 400*ms, 0, false},
		{"nothing forwarded, asked 500 ms ago", now - 500*ms, 0, true},
		{"old layer stopped 600 ms ago, asked 500 ms ago", now - 500*ms, now - 600*ms, true},
		{"old layer stopped 300 ms ago, asked 500 ms ago", now - 500*ms, now - 300*ms, false},
	} {
		if got := keyframeAskDue(now, tc.lastAsk, tc.curLast); got != tc.want {
			t.Errorf("%s: keyframeAskDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}
