package sfu

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	dto "github.com/prometheus/client_model/go"
)

func TestHTTPPaths(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(t, func(p *ServerParams) {
		p.ICEServers = []webrtc.ICEServer{{URLs: []string{"stun:stun.example.net:3478"}}}
	})
	sendOffer := makeOffer(ctx, t, webrtc.RTPTransceiverDirectionSendonly, false)
	vp8Offer := makeOffer(ctx, t, webrtc.RTPTransceiverDirectionSendonly, true)
	recvOffer := makeOffer(ctx, t, webrtc.RTPTransceiverDirectionRecvonly, false)
	const sdpType = "application/sdp"

	t.Run("preflight", func(t *testing.T) {
		for _, path := range []string{"/whip/live", "/whep/live", "/whip/live/x", "/whep/live/x"} {
			resp, _ := env.do(ctx, http.MethodOptions, path, "", "", "", map[string]string{
				"Origin": "https://player.example", "Access-Control-Request-Method": "POST",
			})
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("%s: %d, allow-origin %q", path, resp.StatusCode, h.Get("Access-Control-Allow-Origin"))
			}
			for _, want := range []string{"Authorization", "Content-Type", "If-Match"} {
				if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
					t.Errorf("%s: Allow-Headers %q lacks %s", path, h.Get("Access-Control-Allow-Headers"), want)
				}
			}
			for _, want := range []string{"Location", "Link", "ETag"} {
				if !strings.Contains(h.Get("Access-Control-Expose-Headers"), want) {
					t.Errorf("%s: Expose-Headers %q lacks %s", path, h.Get("Access-Control-Expose-Headers"), want)
				}
			}
		}
	})

	cases := []struct {
		name         string
		method, path string
		ctype, token string
		body         string
		want         int
		wantBody     string
	}{
		{"no key", "POST", "/whip/live", sdpType, "", sendOffer, 401, ""},
		{"wrong key", "POST", "/whip/live", sdpType, "nope", sendOffer, 401, ""},
		{"other stream's key", "POST", "/whip/live", sdpType, "other-key", sendOffer, 401, ""},
		{"unknown stream", "POST", "/whip/nokey", sdpType, testKey, sendOffer, 401, ""},
		{"wrong content type", "POST", "/whip/live", "text/plain", testKey, sendOffer, 415, ""},
		{"no content type", "POST", "/whip/live", "", testKey, sendOffer, 415, ""},
		{"oversized", "POST", "/whip/live", sdpType, testKey, strings.Repeat("a=x\r\n", 20000), 413, ""},
		{"garbage", "POST", "/whip/live", sdpType, testKey, "hello, world", 400, "SDP"},
		{"empty", "POST", "/whip/live", sdpType, testKey, "", 400, "empty"},
		{"vp8 only", "POST", "/whip/live", sdpType, testKey, vp8Offer, 400, "H.264"},
		{"whep no stream", "POST", "/whep/live", sdpType, "", recvOffer, 404, ""},
		{"whep bad name", "POST", "/whep/a%20b", sdpType, "", recvOffer, 404, ""},
		{"get", "GET", "/whip/live", "", "", "", 405, ""},
		{"put session", "PUT", "/whip/live/abc", "", "", "", 405, ""},
		{"delete unknown", "DELETE", "/whip/live/abc", "", "", "", 404, ""},
		{"patch unknown", "PATCH", "/whep/live/abc", "application/trickle-ice-sdpfrag", "", "a=end-of-candidates\r\n", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := env.do(ctx, c.method, c.path, c.ctype, c.token, c.body, nil)
			if resp.StatusCode != c.want {
				t.Fatalf("%s %s: %d %q, want %d", c.method, c.path, resp.StatusCode, body, c.want)
			}
			if c.wantBody != "" && !strings.Contains(body, c.wantBody) {
				t.Errorf("body %q lacks %q", body, c.wantBody)
			}
			if c.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header on error")
			}
		})
	}

	// A publisher that does not connect.
	resp, answer := env.post(ctx, "/whip/live", sdpType, testKey, sendOffer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP: %d %s", resp.StatusCode, answer)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/whip/live/") || len(loc) < len("/whip/live/")+20 {
		t.Errorf("Location %q", loc)
	}
	if resp.Header.Get("Content-Type") != sdpType || !strings.Contains(answer, "a=candidate") {
		t.Errorf("answer %q (%s) has no candidates", answer, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(answer, "H264") || strings.Contains(answer, "VP8") {
		t.Errorf("answer codecs: %s", answer)
	}
	if l := resp.Header.Get("Link"); l != `<stun:stun.example.net:3478>; rel="ice-server"` {
		t.Errorf("Link %q", l)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Error("no ETag")
	}

	// A second valid-key publisher replaces the first, which never
	// connected (issue 10, defect 6: it used to get 409 for ~15 s).
	first := loc
	resp, body := env.post(ctx, "/whip/live", sdpType, testKey, sendOffer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("second publisher: %d %s, want 201 (the first never connected)", resp.StatusCode, body)
	}
	loc, etag = resp.Header.Get("Location"), resp.Header.Get("ETag")
	if resp, _ := env.do(ctx, http.MethodDelete, first, "", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE of the replaced session: %d, want 404", resp.StatusCode)
	}

	const fragType = "application/trickle-ice-sdpfrag"
	frag := "a=ice-ufrag:" + ufragOf(t, sendOffer) + "\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"
	patches := []struct {
		name  string
		ctype string
		hdr   map[string]string
		body  string
		want  int
	}{
		{"trickle", fragType, map[string]string{"If-Match": etag}, frag, 204},
		{"trickle no etag", fragType, nil, frag, 204},
		{"wrong etag", fragType, map[string]string{"If-Match": `"nope"`}, frag, 412},
		{"wrong type", sdpType, nil, frag, 415},
		{"garbage", fragType, nil, "hello\r\n", 400},
		{"bad candidate", fragType, nil, "a=mid:0\r\na=candidate:garbage\r\n", 400},
		{"ice restart", fragType, nil, "a=ice-ufrag:other\r\na=ice-pwd:otherpasswordotherpassword\r\n", 501},
	}
	for _, c := range patches {
		t.Run("patch "+c.name, func(t *testing.T) {
			resp, body := env.do(ctx, http.MethodPatch, loc, c.ctype, "", c.body, c.hdr)
			if resp.StatusCode != c.want {
				t.Errorf("PATCH: %d %q, want %d", resp.StatusCode, body, c.want)
			}
		})
	}

	resp, body = env.post(ctx, "/whep/live", sdpType, "", "garbage")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("WHEP garbage: %d %s", resp.StatusCode, body)
	}
	resp, body = env.post(ctx, "/whep/live", sdpType, "", recvOffer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	whepLoc := resp.Header.Get("Location")
	if !strings.HasPrefix(whepLoc, "/whep/live/") {
		t.Errorf("WHEP Location %q", whepLoc)
	}
	// A WHEP session is not a WHIP session.
	if resp, _ := env.do(ctx, http.MethodDelete, strings.Replace(whepLoc, "whep", "whip", 1), "", "", "", nil); resp.StatusCode != 404 {
		t.Errorf("DELETE WHEP session on WHIP path: %d", resp.StatusCode)
	}

	if resp, _ := env.do(ctx, http.MethodDelete, loc, "", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
	if resp, _ := env.do(ctx, http.MethodDelete, loc, "", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %d", resp.StatusCode)
	}
	// The stream is free again.
	resp, body = env.post(ctx, "/whip/live", sdpType, testKey, sendOffer)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("WHIP after DELETE: %d %s", resp.StatusCode, body)
	}
	if resp, _ := env.do(ctx, http.MethodDelete, whepLoc, "", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE WHEP: %d", resp.StatusCode)
	}

	for _, code := range []string{"401", "413", "415", "400", "201"} {
		var m dto.Metric
		must(t, env.s.m.httpResponses.WithLabelValues("whip", "POST", code).Write(&m))
		if m.GetCounter().GetValue() == 0 {
			t.Errorf("no whip POST %s counted", code)
		}
	}
}

func ufragOf(t *testing.T, offer string) string {
	t.Helper()
	for _, l := range strings.Split(offer, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=ice-ufrag:"); ok {
			return v
		}
	}
	t.Fatal("offer without ufrag")
	return ""
}
