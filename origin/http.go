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
	IdleTimeout       = 2 * time.Minute
)

// NewHTTPServer returns an http.Server for h with the origin's limits: small
// headers, bounded header read time, no unbounded idle connections. Bodies are
// bounded by the handlers that read them.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
