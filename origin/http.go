package origin

import (
	"log/slog"
	"net/http"
	"time"
)

// Request limits of the origin's HTTP server.
const (
	MaxHeaderBytes    = 16 << 10
	ReadHeaderTimeout = 10 * time.Second
	// BodyTimeout bounds the time to read a request's body, from the end
	// of its headers: a client that trickles a body (a slow-body attack)
	// is cut off then, on every route, whether the handler reads the body
	// or answers without it.
	BodyTimeout = 10 * time.Second
	IdleTimeout = 2 * time.Minute
	// WriteTimeout bounds, per request, the time from the start of its
	// handler to the end of its response on every route but those in
	// writeTimeouts: a reader that takes longer (a slow-read client holding
	// a connection and a chunk buffer) is cut off. A 2 MB chunk at 1 Mbit/s
	// takes 16 s.
	WriteTimeout = 30 * time.Second
)

// NewHTTPServer returns an http.Server for h with the origin's limits: small
// headers, bounded header and body read times, no unbounded idle
// connections. Body sizes are bounded by the handlers that read them.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return newHTTPServer(h, log, BodyTimeout)
}

// writeTimeouts are the routes (Server.Handle's route names) whose write
// deadline is not WriteTimeout; 0 sets none. A blocking LL-HLS playlist
// reload may wait up to three part targets (≤ 1.5 s) before it writes;
// WHIP/WHEP answer after ICE gathering (≤ GatherTimeout, 5 s); the tracker's
// WebSocket is hijacked and the tracker keeps its own read and write
// deadlines.
var writeTimeouts = map[string]time.Duration{
	"tracker": 0,
	"whip":    20 * time.Second,
	"whep":    20 * time.Second,
}

func newHTTPServer(h http.Handler, log *slog.Logger, bodyTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           bodyDeadline(h, bodyTimeout),
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// bodyDeadline sets a read deadline on requests that carry a body. It is
// not a server-wide ReadTimeout, which would also cut the long-lived
// connections hijacked for WebSockets and the blocking playlist reloads;
// requests without a body keep no deadline past their headers. Write
// deadlines are set per route (WriteTimeout, writeTimeouts) by
// Server.Handle; the http.Server has no WriteTimeout, which would cut the
// hijacked WebSockets.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		h.ServeHTTP(w, r)
	})
}
