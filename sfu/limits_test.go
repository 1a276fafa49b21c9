package sfu

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/internal/connlimit"
)

// TestSessionCaps: WHEP offers that never connect are capped per address
// (429) and in total (503), each refusal with Retry-After and counted; a
// refused offer holds no peer connection; ending a session frees its place;
// pending sessions are reaped after ConnectTimeout.
func TestSessionCaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lim, err := connlimit.New(connlimit.Params{Total: 5, Pending: 4, PerAddr: 3, PendingPerAddr: 2})
	must(t, err)
	env := newTestEnv(t, func(p *ServerParams) {
		p.Limits = lim
		p.ConnectTimeout = 2 * time.Second
		// Tests pose as several clients with a header the test server trusts.
		p.ClientIP = func(r *http.Request) netip.Addr {
			a, _ := netip.ParseAddr(r.Header.Get("X-Test-Client"))
			return a
		}
	})
	pub, resp, body := startPublisher(ctx, t, env, testStream, testKey, pubOptions{})
	if pub == nil {
		t.Fatalf("WHIP: %d %s", resp.StatusCode, body)
	}
	defer pub.close()
	if all, pending := lim.Held(connlimit.KindWHIP); all != 1 {
		t.Fatalf("publisher leases %d (%d pending), want 1", all, pending)
	}
	recvOffer := makeOffer(ctx, t, webrtc.RTPTransceiverDirectionRecvonly, false)
	whep := func(client string) *http.Response {
		resp, body := env.do(ctx, http.MethodPost, "/whep/"+testStream, "application/sdp", "", recvOffer,
			map[string]string{"X-Test-Client": client})
		if resp.StatusCode != http.StatusCreated && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%d %q without Retry-After", resp.StatusCode, body)
		}
		return resp
	}
	codes := map[int]int{}
	var first string
	for range 20 {
		resp := whep("192.0.2.1")
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusCreated && first == "" {
			first = resp.Header.Get("Location")
		}
	}
	if codes[201] != 2 || codes[429] != 18 {
		t.Fatalf("one address, 20 never-connecting offers: %v, want 2×201 and 18×429", codes)
	}
	if all, pending := lim.Held(connlimit.KindWHEP); all != 2 || pending != 2 {
		t.Fatalf("WHEP leases %d/%d pending, want 2/2: refused offers must hold nothing", all, pending)
	}
	// Another address gets in until the process-wide cap (5, the publisher
	// among them; 4 pending) says 503.
	if c := whep("192.0.2.2").StatusCode; c != 201 {
		t.Fatalf("second address: %d, want 201", c)
	}
	if c := whep("192.0.2.3").StatusCode; c != 201 {
		t.Fatalf("third address: %d, want 201", c)
	}
	if c := whep("192.0.2.4").StatusCode; c != http.StatusServiceUnavailable {
		t.Fatalf("at the total cap: %d, want 503", c)
	}
	// DELETE gives a place back.
	if resp, _ := env.do(ctx, http.MethodDelete, first, "", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if c := whep("192.0.2.4").StatusCode; c != 201 {
		t.Fatalf("after a DELETE: %d, want 201", c)
	}
	if n := lim.Refused(connlimit.KindWHEP, "address_pending"); n != 18 {
		t.Errorf("refusals counted for address_pending: %d, want 18", n)
	}
	if n := lim.Refused(connlimit.KindWHEP, "total"); n != 1 {
		t.Errorf("refusals counted for total: %d, want 1", n)
	}
	// Nothing connects: ConnectTimeout reaps every pending session.
	deadline := time.Now().Add(15 * time.Second)
	for {
		all, _ := lim.Held(connlimit.KindWHEP)
		if all == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending WHEP sessions not reaped", all)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond): // polling a condition, not synchronising
		}
	}
	if st := lim.Stats(); st.Total != 1 || st.Pending != 0 {
		t.Fatalf("after reaping: %+v, want the publisher alone", st)
	}
}
