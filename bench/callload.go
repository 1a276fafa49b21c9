package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seedcast/seedcast/sfu"
	"github.com/seedcast/seedcast/sfu/call"
	"github.com/seedcast/seedcast/sfu/call/client"
)

// CallLoadParams configures RunCallLoad: R rooms of P publishers and S
// subscribers, all Go clients (sfu/call/client) on loopback.
type CallLoadParams struct {
	// Binary is the seedcast executable; the load starts `seedcast serve`
	// with it (in its own process, so that its CPU is measured apart).
	Binary string
	// Server, when set, is a running server's base URL (http://host:port)
	// to load instead; its CPU is then not measured.
	Server                         string
	Rooms, Publishers, Subscribers int
	// Video sends camera video (three simulcast layers when Simulcast) and
	// Audio a microphone from every publisher; at least one.
	Video, Audio, Simulcast bool
	VideoKbps               int           // the full layer; default 600
	Window                  time.Duration // measured after everyone joined; default 20 s
	Logger                  *slog.Logger
}

// Percentiles of a sample, in milliseconds.
type Percentiles struct {
	N             int     `json:"n"`
	P50, P95, P99 float64 `json:"-"`
	Values        []float64
}

// MarshalJSON writes the percentiles only.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"n": p.N, "p50": p.P50, "p95": p.P95, "p99": p.P99})
}

func percentiles(v []float64) Percentiles {
	s := slices.Clone(v)
	slices.Sort(s)
	p := Percentiles{N: len(s), Values: s}
	at := func(q float64) float64 {
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(q*float64(len(s))))]
	}
	p.P50, p.P95, p.P99 = at(0.5), at(0.95), at(0.99)
	return p
}

// CallLoadResult is what RunCallLoad measured.
type CallLoadResult struct {
	Rooms, Publishers, Subscribers int
	Participants                   int
	// ForwardedTracks is the tracks the server forwards: every
	// participant's subscriptions to others' tracks.
	ForwardedTracks int
	// Join is the time from dialling to the welcome; Media, for
	// subscribers, from dialling to the first packet of a subscribed track.
	Join, Media Percentiles
	WindowS     float64
	// ServerCPU is the server process's CPU over the window, in % of one
	// core (-1 when the server was not started here); PerTrack divides it
	// by ForwardedTracks.
	ServerCPU, PerTrackCPU float64
	// MachineCPU is the whole machine's busy share over the window, in %
	// of all cores; Saturated when above 90%.
	MachineCPU float64
	Saturated  bool
	// PacketsIn and PacketsOut are the server's RTP packets a second,
	// received from publishers and forwarded to subscribers.
	PacketsIn, PacketsOut float64
	// LossPct is the receivers' packet loss over the window (gaps in
	// sequence numbers), in %.
	LossPct float64
}

