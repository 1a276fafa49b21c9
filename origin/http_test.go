package origin

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSlowBodyCut: a client that trickles a request body, one byte at a
// time, is cut off within the body timeout, on a route that reads the body
// and on one that answers without reading it; a prompt body still works.
func TestSlowBodyCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	mux := http.NewServeMux()
	mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(io.LimitReader(r.Body, 1<<20)); err != nil {
			http.Error(w, "slow body", http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /deny", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := newHTTPServer(mux, slog.New(slog.DiscardHandler), timeout)
	served := make(chan struct{})
	go func() { defer close(served); _ = hs.Serve(ln) }()
	defer func() { _ = hs.Close(); <-served }()

	for _, path := range []string{"/read", "/deny"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			// Trickle one byte every 20 ms; read what comes back meanwhile.
			closed := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, c)
				closed <- err
			}()
			start := time.Now()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-closed:
					if el := time.Since(start); el > 3*timeout {
						t.Errorf("cut after %v, want within about %v", el, timeout)
					}
					return
				case <-tick.C:
					if time.Since(start) > 10*timeout {
						t.Fatalf("the slow body is still being read after %v", time.Since(start))
					}
					if _, err := c.Write([]byte{'a'}); err != nil && !errors.Is(err, net.ErrClosed) {
						// The server closed its end: the read side says so next.
						continue
					}
				}
			}
		})
	}

	// A prompt body is read as before.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("prompt body: %s", resp.Status)
	}
}

// TestSlowReadCut: a client that asks for a large response and does not
// read it is cut off at the route's write deadline, so it cannot hold a
// connection and its buffers for ever.
func TestSlowReadCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	writeTimeouts["big"] = timeout // read by Handle when it wraps the route
	defer delete(writeTimeouts, "big")
	s := New(Params{Logger: slog.New(slog.DiscardHandler)})
	big := bytes.Repeat([]byte("x"), 64<<20) // far more than the socket buffers hold
	type result struct {
		took time.Duration
		err  error
	}
	wrote := make(chan result, 1)
	s.Handle("GET /big", "big", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, err := w.Write(big)
		wrote <- result{time.Since(start), err}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(s.Handler(), slog.New(slog.DiscardHandler))
	served := make(chan struct{})
	go func() { defer close(served); _ = hs.Serve(ln) }()
	defer func() { _ = hs.Close(); <-served }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing.
	select {
	case r := <-wrote:
		if r.err == nil || r.took > 5*timeout {
			t.Errorf("the response write ended after %v with %v; want a timeout within about %v", r.took, r.err, timeout)
		}
	case <-time.After(20 * timeout):
		t.Fatal("the server still writes to a client that reads nothing")
	}
}
