package connlimit

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors. Acquire wraps them with %w and the cap that refused.
var (
	// ErrFull means the process or the stream holds as many peer
	// connections (or pending ones) as it may: try later (HTTP 503).
	ErrFull = errors.New("connlimit: at the peer-connection limit")
	// ErrTooMany means the client's address holds as many peer connections
	// (or pending ones) as one address may (HTTP 429).
	ErrTooMany = errors.New("connlimit: too many peer connections from this address")
	// ErrBadParams reports Params that cannot work.
	ErrBadParams = errors.New("connlimit: bad params")
)

// Kind says what a peer connection is for; metrics use it as a label.
type Kind string

// Kinds of peer connection.
const (
	KindWHIP Kind = "whip" // a publisher
	KindWHEP Kind = "whep" // a viewer playing straight from the SFU
	KindSeed Kind = "seed" // a swarm peer linked to the origin's seed node
	KindCall Kind = "call" // a call participant
)

// Params are a Limiter's caps. Zero means "no cap" for PerStream only;
// every other cap must be positive.
type Params struct {
	Total          int // peer connections in the process
	Pending        int // of those, not connected yet
	PerAddr        int // held by one client address (IPv4, or IPv6 /64)
	PendingPerAddr int // of those, not connected yet
	PerStream      int // held in one stream or room; 0: Total
}

// Figures Sized works from.
const (
	// FDsPerConn is what one server-side peer connection was measured to
	// hold: 300 WHEP sessions took the process from 24 to 2,426 fds.
	FDsPerConn = 8
	// ReservedFDs are kept for listeners, HTTP clients and WebSockets,
	// the chunk store and logs.
	ReservedFDs = 256
	// MaxTotal caps Total however high the fd limit: at ~440 KB and ~20
	// goroutines each, 4,096 connections are ~1.8 GB.
	MaxTotal = 4096
	minTotal = 8
)

// Sized returns the caps for a process that may hold nofile open files:
// Total = (nofile − ReservedFDs) / FDsPerConn, between 8 and MaxTotal;
// Pending a quarter of it; PerAddr an eighth (at least 4, at most 64);
// PendingPerAddr a quarter of PerAddr (at least 2); PerStream three
// quarters of Total, so that one stream cannot take every connection.
// For the common 1,024-fd limit that is 96 connections, 24 pending, 12 per
// address, 3 pending per address and 72 per stream.
func Sized(nofile uint64) Params {
	total := minTotal
	if nofile > ReservedFDs {
		total = int(min((nofile-ReservedFDs)/FDsPerConn, MaxTotal))
	}
	total = max(total, minTotal)
	perAddr := min(max(total/8, 4), 64)
	return Params{
		Total:          total,
		Pending:        max(total/4, 2),
		PerAddr:        perAddr,
		PendingPerAddr: max(perAddr/4, 2),
		PerStream:      max(total*3/4, 1),
	}
}

// Limiter hands out Leases within its Params. It is safe for concurrent
// use.
type Limiter struct {
	p Params

	mu        sync.Mutex
	total     int
	pending   int
	addrs     map[netip.Prefix]*count
	streams   map[string]int
	held      map[Kind]*count
	refusedBy map[refusal]uint64
}

type count struct{ all, pending int }

type refusal struct {
	kind   Kind
	reason string
}

// New returns a Limiter with caps p.
func New(p Params) (*Limiter, error) {
	if p.Total <= 0 || p.Pending <= 0 || p.PerAddr <= 0 || p.PendingPerAddr <= 0 || p.PerStream < 0 {
		return nil, fmt.Errorf("%w: %+v", ErrBadParams, p)
	}
	if p.PerStream == 0 {
		p.PerStream = p.Total
	}
	return &Limiter{
		p: p, addrs: map[netip.Prefix]*count{}, streams: map[string]int{},
		held: map[Kind]*count{}, refusedBy: map[refusal]uint64{},
	}, nil
}

// Params returns the caps in force.
func (l *Limiter) Params() Params { return l.p }

// addrKey is the unit one address is counted in: the IPv4 address, or the
// IPv6 /64 (one subscriber line usually holds a whole /64).
func addrKey(a netip.Addr) (netip.Prefix, bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32), true
	}
	p, _ := a.Prefix(64)
	return p, true
}

