package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// errDebugAddr is returned for a --debug-addr that is not on loopback
// without --debug-allow-remote.
var errDebugAddr = errors.New("--debug-addr is not a loopback address (pprof exposes the process's memory and can run CPU profiles; add --debug-allow-remote to serve it anyway)")

// debugFlags configure the profiling listener of `seedcast serve`.
type debugFlags struct {
	addr        string
	allowRemote bool
}

func (d *debugFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.addr, "debug-addr", "", "listen address of a separate net/http/pprof listener, e.g. 127.0.0.1:6060 (default: off; loopback only)")
	fs.BoolVar(&d.allowRemote, "debug-allow-remote", false, "allow a --debug-addr that is not on loopback (anyone who reaches it can read the process's memory)")
}

// loopbackAddr reports whether addr's host is a loopback IP or "localhost".
// An empty host (":6060") listens on every interface and is not loopback.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// debugHandler is net/http/pprof on a mux of its own, so that nothing it
// serves reaches the public listener (the package's init also registers on
// http.DefaultServeMux, which Seedcast never serves).
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// start serves pprof on d.addr until the returned stop is called. With no
// address it does nothing.
func (d *debugFlags) start(log *slog.Logger) (stop func(), err error) {
	if d.addr == "" {
		return func() {}, nil
	}
	if !d.allowRemote && !loopbackAddr(d.addr) {
		return nil, fmt.Errorf("%q: %w", d.addr, errDebugAddr)
	}
	ln, err := net.Listen("tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	hs := &http.Server{Handler: debugHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug listener", "err", err)
		}
	}()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { _ = hs.Close() }, nil
}
