package player

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// UplinkParams bound the upload test (POST /api/uplink): the player's
// auto-detect posts a body of random bytes and the server says how fast it
// read it. Zero values take the defaults shown.
type UplinkParams struct {
	MaxBytes   int64         // largest body read (4 MiB)
	Every      time.Duration // per address: one test per Every (10 s) ...
	Burst      int           // ... after a burst of Burst (3)
	Concurrent int           // tests at once, in all (4)
	Timeout    time.Duration // one test's whole body (15 s)
}

type uplink struct {
	p     UplinkParams
	now   func() time.Time
	slots chan struct{}

	mu    sync.Mutex
	addrs *lru.Cache[netip.Addr, *rate.Limiter]
}

func newUplink(p UplinkParams, now func() time.Time) (*uplink, error) {
	if p.MaxBytes <= 0 {
		p.MaxBytes = 4 << 20
	}
	if p.Every <= 0 {
		p.Every = 10 * time.Second
	}
	if p.Burst <= 0 {
		p.Burst = 3
	}
	if p.Concurrent <= 0 {
		p.Concurrent = 4
	}
	if p.Timeout <= 0 {
		p.Timeout = 15 * time.Second
	}
	c, err := lru.New[netip.Addr, *rate.Limiter](4096)
	if err != nil {
		return nil, err
	}
	return &uplink{p: p, now: now, slots: make(chan struct{}, p.Concurrent), addrs: c}, nil
}

// allow takes a token from a's bucket (an IPv6 address's /64).
func (u *uplink) allow(a netip.Addr) bool {
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	lim, ok := u.addrs.Get(a)
	if !ok {
		lim = rate.NewLimiter(rate.Every(u.p.Every), u.p.Burst)
		u.addrs.Add(a, lim)
	}
	return lim.AllowN(u.now(), 1)
}

// UplinkResult is the upload test's answer.
type UplinkResult struct {
	Bytes int64   `json:"bytes"` // body bytes read
	Ms    float64 `json:"ms"`    // from the first byte to the last
	Kbps  float64 `json:"kbps"`  // Bytes·8 / Ms
}

func (pl *Player) serveUplink(w http.ResponseWriter, r *http.Request) {
	u := pl.uplink
	if !u.allow(pl.p.ClientIP(r)) {
		w.Header().Set("Retry-After", fmt.Sprint(int(u.p.Every.Seconds())))
		http.Error(w, "one upload test per address every "+u.p.Every.String(), http.StatusTooManyRequests)
		return
	}
	select {
	case u.slots <- struct{}{}:
		defer func() { <-u.slots }()
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many upload tests at once", http.StatusServiceUnavailable)
		return
	}
	if r.ContentLength > u.p.MaxBytes {
		http.Error(w, fmt.Sprintf("at most %d bytes", u.p.MaxBytes), http.StatusRequestEntityTooLarge)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(u.p.Timeout)) // a socket deadline: real time
	body := http.MaxBytesReader(w, r.Body, u.p.MaxBytes)
	buf := make([]byte, 32<<10)
	var n int64
	var first time.Time
	for {
		k, err := body.Read(buf)
		if k > 0 && first.IsZero() {
			first = time.Now()
		}
		n += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, fmt.Sprintf("at most %d bytes", u.p.MaxBytes), http.StatusRequestEntityTooLarge)
			} else {
				http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			}
			return
		}
	}
	res := UplinkResult{Bytes: n}
	if !first.IsZero() {
		res.Ms = float64(time.Since(first).Microseconds()) / 1000
	}
	if res.Ms > 0 {
		res.Kbps = float64(n) * 8 / res.Ms
	}
	writeJSON(w, res)
}
