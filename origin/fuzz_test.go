package origin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// FuzzRequest sends arbitrary paths and queries to the origin's handlers: no
// panic, and only the statuses the HTTP surface documents.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"/c/zz", "/live/demo/manifest", "/live/demo/index.m3u8", "/live/demo/v0/index.m3u8?_HLS_msn=1&_HLS_part=2",
		"/live/demo/v0/index.m3u8?_HLS_msn=18446744073709551615", "/live/demo/a0/seg/3.m4s", "/live/demo/v0/seg/-1.m4s",
		"/c/" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "/live/%2e%2e/manifest", "/healthz",
	} {
		f.Add(s)
	}
	feed := newDemoFeed(f, time.Minute)
	feed.feed(f, 3*time.Second)
	h := feed.srv.Handler()
	allowed := map[int]bool{200: true, 206: true, 301: true, 304: true, 307: true, 400: true, 404: true, 405: true, 416: true, 503: true}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || len(target) > 4096 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond) // bounds blocking reloads
		defer cancel()
		req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
		req.URL = u
		req.RequestURI = target
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Errorf("GET %q: status %d", target, rec.Code)
		}
	})
}
