package publish

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/seedcast/seedcast/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func loopback() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return se
}

// A refused offer (wrong key, busy stream) is reported with the server's
// status and reason, and nothing is left running.
func TestRejected(t *testing.T) {
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	var gotAuth, gotType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotType = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		http.Error(w, "wrong stream key", http.StatusUnauthorized)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = Run(ctx, Params{Endpoint: srv.URL + "/whip/live", Token: "k", Clip: clip, SettingEngine: loopback()})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "wrong stream key") {
		t.Errorf("err = %v", err)
	}
	if gotAuth != "Bearer k" || gotType != "application/sdp" {
		t.Errorf("request headers: Authorization %q, Content-Type %q", gotAuth, gotType)
	}
}

// An answer pion cannot use is reported, and the session it created on the
// server is deleted.
func TestBadAnswer(t *testing.T) {
	clip, _ := media.DemoClip()
	deleted := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deleted <- struct{}{}
			return
		}
		w.Header().Set("Location", "/whip/live/session")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("v=0\r\n")) // not an answer pion can use
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := Run(ctx, Params{Endpoint: srv.URL + "/whip/live", Clip: clip, SettingEngine: loopback(), ConnectTimeout: 2 * time.Second})
	if !errors.Is(err, ErrRejected) {
		t.Errorf("err = %v", err)
	}
	select {
	case <-deleted:
	default:
		t.Error("session not deleted")
	}
}

func TestNoMedia(t *testing.T) {
	if err := Run(context.Background(), Params{Endpoint: "http://127.0.0.1:1/whip/x", Clip: &media.Clip{}}); err == nil {
		t.Error("empty clip accepted")
	}
}
