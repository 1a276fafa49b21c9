package main

import (
	"flag"
	"fmt"
	"log/slog"

	"github.com/seedcast/seedcast/internal/connlimit"
)

// limitFlags override the peer-connection caps sized from the fd limit.
type limitFlags struct {
	total, perIP, pending, perStream int
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&l.total, "max-peer-conns", 0, "WebRTC peer connections in all (WHIP, WHEP, seed links); 0: sized from the open-file limit")
	fs.IntVar(&l.pending, "max-pending-peer-conns", 0, "of those, not connected yet; 0: a quarter of --max-peer-conns")
	fs.IntVar(&l.perIP, "max-peer-conns-per-ip", 0, "peer connections one address (IPv6: /64) may hold; 0: an eighth of --max-peer-conns, 4–64")
	fs.IntVar(&l.perStream, "max-peer-conns-per-stream", 0, "peer connections one stream may hold; 0: three quarters of --max-peer-conns")
}

// limiter builds the process's peer-connection Limiter: caps sized from the
// open-file limit (Go raises the soft limit to the hard one at start), then
// the flags that are set.
func (l *limitFlags) limiter(log *slog.Logger) (*connlimit.Limiter, error) {
	nofile, ok := openFileLimit()
	p := connlimit.Sized(nofile)
	if !ok {
		p = connlimit.Sized(1024)
	}
	if l.total > 0 {
		p = connlimit.Sized(uint64(l.total)*connlimit.FDsPerConn + connlimit.ReservedFDs)
		p.Total = l.total
	}
	if l.pending > 0 {
		p.Pending = l.pending
	}
	if l.perIP > 0 {
		p.PerAddr = l.perIP
		p.PendingPerAddr = max(l.perIP/4, min(2, l.perIP))
	}
	if l.perStream > 0 {
		p.PerStream = l.perStream
	}
	lim, err := connlimit.New(p)
	if err != nil {
		return nil, fmt.Errorf("peer-connection caps: %w", err)
	}
	if uint64(p.Total)*connlimit.FDsPerConn+connlimit.ReservedFDs > nofile && ok {
		log.Warn("peer-connection cap needs more file descriptors than the process may open",
			"max_peer_conns", p.Total, "nofile", nofile)
	}
	log.Info("peer-connection caps", "nofile", nofile, "total", p.Total, "pending", p.Pending,
		"per_ip", p.PerAddr, "pending_per_ip", p.PendingPerAddr, "per_stream", p.PerStream)
	return lim, nil
}
