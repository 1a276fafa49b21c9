package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// BenchmarkConnectionMemory holds 2,000 joined WebSocket connections open
// and reports the server's memory per connection. The clients run in a
// separate process (this test binary, re-executed) so that only the
// server's side is counted.
func BenchmarkConnectionMemory(b *testing.B) {
	const n = 2000
	for i := 0; i < b.N; i++ {
		srv, _ := New(Params{
			Streams: StreamsFunc(func(string) (StreamInfo, bool) {
				return StreamInfo{PublicKey: testPub, Manifest: "/m", BitrateKbps: 1000}, true
			}),
			Swarm: tracker.SwarmParams{Substreams: 4}, OriginSlots: 1 << 20, MaxConnsPerIP: 1 << 20, Seed: 1,
		})
		hs := httptest.NewServer(srv)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		goroutines := runtime.NumGoroutine()

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestConnectionHolder$")
		cmd.Env = append(os.Environ(), "SEEDCAST_HOLD_URL=ws"+strings.TrimPrefix(hs.URL, "http"), "SEEDCAST_HOLD_N="+strconv.Itoa(n))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n') // "held N" once all joined
		if err != nil || !strings.HasPrefix(line, "held") {
			b.Fatalf("client process: %q %v", line, err)
		}
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&after)
		heap := float64(after.HeapInuse) - float64(before.HeapInuse)
		stack := float64(after.StackInuse) - float64(before.StackInuse)
		b.ReportMetric((heap+stack)/n, "bytes/conn")
		b.ReportMetric(heap/n, "heap-bytes/conn")
		b.ReportMetric(stack/n, "stack-bytes/conn")
		b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/n, "goroutines/conn")
		stdin.Close() // the holder exits, closing its connections
		_ = cmd.Wait()
		cancel()
		srv.Close()
		hs.Close()
	}
}

// TestConnectionHolder is the client process of BenchmarkConnectionMemory;
// it does nothing in a normal test run.
func TestConnectionHolder(t *testing.T) {
	url, ns := os.Getenv("SEEDCAST_HOLD_URL"), os.Getenv("SEEDCAST_HOLD_N")
	if url == "" {
		t.Skip("helper process of BenchmarkConnectionMemory")
	}
	n, _ := strconv.Atoi(ns)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msg, _ := json.Marshal(protocol.Join{Type: protocol.TypeJoin, V: 1, Stream: "demo", Kind: protocol.KindNative, BudgetKbps: 2000})
	conns := make([]*websocket.Conn, 0, n)
	for range n {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.Read(ctx); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, ws)
	}
	fmt.Printf("held %d\n", n)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the benchmark closes stdin
	for _, ws := range conns {
		ws.CloseNow()
	}
}
