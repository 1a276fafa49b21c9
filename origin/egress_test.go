package origin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedcast/seedcast/manifest"
)

// TestEgressCap: with an HTTP egress cap, the chunk route sends at most the
// cap's burst plus its rate times the time elapsed, over every prefix of a
// run of greedy clients on a virtual clock; the requests past it get 503
// with Retry-After and are counted, and none is served short. Without a
// cap, everything is served.
func TestEgressCap(t *testing.T) {
	const (
		kbps  = 16_000 // 2 MB/s: a burst of 2 MiB (its floor)
		size  = 100_000
		tick  = 10 * time.Millisecond
		ticks = 300 // 3 s
		per   = 5   // requests per tick: 50 MB/s asked
	)
	for _, capped := range []bool{true, false} {
		t.Run(fmt.Sprint("capped=", capped), func(t *testing.T) {
			now := time.Unix(1_800_000_000, 0)
			reg := prometheus.NewRegistry()
			p := Params{Registry: reg, Now: func() time.Time { return now }}
			if capped {
				p.EgressKbps = kbps
			}
			s := New(p)
			var ids []manifest.ID
			for i := range 8 {
				data := make([]byte, size)
				data[0] = byte(i)
				id := manifest.Sum(data)
				s.Store().Pin(id, data, now)
				ids = append(ids, id)
			}
			start := now
			var sent, refused int
			for i := range ticks {
				for j := range per {
					rec := httptest.NewRecorder()
					s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/c/"+ids[(i+j)%len(ids)].String(), nil))
					switch rec.Code {
					case http.StatusOK:
						if rec.Body.Len() != size {
							t.Fatalf("served %d bytes of %d", rec.Body.Len(), size)
						}
						sent += rec.Body.Len()
					case http.StatusServiceUnavailable:
						if rec.Header().Get("Retry-After") == "" {
							t.Fatal("a refusal without Retry-After")
						}
						refused++
					default:
						t.Fatalf("status %d", rec.Code)
					}
				}
				if capped {
					most := float64(minEgressBurst) + kbps*1000/8*now.Sub(start).Seconds()
					if float64(sent) > most {
						t.Fatalf("after %v: %d bytes sent, cap allows %.0f", now.Sub(start), sent, most)
					}
				}
				now = now.Add(tick)
			}
			got := testutil.ToFloat64(s.metrics.egressRefused.WithLabelValues("chunk"))
			t.Logf("%d bytes sent in %v (%.1f Mbit/s), %d refused", sent, now.Sub(start), float64(sent)*8/now.Sub(start).Seconds()/1e6, refused)
			if !capped {
				if refused != 0 || sent != ticks*per*size {
					t.Fatalf("no cap: %d refused, %d bytes sent", refused, sent)
				}
				return
			}
			if int(got) != refused {
				t.Errorf("refusals counted %v, seen %d", got, refused)
			}
			// The cap is used, not just honoured: within a chunk of its
			// allowance over the run.
			least := float64(kbps*1000/8)*(now.Sub(start)-tick).Seconds() - size
			if float64(sent) < least {
				t.Errorf("%d bytes sent, want at least %.0f: the cap is not used", sent, least)
			}
		})
	}
}

// TestEgressCapCharges: the cap charges a response for the bytes it sends,
// not for the chunk: a conditional GET answered 304 and a HEAD cost
// nothing, a range costs its length; and a refusal carries none of the
// success's headers (a 503 that said immutable would be cached for a year).
func TestEgressCapCharges(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := New(Params{Registry: prometheus.NewRegistry(), EgressKbps: 16_000, Now: func() time.Time { return now }})
	// The burst is 2 MiB (minEgressBurst); a chunk of 1.5 MiB leaves
	// 0.5 MiB once served.
	const size = 3 << 19
	data := make([]byte, size)
	data[0] = 1
	id := manifest.Sum(data)
	s.Store().Pin(id, data, now)
	get := func(method string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/c/"+id.String(), nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	if rec := get(http.MethodGet); rec.Code != http.StatusOK || rec.Body.Len() != size {
		t.Fatalf("first GET: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	rec := get(http.MethodGet)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("second GET: %d, want 503 (0.5 MiB left of the burst)", rec.Code)
	}
	for _, k := range []string{"ETag", "Content-Range"} {
		if v := rec.Header().Get(k); v != "" {
			t.Errorf("503 carries %s: %q", k, v)
		}
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("503 Cache-Control %q, want no-store", cc)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	etag := `"` + id.String() + `"`
	for range 10 {
		if rec := get(http.MethodGet, "If-None-Match", etag); rec.Code != http.StatusNotModified {
			t.Fatalf("conditional GET: %d, want 304 at no cost", rec.Code)
		}
		if rec := get(http.MethodHead); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Fatalf("HEAD: %d, %d bytes, want 200 at no cost", rec.Code, rec.Body.Len())
		}
	}
	// Ranges of 100 KiB: the 0.5 MiB left holds five of them, not six.
	var served int
	for i := range 6 {
		rec := get(http.MethodGet, "Range", fmt.Sprintf("bytes=%d-%d", i*100<<10, (i+1)*100<<10-1))
		switch rec.Code {
		case http.StatusPartialContent:
			served += rec.Body.Len()
		case http.StatusServiceUnavailable:
		default:
			t.Fatalf("range %d: status %d", i, rec.Code)
		}
	}
	if served != 5*100<<10 {
		t.Errorf("ranges served %d bytes, want %d (the 0.5 MiB left)", served, 5*100<<10)
	}
	if got := testutil.ToFloat64(s.metrics.egressRefused.WithLabelValues("chunk")); got != 2 {
		t.Errorf("refusals counted %v, want 2", got)
	}
}
