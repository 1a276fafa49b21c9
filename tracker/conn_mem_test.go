package tracker

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkConnectionMemory holds 2,000 joined WebSocket connections open
// and reports the memory they take, server and client sides together (both
// run in this process), per connection.
func BenchmarkConnectionMemory(b *testing.B) {
	const n = 2000
	for i := 0; i < b.N; i++ {
		srv, _ := NewServer(ServerParams{
			Streams: StreamsFunc(func(string) (StreamInfo, bool) {
				return StreamInfo{PublicKey: testPub, Manifest: "/m", BitrateKbps: 1000}, true
			}),
			Swarm: SwarmParams{Substreams: 4}, OriginSlots: 1 << 20, MaxConnsPerIP: 1 << 20, Seed: 1,
		})
		hs := httptest.NewServer(srv)
		url := "ws" + strings.TrimPrefix(hs.URL, "http")
		msg, _ := json.Marshal(Join{Type: TypeJoin, V: 1, Stream: "demo", Kind: KindNative, BudgetKbps: 2000})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]*websocket.Conn, 0, n)
		for j := 0; j < n; j++ {
			ws, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := ws.Read(ctx); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, ws)
		}
		for range 4 { // stacks shrink at GC: measure the steady state
			runtime.GC()
		}
		runtime.ReadMemStats(&after)
		used := (after.HeapInuse + after.StackInuse) - (before.HeapInuse + before.StackInuse)
		b.ReportMetric(float64(used)/n, "bytes/conn-pair")
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-bytes/conn-pair")
		b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-bytes/conn-pair")
		b.ReportMetric(float64(runtime.NumGoroutine())/n, "goroutines/conn-pair")
		for _, ws := range conns {
			ws.CloseNow()
		}
		cancel()
		srv.Close()
		hs.Close()
	}
}
