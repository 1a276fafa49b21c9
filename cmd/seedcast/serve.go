package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/seedcast/seedcast/ingest"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/origin"
	"github.com/seedcast/seedcast/player"
	"github.com/seedcast/seedcast/publish"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/sfu"
	"github.com/seedcast/seedcast/sfu/call"
	"github.com/seedcast/seedcast/swarm"
	"github.com/seedcast/seedcast/tracker/server"
)

type serveConfig struct {
	addr          string
	demo          bool
	chunkDuration time.Duration
	segment       time.Duration
	window        time.Duration
	gop           time.Duration
	storeMB       int64
	streamKey     listFlag
	streamKeys    string
	keysFile      string
	corsOrigin    string
	embedOrigins  listFlag
	seedEgress    string
	httpEgress    string
	voice         string
	callLimits    call.Limits
	chatDir       string
	tlsCert       string
	tlsKey        string
	tracker       trackerFlags
	limits        limitFlags
	webrtc        webrtcFlags
	debug         debugFlags
	log           logFlags
}

func serveCommand(stdout, stderr io.Writer) *ffcli.Command {
	var cfg serveConfig
	fs := flag.NewFlagSet("seedcast serve", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "HTTP listen address (port 0 picks a free port)")
	fs.BoolVar(&cfg.demo, "demo", false, "publish the built-in demo clip over WHIP as the live stream \"demo\"")
	fs.Var(&cfg.streamKey, "stream-key", "NAME=KEY: a stream that may be published with this key (repeatable; keys ≥ 16 characters)")
	fs.StringVar(&cfg.streamKeys, "stream-keys", "", "NAME=KEY,NAME=KEY,... (the form of SEEDCAST_STREAM_KEYS)")
	fs.StringVar(&cfg.keysFile, "stream-keys-file", "", "file of NAME=KEY lines")
	fs.DurationVar(&cfg.chunkDuration, "chunk-duration", manifest.DefaultChunkDuration, "target chunk duration, 100ms–500ms")
	fs.DurationVar(&cfg.segment, "hls-segment", time.Second, "target HLS segment duration (segments start on keyframes)")
	fs.DurationVar(&cfg.window, "window", time.Minute, "how much media the origin keeps and lists")
	fs.DurationVar(&cfg.gop, "gop", 2*time.Second, "ask publishers for a keyframe at least this often")
	fs.Int64Var(&cfg.storeMB, "store-mb", 256, "chunk store bound in MiB")
	fs.StringVar(&cfg.corsOrigin, "cors-origin", "*", "Access-Control-Allow-Origin for WHIP and WHEP")
	fs.Var(&cfg.embedOrigins, "embed-origins", "origin (scheme://host[:port]) whose pages may embed /embed/ players (repeatable; none: any)")
	fs.StringVar(&cfg.seedEgress, "seed-egress", "50Mbps", "upload budget of each stream's seed node (the origin's data-channel egress)")
	fs.StringVar(&cfg.httpEgress, "http-egress", "", "cap on the origin's HTTP media egress (chunks, HLS segments and parts), e.g. 200Mbps: requests past it get 503 and Retry-After, and swarm viewers pull from peers meanwhile (default: no cap)")
	fs.IntVar(&cfg.callLimits.Participants, "call-max-participants", 16, "members of one meeting")
	fs.IntVar(&cfg.callLimits.Voice, "voice-max-participants", 50, "members of one voice channel")
	fs.IntVar(&cfg.callLimits.Rooms, "call-max-rooms", 200, "meetings and voice channels open at once")
	fs.IntVar(&cfg.callLimits.PerAddress, "call-conns-per-ip", 16, "call signalling WebSockets from one address (IPv6: /64)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM) and --tls-key: browsers give camera and microphone only to https pages (and to localhost)")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "the private key (PEM) of --tls-cert")
	fs.StringVar(&cfg.chatDir, "chat-dir", defaultChatDir(), "where meetings keep their end-to-end encrypted chat history (ciphertext only) across restarts; empty: in memory only")
	fs.StringVar(&cfg.voice, "voice-channels", "lounge,studio", "voice channels, comma-separated ([a-z0-9-], up to 32 characters each; empty: none)")
	cfg.tracker.register(fs)
	cfg.limits.register(fs)
	cfg.webrtc.register(fs)
	cfg.debug.register(fs)
	cfg.log.register(fs)
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "seedcast serve [--addr 127.0.0.1:8080] [--demo] [--stream-key NAME=KEY] [flags]",
		ShortHelp:  "run the server: WHIP ingest, WHEP, chunk store, manifests, HLS, metrics",
		LongHelp: "Runs Seedcast on one port:\n" +
			"  POST /whip/{stream}             WHIP ingest (Authorization: Bearer <stream key>)\n" +
			"  POST /whep/{stream}             WHEP playback straight from the SFU\n" +
			"  GET /live/{stream}/index.m3u8   LL-HLS over CMAF chunks\n" +
			"  GET /live/{stream}/manifest     signed manifest window\n" +
			"  GET /c/{hash}                   one chunk or init segment (immutable)\n" +
			"  GET /tracker                    tracker WebSocket (peer assignment, signaling)\n" +
			"  GET /call, /call/{room}         meetings: a new room, its page; /call/{room}/ws signalling\n" +
			"  GET /voice/{channel}            voice channels; /voice/{channel}/ws signalling\n" +
			"  GET /metrics, GET /healthz",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			log, err := cfg.log.logger(stderr)
			if err != nil {
				return err
			}
			return serve(ctx, cfg, log)
		},
	}
}

