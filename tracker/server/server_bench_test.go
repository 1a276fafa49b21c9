package server

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// BenchmarkWebSocketJoin measures whole joins through the server on loopback:
// dial, join, welcome, leave, from 8 concurrent clients (the policy's own
// cost at scale is BenchmarkJoin's).
func BenchmarkWebSocketJoin(b *testing.B) {
	srv, err := New(Params{
		Streams: StreamsFunc(func(string) (StreamInfo, bool) {
			return StreamInfo{PublicKey: testPub, Manifest: "/m", BitrateKbps: 1000}, true
		}),
		Swarm: tracker.SwarmParams{Substreams: 4}, OriginSlots: 1 << 20, MaxConnsPerIP: 1 << 20, Seed: 1,
	})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	msg, _ := json.Marshal(protocol.Join{Type: protocol.TypeJoin, V: 1, Stream: "demo", Kind: protocol.KindNative, BudgetKbps: 2000})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				ws, _, err := websocket.Dial(ctx, url, nil)
				if err != nil {
					b.Error(err)
					return
				}
				if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Error(err)
					return
				}
				if _, _, err := ws.Read(ctx); err != nil {
					b.Error(err)
					return
				}
				ws.Close(websocket.StatusNormalClosure, "")
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
}
