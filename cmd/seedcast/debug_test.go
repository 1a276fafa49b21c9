package main

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDebugAddrLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:6060": true, "[::1]:6060": true, "localhost:6060": true, "127.0.0.2:0": true,
		":6060": false, "0.0.0.0:6060": false, "[::]:6060": false, "192.0.2.1:6060": false,
		"example.com:6060": false, "6060": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
	log := slog.New(slog.DiscardHandler)
	d := debugFlags{addr: "0.0.0.0:0"}
	if _, err := d.start(log); !errors.Is(err, errDebugAddr) {
		t.Errorf("start on %s: %v, want errDebugAddr", d.addr, err)
	}
	for _, d := range []debugFlags{{}, {addr: "127.0.0.1:0"}, {addr: "0.0.0.0:0", allowRemote: true}} {
		stop, err := d.start(log)
		if err != nil {
			t.Fatalf("start %+v: %v", d, err)
		}
		stop()
	}
}

// TestDebugHandler: the pprof listener serves the profiles the soak
// (scripts/soak-idle-heap) reads.
func TestDebugHandler(t *testing.T) {
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/heap?gc=1&debug=1": "# HeapAlloc = ",
		"/debug/pprof/goroutine?debug=1": "goroutine profile: total ",
	} {
		rec := httptest.NewRecorder()
		debugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d %.80q", path, rec.Code, rec.Body.String())
		}
	}
}