func (cfg *serveConfig) keys() (sfu.StreamKeys, error) {
	keys := sfu.StreamKeys{}
	if err := sfu.ParseStreamKeys(keys, append([]string{cfg.streamKeys}, cfg.streamKey...)...); err != nil {
		return nil, err
	}
	if cfg.keysFile != "" {
		f, err := os.Open(cfg.keysFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := sfu.ReadStreamKeys(keys, f); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.keysFile, err)
		}
	}
	return keys, nil
}

func serve(ctx context.Context, cfg serveConfig, log *slog.Logger) error {
	if cfg.chunkDuration < manifest.MinChunkDuration || cfg.chunkDuration > manifest.MaxChunkDuration {
		return fmt.Errorf("--chunk-duration %v: want %v–%v", cfg.chunkDuration, manifest.MinChunkDuration, manifest.MaxChunkDuration)
	}
	keys, err := cfg.keys()
	if err != nil {
		return err
	}
	var demoKey string
	if cfg.demo {
		if demoKey = keys["demo"]; demoKey == "" {
			demoKey = randomKey()
			keys["demo"] = demoKey
		}
	}
	if len(keys) == 0 {
		log.Warn("no stream keys configured: nothing can be published (see --stream-key)")
	}
	ice, iceServers, err := cfg.webrtc.config()
	if err != nil {
		return err
	}
	if cfg.webrtc.udpMux >= 0 {
		host := "0.0.0.0"
		if cfg.webrtc.loopbackOnly {
			host = "127.0.0.1"
		}
		conn, err := net.ListenPacket("udp4", net.JoinHostPort(host, strconv.Itoa(cfg.webrtc.udpMux)))
		if err != nil {
			return fmt.Errorf("--webrtc-udp-mux: %w", err)
		}
		ice.UDPMux = sfu.NewBatchUDPMux(conn, 64, time.Millisecond)
		defer ice.UDPMux.Close()
		log.Info("ICE on one UDP port", "addr", conn.LocalAddr().String())
	}
	seedKbps, err := scheduler.ParseKbps(cfg.seedEgress)
	if err != nil {
		return fmt.Errorf("--seed-egress: %w", err)
	}
	var httpKbps int64
	if cfg.httpEgress != "" {
		if httpKbps, err = scheduler.ParseKbps(cfg.httpEgress); err != nil {
			return fmt.Errorf("--http-egress: %w", err)
		}
	}
	stopDebug, err := cfg.debug.start(log)
	if err != nil {
		return err
	}
	defer stopDebug()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := origin.New(origin.Params{
		Logger: log, Registry: reg, StoreBytes: cfg.storeMB << 20, Window: cfg.window, SegmentTarget: cfg.segment,
		EgressKbps: int(min(httpKbps, math.MaxInt32)),
	})
	ingestMetrics, err := ingest.NewMetrics(reg)
	if err != nil {
		return err
	}
	mgr := ingest.NewManager(ingest.ManagerParams{
		Origin: srv, ChunkDuration: cfg.chunkDuration, GOP: cfg.gop, Logger: log, Metrics: ingestMetrics,
	})
	defer mgr.Close()
	limits, err := cfg.limits.limiter(log)
	if err != nil {
		return err
	}
	reg.MustRegister(limits)
	proxies, err := parseProxies(cfg.tracker.trustedProxies)
	if err != nil {
		return err
	}
	sfuSrv, err := sfu.NewServer(sfu.ServerParams{
		Logger: log, Registerer: reg, ICE: ice, ICEServers: iceServers, PublishAuth: keys,
		AllowOrigin: cfg.corsOrigin, OnRoomCreated: mgr.Attach, Limits: limits,
		ClientIP: func(r *http.Request) netip.Addr { return server.ClientIP(r, proxies) },
	})
	if err != nil {
		return err
	}
	defer sfuSrv.Close()
	names := make([]string, 0, len(keys))
	for name := range keys {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := mgr.AddStream(ctx, name); err != nil {
			return err
		}
		// The room exists before its publisher, so ingest taps from the first packet.
		if _, err := sfuSrv.OpenRoom(name, sfu.RoomKindBroadcast); err != nil {
			return err
		}
	}
	srv.Handle("/whip/", "whip", sfuSrv.Handler())
	srv.Handle("/whep/", "whep", sfuSrv.Handler())
	var voice []string
	for _, v := range strings.Split(cfg.voice, ",") {
		if v = strings.TrimSpace(v); v != "" {
			voice = append(voice, v)
		}
	}
	calls, err := call.New(call.Params{
		SFU: sfuSrv, Logger: log, Registerer: reg, ICEServers: callICE(iceServers), Voice: voice, Limits: cfg.callLimits,
		ChatDir:  cfg.chatDir,
		ClientIP: func(r *http.Request) netip.Addr { return server.ClientIP(r, proxies) },
	})
	if err != nil {
		return err
	}
	defer calls.Close()
	ch := calls.Handler()
	srv.Handle("GET /call/{room}/ws", "call_ws", ch)
	srv.Handle("GET /voice/{channel}/ws", "voice_ws", ch)
	srv.Handle("POST /call", "call_create", ch)
	srv.Handle("GET /presence/ws", "presence_ws", ch)
	secret := rand.Text() // the tracker's origin secret, for the seeds' joins
	trk, closeTracker, err := cfg.tracker.server(srv, reg, iceServers, secret, log)
	if err != nil {
		return err
	}
	defer closeTracker()
	srv.Handle("GET /tracker", "tracker", trk)
	reg.MustRegister(trk.AudienceCollector())
	pl, err := player.New(player.Params{
		Logger: log, EmbedOrigins: cfg.embedOrigins,
		Calls: &player.CallPages{
			NewRoom: call.NewRoomID, ValidRoom: call.ValidRoomID,
			Channels: func() any { return calls.Channels() },
			Channel: func(name string) (any, bool) {
				if !calls.HasChannel(name) {
					return nil, false
				}
				return calls.Channel(name), true
			},
		},
		ClientIP: func(r *http.Request) netip.Addr { return server.ClientIP(r, proxies) },
		Streams: func() []player.StreamInfo {
			var out []player.StreamInfo
			now := time.Now()
			for _, st := range srv.Streams() {
				live, since := st.Status(now)
				info := player.StreamInfo{Name: st.Name(), Live: live, LiveSince: since}
				if d, ok := trk.Dashboard(st.Name()); ok {
					info.Viewers, info.Browsers, info.Natives = d.Viewers, d.Browsers, d.Natives
				}
				out = append(out, info)
			}
			return out
		},
		Dashboard: func(name string) (any, bool) {
			if _, ok := srv.Stream(name); !ok {
				return nil, false
			}
			d, ok := trk.Dashboard(name)
			if !ok { // nobody joined yet
				d = server.Dashboard{Stream: name, Continuity: -1, History: []server.Sample{}}
			}
			return d, true
		},
	})
	if err != nil {
		return err
	}
	for _, r := range pl.Routes() {
		srv.Handle(r.Pattern, r.Name, r.Handler)
	}

	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	// self is where the process's own clients (the seeds, the demo
	// publisher) reach the server: the listener itself, or with TLS a
	// plain loopback listener of their own.
	scheme, self := "http", "http://"+ln.Addr().String()
	var internal net.Listener
	if cfg.tlsCert != "" {
		scheme = "https"
		if internal, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			ln.Close()
			return err
		}
		defer internal.Close()
		self = "http://" + internal.Addr().String()
	}
	seedEgress := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seedcast_seed_egress_bytes_total", Help: "Bytes the streams' seed nodes sent to peers within their budgets (media and relayed batches, as framed).",
	}, []string{"stream"})
	reg.MustRegister(seedEgress)
	sd, err := swarm.NewSeeds(swarm.SeedsParams{
		Server: self, Secret: secret, EgressKbps: int(seedKbps), Logger: log, Limits: limits,
		StoreBytes: cfg.storeMB << 20, StoreWindow: cfg.window, // the seed keeps what the origin keeps
		OnUpload: func(stream string, n int) { seedEgress.WithLabelValues(stream).Add(float64(n)) },
		API:      webrtc.NewAPI(webrtc.WithSettingEngine(ice.SettingEngine())),
		Source: func(name string) (swarm.SeedSource, bool) {
			st, ok := srv.Stream(name)
			if !ok {
				return nil, false
			}
			return srv.Source(st), true
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	hs := origin.NewHTTPServer(srv.Handler(), log)
	log.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "streams", names)
	errc := make(chan error, 1)
	go func() {
		if cfg.tlsCert != "" {
			errc <- hs.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
			return
		}
		errc <- hs.Serve(ln)
	}()
	if internal != nil { // the in-process clients' plain HTTP, on loopback
		go func() { _ = hs.Serve(internal) }()
	}

	seedCtx, stopSeeds := context.WithCancel(ctx)
	for _, name := range names {
		sd.Run(seedCtx, name)
	}

	demoCtx, stopDemo := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if cfg.demo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runDemo(demoCtx, self+"/whip/demo", demoKey, log)
		}()
		log.Info("demo stream", "hls", fmt.Sprintf("%s://%s/live/demo/index.m3u8", scheme, ln.Addr()))
	}

	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down")
	stopSeeds()
	sd.Wait()
	stopDemo()
	wg.Wait()
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	switch serr := hs.Shutdown(shutdownCtx); {
	case errors.Is(serr, context.DeadlineExceeded):
		// Requests still running, or connections a client opened and
		// sent nothing on (net/http waits 5 s for those): cut them.
		log.Warn("connections still open 5 s into the shutdown: closed")
		_ = hs.Close()
	case serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil:
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// runDemo publishes the built-in clip over WHIP into this server's own SFU, so
// that the demo takes the whole path a broadcaster's stream takes. It
// reconnects if the session fails.
func runDemo(ctx context.Context, endpoint, key string, log *slog.Logger) {
	clip, err := media.DemoClip()
	if err != nil {
		log.Error("demo clip", "err", err)
		return
	}
	backoff := time.Second
	for ctx.Err() == nil {
		err := publish.Run(ctx, publish.Params{
			Endpoint: endpoint, Token: key, Clip: clip, Logger: log,
			SettingEngine: sfu.LoopbackICE(0).SettingEngine(),
			OnConnected:   func() { backoff = time.Second },
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("demo publisher stopped; retrying", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// callICE converts the ICE servers for call clients.
func callICE(in []webrtc.ICEServer) []call.ICE {
	out := make([]call.ICE, 0, len(in))
	for _, s := range in {
		c := call.ICE{URLs: s.URLs, Username: s.Username}
		if cred, ok := s.Credential.(string); ok {
			c.Credential = cred
		}
		out = append(out, c)
	}
	return out
}

func randomKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// defaultChatDir is $XDG_STATE_HOME/seedcast/chat (~/.local/state/…), or
// empty (memory only) when there is no home.
func defaultChatDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "seedcast", "chat")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "seedcast", "chat")
	}
	return ""
}
