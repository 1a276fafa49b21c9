package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BenchmarkPlayerStartup loads /watch/demo ten times per iteration in
// headless Chromium, each in a fresh tab with the cache on, and reports
// page load to first frame (p50, p95) and the bytes the first load moved
// (compressed, as on the wire):
//
//	go test -run '^$' -bench PlayerStartup -benchtime 1x ./cmd/seedcast
func BenchmarkPlayerStartup(b *testing.B) {
	base := startServer(b, "--demo", "--webrtc-loopback-only")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bctx := chromium(b, ctx)
	var startups []float64
	var firstBytes float64
	for i := 0; i < b.N; i++ {
		for load := range 10 {
			tab, closeTab := chromedp.NewContext(bctx)
			if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/watch/demo")); err != nil {
				b.Fatal(err)
			}
			ms, err := chromedp.Run(tab, chromedp.Poll[float64](`window.seedcastFirstFrameMs || false`, chromedp.WithPollingTimeout(30*time.Second)))
			if err != nil {
				b.Fatalf("load %d: no first frame: %v", load, err)
			}
			startups = append(startups, ms)
			marks, _ := chromedp.Run(tab, chromedp.Evaluate[map[string]float64](`Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, Math.round(m.startTime)]))`))
			b.Logf("load %d: first frame at %.0f ms; %v", load, ms, marks)
			if i == 0 && load == 0 {
				firstBytes, _ = chromedp.Run(tab, chromedp.Evaluate[float64](`performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).filter(e => !e.name.includes('/c/') && !e.name.includes('/manifest') && !e.name.includes('/api/')).reduce((a, e) => a + e.transferSize, 0)`))
			}
			closeTab()
		}
	}
	slices.Sort(startups)
	b.ReportMetric(startups[len(startups)/2], "startup-p50-ms")
	b.ReportMetric(startups[len(startups)*95/100], "startup-p95-ms")
	b.ReportMetric(firstBytes/1e6, "first-load-MB")
	b.Logf("startups (ms): %.0f", startups)
}
