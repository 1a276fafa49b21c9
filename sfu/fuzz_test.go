package sfu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// FuzzWHIPOffer posts arbitrary bodies to the WHIP handler: it must never
// panic and must answer 201 or a 4xx.
func FuzzWHIPOffer(f *testing.F) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	good := makeOffer(ctx, f, webrtc.RTPTransceiverDirectionSendonly, false)
	vp8 := makeOffer(ctx, f, webrtc.RTPTransceiverDirectionSendonly, true)
	cancel()
	f.Add(good)
	f.Add(vp8)
	f.Add("")
	f.Add("v=0\r\n")
	f.Add(good[:len(good)/2])
	f.Add(strings.Replace(good, "H264", "H265", -1))
	f.Add(strings.Replace(good, "m=audio", "m=video", 1))
	f.Add(strings.Replace(good, "packetization-mode=1", "packetization-mode=0", -1))

	s, err := NewServer(ServerParams{
		ICE:             LoopbackICE(time.Second),
		PublishAuth:     StreamKeys{"live": "k"},
		GatherTimeout:   2 * time.Second,
		ConnectTimeout:  5 * time.Second,
		RoomIdleTimeout: time.Second,
	})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/whip/live", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer k")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusCreated:
			loc := w.Header().Get("Location")
			if err := s.EndSession(loc[strings.LastIndex(loc, "/")+1:]); err != nil {
				t.Fatalf("ending session %s: %v", loc, err)
			}
		case w.Code >= 400 && w.Code < 500:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}

// FuzzTrickleFragment feeds arbitrary bodies to the trickle-ice-sdpfrag
// parser: it must not panic, and what it accepts must be well formed.
func FuzzTrickleFragment(f *testing.F) {
	f.Add([]byte("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\na=end-of-candidates\r\n"))
	f.Add([]byte("a=candidate:1 1 udp 1 127.0.0.1 1 typ host"))
	f.Add([]byte("m=\nm=\na=mid:\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		frag, err := parseTrickleFragment(body)
		if err != nil {
			if frag != nil {
				t.Fatal("fragment with error")
			}
			return
		}
		for _, c := range frag.Candidates {
			if !strings.HasPrefix(c.Candidate, "candidate:") || len(c.Candidate) <= len("candidate:") {
				t.Fatalf("bad candidate %q", c.Candidate)
			}
		}
	})
}

// FuzzWHEPOffer posts arbitrary bodies to the WHEP handler of a live stream:
// it must never panic and must answer 201 or a 4xx.
func FuzzWHEPOffer(f *testing.F) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	good := makeOffer(ctx, f, webrtc.RTPTransceiverDirectionRecvonly, false)
	f.Add(good)
	f.Add("")
	f.Add("v=0\r\n")
	f.Add(good[:len(good)/3])
	f.Add(strings.Replace(good, "recvonly", "sendonly", -1))
	f.Add(strings.Replace(good, "H264", "VP9", -1))

	env := newTestEnv(f, func(p *ServerParams) {
		p.GatherTimeout, p.ConnectTimeout = 2*time.Second, 5*time.Second
	})
	pub, resp, body := startPublisher(ctx, f, env, testStream, testKey, pubOptions{})
	cancel()
	if resp.StatusCode != http.StatusCreated {
		f.Fatalf("publisher: %d %s", resp.StatusCode, body)
	}
	defer pub.close()
	h := env.s.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/whep/"+testStream, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/sdp")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if body == good && w.Code != http.StatusCreated {
			t.Fatalf("a valid offer for a live stream: %d %s", w.Code, w.Body.String())
		}
		switch {
		case w.Code == http.StatusCreated:
			loc := w.Header().Get("Location")
			if err := env.s.EndSession(loc[strings.LastIndex(loc, "/")+1:]); err != nil {
				t.Fatalf("ending session %s: %v", loc, err)
			}
		case w.Code >= 400 && w.Code < 500:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}
