package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/sfu"
	"github.com/seedcast/seedcast/sfu/call/client"
)

// WHEPLoadParams configures RunWHEPLoad.
type WHEPLoadParams struct {
	Binary  string // the seedcast executable: `seedcast serve --demo` runs in its own process
	Viewers []int  // audiences to measure, each against the same server
	Window  time.Duration
	// ServeArgs are more flags for `seedcast serve` (--debug-addr, say,
	// to profile it).
	ServeArgs []string
	Logger    *slog.Logger
}

// WHEPLoadPoint is one audience's measure.
type WHEPLoadPoint struct {
	Viewers int
	// ServerCPU is the server process's CPU in % of one core; Marginal
	// is (ServerCPU − that with no viewer) ÷ Viewers.
	ServerCPU, Marginal float64
	// Mbps is the media each viewer received (bit/s ÷ 1e6).
	Mbps       float64
	MachineCPU float64
	Saturated  bool
}

// RunWHEPLoad measures the server's marginal CPU per WHEP viewer of the
// demo stream: the viewers are pion clients in this process, the server
// another process.
func RunWHEPLoad(ctx context.Context, p WHEPLoadParams) ([]WHEPLoadPoint, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Window <= 0 {
		p.Window = 15 * time.Second
	}
	base, pid, stop, err := startServe(ctx, p.Binary, p.Logger, append([]string{"--demo"}, p.ServeArgs...)...)
	if err != nil {
		return nil, err
	}
	defer stop()
	// Wait for the demo to be live.
	for {
		resp, err := http.Get(base + "/live/demo/index.m3u8")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	api := client.NewAPI(sfu.LoopbackICE(10 * time.Second).SettingEngine())
	measure := func(bytes *atomic.Int64) (cpu, mach, mbps float64) {
		mc0, c0, b0, t0 := readMachineCPU(), procCPU(pid), bytes.Load(), time.Now()
		select {
		case <-time.After(p.Window):
		case <-ctx.Done():
		}
		wall := time.Since(t0)
		mc := readMachineCPU()
		if dt := mc.total - mc0.total; dt > 0 {
			mach = 100 * (1 - float64(mc.idle-mc0.idle)/float64(dt))
		}
		return 100 * float64(procCPU(pid)-c0) / float64(wall), mach, float64(bytes.Load()-b0) * 8 / wall.Seconds() / 1e6
	}
	var idle atomic.Int64
	time.Sleep(3 * time.Second) // the demo settles
	idleCPU, mach, _ := measure(&idle)
	out := []WHEPLoadPoint{{Viewers: 0, ServerCPU: idleCPU, MachineCPU: mach, Saturated: mach > 90}}
	for _, n := range p.Viewers {
		var bytes atomic.Int64
		pcs, err := whepViewers(ctx, api, base, n, &bytes)
		if err != nil {
			return out, err
		}
		time.Sleep(3 * time.Second)
		cpu, mach, mbps := measure(&bytes)
		pt := WHEPLoadPoint{Viewers: n, ServerCPU: cpu, MachineCPU: mach, Saturated: mach > 90}
		if n > 0 {
			pt.Marginal = (cpu - idleCPU) / float64(n)
			pt.Mbps = mbps / float64(n)
		}
		out = append(out, pt)
		p.Logger.Info("measured", "viewers", n, "server_cpu", cpu, "marginal", pt.Marginal)
		for _, pc := range pcs {
			_ = pc.Close()
		}
		time.Sleep(2 * time.Second)
	}
	return out, nil
}

// whepViewers starts n WHEP viewers of the demo that count the bytes they
// receive.
func whepViewers(ctx context.Context, api *webrtc.API, base string, n int, bytes *atomic.Int64) ([]*webrtc.PeerConnection, error) {
	var pcs []*webrtc.PeerConnection
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			return pcs, err
		}
		pcs = append(pcs, pc)
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return pcs, err
			}
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			buf := make([]byte, 1500)
			for {
				k, _, err := tr.Read(buf)
				if err != nil {
					return
				}
				bytes.Add(int64(k))
			}
		})
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			return pcs, err
		}
		g := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(offer); err != nil {
			return pcs, err
		}
		<-g
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/whep/demo", strings.NewReader(pc.LocalDescription().SDP))
		req.Header.Set("Content-Type", "application/sdp")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return pcs, err
		}
		ans, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return pcs, fmt.Errorf("WHEP viewer %d: %d %s", i, resp.StatusCode, ans)
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(ans)}); err != nil {
			return pcs, err
		}
	}
	wg.Wait()
	return pcs, nil
}
