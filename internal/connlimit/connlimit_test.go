package connlimit

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSized(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   Params
	}{
		{1024, Params{Total: 96, Pending: 24, PerAddr: 12, PendingPerAddr: 3, PerStream: 72}},
		{0, Params{Total: 8, Pending: 2, PerAddr: 4, PendingPerAddr: 2, PerStream: 6}},
		{1 << 20, Params{Total: MaxTotal, Pending: MaxTotal / 4, PerAddr: 64, PendingPerAddr: 16, PerStream: MaxTotal * 3 / 4}},
	} {
		if got := Sized(tc.nofile); got != tc.want {
			t.Errorf("Sized(%d) = %+v, want %+v", tc.nofile, got, tc.want)
		}
		// At its caps a process still has its reserve of fds.
		if p := Sized(tc.nofile); tc.nofile > ReservedFDs && uint64(p.Total*FDsPerConn+ReservedFDs) > tc.nofile {
			t.Errorf("Sized(%d): %d connections need more fds than there are", tc.nofile, p.Total)
		}
	}
	if _, err := New(Params{}); !errors.Is(err, ErrBadParams) {
		t.Errorf("New(zero) = %v, want ErrBadParams", err)
	}
}

func TestCaps(t *testing.T) {
	l, err := New(Params{Total: 6, Pending: 4, PerAddr: 3, PendingPerAddr: 2, PerStream: 5})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2") // same /24, another address: counted apart
	v6a := netip.MustParseAddr("2001:db8:1:2::1")
	v6b := netip.MustParseAddr("2001:db8:1:2:ffff::9") // same /64
	want := func(err, sentinel error, reason string) {
		t.Helper()
		if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), reason) {
			t.Fatalf("got %v, want %v (%s)", err, sentinel, reason)
		}
	}

	a1, err := l.Acquire(KindWHEP, a, "s")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := l.Acquire(KindWHEP, a, "s")
	_, err = l.Acquire(KindWHEP, a, "s")
	want(err, ErrTooMany, "address_pending") // two pending from a
	a1.Connected()
	a1.Connected() // idempotent
	a3, err := l.Acquire(KindWHEP, a, "s")
	if err != nil {
		t.Fatal(err)
	}
	a2.Connected()
	a3.Connected()
	_, err = l.Acquire(KindWHEP, a, "s")
	want(err, ErrTooMany, "address") // three held by a
	if all, pend := l.Held(KindWHEP); all != 3 || pend != 0 {
		t.Fatalf("held %d/%d pending, want 3/0", all, pend)
	}

	x1, _ := l.Acquire(KindWHEP, v6a, "s")
	x2, err := l.Acquire(KindWHEP, v6b, "s")
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Acquire(KindWHEP, b, "s")
	want(err, ErrFull, "stream") // 5 in stream s
	b1, err := l.Acquire(KindSeed, netip.Addr{}, "t")
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Acquire(KindSeed, netip.Addr{}, "t")
	want(err, ErrFull, "total") // 6 in all

	b1.Release()
	_, err = l.Acquire(KindWHEP, v6a, "u")
	want(err, ErrTooMany, "address_pending") // x1, x2 pending in one /64
	x1.Release()
	x1.Release() // idempotent: counted once
	x2.Release()
	a1.Release()
	if st := l.Stats(); st.Total != 2 || st.Pending != 0 || st.Addresses != 1 || st.Streams != 1 {
		t.Fatalf("stats %+v, want 2 held by one address in one stream", st)
	}
	if n := l.Refused(KindWHEP, "address"); n != 1 {
		t.Errorf("refused for address = %d, want 1", n)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l)
	if n, err := testutil.GatherAndCount(reg, "seedcast_peer_connections_refused_total"); err != nil || n != 4 {
		t.Errorf("refusal series = %d, %v; want 4 (whep address, address_pending, stream; seed total)", n, err)
	}
	const held = `
# HELP seedcast_peer_connections WebRTC peer connections held, by kind and state (pending: not connected yet).
# TYPE seedcast_peer_connections gauge
seedcast_peer_connections{kind="call",state="connected"} 0
seedcast_peer_connections{kind="call",state="pending"} 0
seedcast_peer_connections{kind="seed",state="connected"} 0
seedcast_peer_connections{kind="seed",state="pending"} 0
seedcast_peer_connections{kind="whep",state="connected"} 2
seedcast_peer_connections{kind="whep",state="pending"} 0
seedcast_peer_connections{kind="whip",state="connected"} 0
seedcast_peer_connections{kind="whip",state="pending"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(held), "seedcast_peer_connections"); err != nil {
		t.Error(err)
	}
}

// TestConcurrent: leases taken and given back from many goroutines leave
// every count at zero, and the caps hold at every moment.
func TestConcurrent(t *testing.T) {
	l, _ := New(Params{Total: 10, Pending: 5, PerAddr: 4, PendingPerAddr: 3})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(g % 3)})
			for range 500 {
				ls, err := l.Acquire(KindWHEP, addr, "s")
				if err != nil {
					continue
				}
				if st := l.Stats(); st.Total > 10 || st.Pending > 5 {
					t.Errorf("over the caps: %+v", st)
				}
				ls.Connected()
				ls.Release()
			}
		}()
	}
	wg.Wait()
	if st := l.Stats(); st.Total != 0 || st.Pending != 0 || st.Addresses != 0 || st.Streams != 0 {
		t.Fatalf("left %+v, want all zero", st)
	}
}