// RunCallLoad runs the load and returns its measures.
func RunCallLoad(ctx context.Context, p CallLoadParams) (CallLoadResult, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Window <= 0 {
		p.Window = 20 * time.Second
	}
	if p.Rooms < 1 || p.Publishers < 0 || p.Subscribers < 0 || p.Publishers+p.Subscribers < 2 || (!p.Video && !p.Audio) {
		return CallLoadResult{}, fmt.Errorf("%w: want ≥ 1 room, ≥ 2 participants in each, and audio or video", ErrBadParams)
	}
	res := CallLoadResult{Rooms: p.Rooms, Publishers: p.Publishers, Subscribers: p.Subscribers, ServerCPU: -1, PerTrackCPU: -1}
	base, pid := p.Server, 0
	if base == "" {
		var stop func()
		var err error
		if base, pid, stop, err = startServe(ctx, p.Binary, p.Logger); err != nil {
			return res, err
		}
		defer stop()
	}
	ws := "ws" + strings.TrimPrefix(base, "http")
	api := client.NewAPI(sfu.LoopbackICE(10 * time.Second).SettingEngine())

	var mu sync.Mutex
	var clients []*client.Client
	var joins, medias []float64
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	tracksPer := 0
	if p.Video {
		tracksPer++
	}
	if p.Audio {
		tracksPer++
	}
	opts := client.PublishOptions{Audio: p.Audio, Video: p.Video, Simulcast: p.Video && p.Simulcast, VideoKbps: p.VideoKbps}
	for r := 0; r < p.Rooms; r++ {
		url := ws + "/call/" + call.NewRoomID() + "/ws"
		var host *client.Client
		n := p.Publishers + p.Subscribers
		var wg sync.WaitGroup
		errc := make(chan error, n)
		for i := 0; i < n; i++ {
			publisher := i < p.Publishers
			prm := client.Params{URL: url, Name: fmt.Sprintf("load-%d-%d", r, i), API: api, AutoSubscribe: true, TileHeight: 360}
			if host != nil {
				ref := strconv.Itoa(i)
				if err := host.Send(call.Msg{Type: call.TypeInvite, Ref: ref}); err != nil {
					return res, err
				}
				inv, err := host.WaitFor(ctx, func(o call.Out) bool { return o.Ref == ref })
				if err != nil {
					return res, err
				}
				prm.Invite = inv.Invite
			}
			start := time.Now()
			c, err := client.Dial(ctx, prm)
			if err != nil {
				return res, fmt.Errorf("room %d, participant %d: %w", r, i, err)
			}
			joined := time.Since(start)
			mu.Lock()
			clients = append(clients, c)
			joins = append(joins, float64(joined)/1e6)
			mu.Unlock()
			if host == nil {
				host = c
			}
			res.Participants++
			others := p.Publishers
			if publisher {
				others--
			}
			res.ForwardedTracks += others * tracksPer
			wg.Add(1)
			go func() {
				defer wg.Done()
				if publisher {
					if err := c.Publish(ctx, opts); err != nil {
						errc <- err
					}
					return
				}
				if p.Publishers == 0 {
					return
				}
				err := c.Until(ctx, func() bool {
					for _, rx := range c.RxAll() {
						if rx.Packets.Load() > 0 {
							return true
						}
					}
					return false
				})
				if err == nil {
					mu.Lock()
					medias = append(medias, float64(time.Since(start))/1e6)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			return res, err
		}
		p.Logger.Info("room loaded", "room", r, "participants", n)
	}
	res.Join, res.Media = percentiles(joins), percentiles(medias)

	// Settle, then measure a window.
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	rx := func() (pk, lost int64) {
		for _, c := range clients {
			for _, s := range c.RxAll() {
				pk += s.Packets.Load()
				lost += s.Lost.Load()
			}
		}
		return
	}
	scrape := func() (in, out float64) {
		m, err := fetchMetrics(ctx, base)
		if err != nil {
			return 0, 0
		}
		return m.sum("seedcast_sfu_rtp_packets_received_total", "", ""), m.sum("seedcast_sfu_rtp_packets_forwarded_total", "", "")
	}
	pk0, lost0 := rx()
	in0, out0 := scrape()
	mc0, cpu0, t0 := readMachineCPU(), time.Duration(0), time.Now()
	if pid > 0 {
		cpu0 = procCPU(pid)
	}
	select {
	case <-time.After(p.Window):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	wall := time.Since(t0)
	res.WindowS = wall.Seconds()
	if pid > 0 {
		res.ServerCPU = 100 * float64(procCPU(pid)-cpu0) / float64(wall)
		if res.ForwardedTracks > 0 {
			res.PerTrackCPU = res.ServerCPU / float64(res.ForwardedTracks)
		}
	}
	mc := readMachineCPU()
	if dt := mc.total - mc0.total; dt > 0 {
		res.MachineCPU = 100 * (1 - float64(mc.idle-mc0.idle)/float64(dt))
		res.Saturated = res.MachineCPU > 90
	}
	in1, out1 := scrape()
	res.PacketsIn, res.PacketsOut = (in1-in0)/wall.Seconds(), (out1-out0)/wall.Seconds()
	pk1, lost1 := rx()
	if d := (pk1 - pk0) + (lost1 - lost0); d > 0 {
		res.LossPct = 100 * float64(lost1-lost0) / float64(d)
	}
	return res, nil
}

// startServe starts `seedcast serve` on a free loopback port and returns
// its base URL and pid once it listens.
func startServe(ctx context.Context, binary string, log *slog.Logger, args ...string) (base string, pid int, stop func(), err error) {
	if binary == "" {
		return "", 0, nil, fmt.Errorf("%w: Binary is required to start a server", ErrBadParams)
	}
	cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--webrtc-loopback-only", "--log-format", "json",
		"--max-peer-conns-per-ip", "100000", "--call-conns-per-ip", "100000", "--call-max-participants", "1000"}, args...)...)
	cmd.SysProcAttr = childAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("%w: start seedcast serve: %v", ErrHarness, err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" && !sent {
				addr <- l.Addr
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	select {
	case a := <-addr:
		log.Info("server up", "addr", a, "pid", cmd.Process.Pid)
		return "http://" + a, cmd.Process.Pid, stop, nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	stop()
	return "", 0, nil, fmt.Errorf("%w: seedcast serve did not start listening", ErrHarness)
}

// fetchMetrics scrapes a server's /metrics.
func fetchMetrics(ctx context.Context, base string) (promText, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: /metrics: %s", ErrHarness, resp.Status)
	}
	return parseProm(io.LimitReader(resp.Body, 16<<20))
}