// Acquire takes a pending lease for a peer connection of kind in stream,
// for a client at addr (the zero Addr: unknown, so no per-address cap;
// seed links, whose address the tracker already caps). It fails with
// ErrFull or ErrTooMany, wrapped with the cap that refused.
func (l *Limiter) Acquire(kind Kind, addr netip.Addr, stream string) (*Lease, error) {
	key, hasAddr := addrKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	refuse := func(sentinel error, reason string, n int) (*Lease, error) {
		l.refusedBy[refusal{kind, reason}]++
		return nil, fmt.Errorf("%w: %s cap %d reached", sentinel, reason, n)
	}
	var ac *count
	if hasAddr {
		ac = l.addrs[key]
		if ac == nil {
			ac = &count{}
		}
		switch {
		case ac.all >= l.p.PerAddr:
			return refuse(ErrTooMany, "address", l.p.PerAddr)
		case ac.pending >= l.p.PendingPerAddr:
			return refuse(ErrTooMany, "address_pending", l.p.PendingPerAddr)
		}
	}
	switch {
	case l.total >= l.p.Total:
		return refuse(ErrFull, "total", l.p.Total)
	case l.pending >= l.p.Pending:
		return refuse(ErrFull, "pending", l.p.Pending)
	case l.streams[stream] >= l.p.PerStream:
		return refuse(ErrFull, "stream", l.p.PerStream)
	}
	l.total++
	l.pending++
	l.streams[stream]++
	if hasAddr {
		ac.all++
		ac.pending++
		l.addrs[key] = ac
	}
	kc := l.held[kind]
	if kc == nil {
		kc = &count{}
		l.held[kind] = kc
	}
	kc.all++
	kc.pending++
	return &Lease{l: l, kind: kind, addr: key, hasAddr: hasAddr, stream: stream, pending: true}, nil
}

// Lease is one admitted peer connection. Connected and Release are safe to
// call more than once and concurrently.
type Lease struct {
	l       *Limiter
	kind    Kind
	addr    netip.Prefix
	hasAddr bool
	stream  string
	pending bool
	done    bool
}

// Connected moves the lease out of the pending caps: its peer connection
// is up.
func (ls *Lease) Connected() {
	if ls == nil {
		return
	}
	l := ls.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls.done || !ls.pending {
		return
	}
	ls.pending = false
	l.unpend(ls)
}

func (l *Limiter) unpend(ls *Lease) {
	l.pending--
	l.held[ls.kind].pending--
	if ls.hasAddr {
		l.addrs[ls.addr].pending--
	}
}

// Release gives the lease back: its peer connection is closed (or was
// never made).
func (ls *Lease) Release() {
	if ls == nil {
		return
	}
	l := ls.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls.done {
		return
	}
	ls.done = true
	if ls.pending {
		l.unpend(ls)
	}
	l.total--
	l.held[ls.kind].all--
	if n := l.streams[ls.stream] - 1; n > 0 {
		l.streams[ls.stream] = n
	} else {
		delete(l.streams, ls.stream)
	}
	if ls.hasAddr {
		if c := l.addrs[ls.addr]; c.all <= 1 {
			delete(l.addrs, ls.addr)
		} else {
			c.all--
		}
	}
}

// CountRefusal counts a refusal a caller made by a rule of its own (a
// rate of offers, say) in the same metric as the caps' refusals. A nil
// Limiter counts nothing.
func (l *Limiter) CountRefusal(kind Kind, reason string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.refusedBy[refusal{kind, reason}]++
	l.mu.Unlock()
}

// Stats are a Limiter's counts.
type Stats struct {
	Total, Pending int
	Addresses      int // distinct addresses (IPv6: /64s) holding a lease
	Streams        int
	Refused        uint64
}

// Stats returns the current counts.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Stats{Total: l.total, Pending: l.pending, Addresses: len(l.addrs), Streams: len(l.streams)}
	for _, n := range l.refusedBy {
		st.Refused += n
	}
	return st
}

// Held returns the connections of one kind, and of those the pending ones.
func (l *Limiter) Held(kind Kind) (all, pending int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.held[kind]; c != nil {
		return c.all, c.pending
	}
	return 0, 0
}

// Refused returns how many Acquires of kind were refused for reason
// (total, pending, stream, address, address_pending).
func (l *Limiter) Refused(kind Kind, reason string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refusedBy[refusal{kind, reason}]
}

var (
	descConns = prometheus.NewDesc("seedcast_peer_connections",
		"WebRTC peer connections held, by kind and state (pending: not connected yet).",
		[]string{"kind", "state"}, nil)
	descRefused = prometheus.NewDesc("seedcast_peer_connections_refused_total",
		"Peer connections refused at a cap, by kind and the cap (total, pending, stream, address, address_pending).",
		[]string{"kind", "reason"}, nil)
	descCap = prometheus.NewDesc("seedcast_peer_connections_cap",
		"The peer-connection caps in force.", []string{"cap"}, nil)
)

// Describe implements prometheus.Collector.
func (l *Limiter) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConns
	ch <- descRefused
	ch <- descCap
}

// Collect implements prometheus.Collector.
func (l *Limiter) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []Kind{KindWHIP, KindWHEP, KindSeed, KindCall} {
		var c count
		if h := l.held[k]; h != nil {
			c = *h
		}
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(c.all-c.pending), string(k), "connected")
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(c.pending), string(k), "pending")
	}
	for r, n := range l.refusedBy {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(n), string(r.kind), r.reason)
	}
	for name, v := range map[string]int{
		"total": l.p.Total, "pending": l.p.Pending, "per_address": l.p.PerAddr,
		"pending_per_address": l.p.PendingPerAddr, "per_stream": l.p.PerStream,
	} {
		ch <- prometheus.MustNewConstMetric(descCap, prometheus.GaugeValue, float64(v), name)
	}
}
