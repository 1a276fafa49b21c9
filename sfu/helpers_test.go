package sfu

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	testStream = "live"
	testKey    = "s3cret-key"
)

// testEnv is a server behind an httptest server.
type testEnv struct {
	t      testing.TB
	s      *Server
	ts     *httptest.Server
	client *http.Client
	reg    *prometheus.Registry
}

func newTestEnv(t testing.TB, mod func(*ServerParams)) *testEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	p := ServerParams{
		Registerer:      reg,
		ICE:             LoopbackICE(2 * time.Second),
		PublishAuth:     StreamKeys{testStream: testKey, "other": "other-key"},
		RoomIdleTimeout: 20 * time.Second,
		ConnectTimeout:  10 * time.Second,
	}
	if mod != nil {
		mod(&p)
	}
	s, err := NewServer(p)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	tr := &http.Transport{}
	env := &testEnv{t: t, s: s, ts: ts, client: &http.Client{Transport: tr}, reg: reg}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return env
}

// post sends body to path with a content type and optional bearer token.
func (e *testEnv) post(ctx context.Context, path, ctype, token, body string) (*http.Response, string) {
	return e.do(ctx, http.MethodPost, path, ctype, token, body, nil)
}

func (e *testEnv) do(ctx context.Context, method, path, ctype, token, body string, hdr map[string]string) (*http.Response, string) {
	e.t.Helper()
	url := path
	if strings.HasPrefix(path, "/") {
		url = e.ts.URL + path
	}
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// clientAPI is the pion API of test peers: H.264 (pmode 1) and Opus, with
// the simulcast and audio level extensions and pion's default interceptors.
func clientAPI(t testing.TB, mux net.PacketConn, vp8Only bool) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	video := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			RTCPFeedback: fb,
		},
		PayloadType: 125,
	}
	if vp8Only {
		video = webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb},
			PayloadType:        96,
		}
	}
	must(t, me.RegisterCodec(video, webrtc.RTPCodecTypeVideo))
	must(t, me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		PayloadType:        109,
	}, webrtc.RTPCodecTypeAudio))
	must(t, me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI}, webrtc.RTPCodecTypeAudio))
	ir := &interceptor.Registry{}
	must(t, webrtc.RegisterDefaultInterceptors(me, ir))
	se := LoopbackICE(2 * time.Second).SettingEngine()
	if mux != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, mux))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// offerFor makes an SDP offer from pc with all candidates gathered.
func offerFor(ctx context.Context, t testing.TB, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	must(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	must(t, pc.SetLocalDescription(offer))
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("gathering timed out")
	}
	return pc.LocalDescription().SDP
}

// --- synthetic media ---------------------------------------------------

// Test payloads carry a header and a trailing FNV-64 hash of everything
// before it, so the receiver can check they arrived intact.
//
//	NAL header bytes (1 or 2) | magic "SC" | layer | frame u32 | idx u8 |
//	count u8 | key u8 | sent unix ns i64 | filler | fnv64
type payloadInfo struct {
	layer    byte
	frame    uint32
	idx      uint8
	count    uint8
	key      bool
	sent     time.Time
	nalType  byte
	fuStart  bool
	keyStart bool
}

const payloadMagic = "SC"

func makePayload(nal []byte, layer byte, frame uint32, idx, count uint8, key bool, filler int, rng *rand.Rand) []byte {
	var b bytes.Buffer
	b.Write(nal)
	b.WriteString(payloadMagic)
	b.WriteByte(layer)
	_ = binary.Write(&b, binary.BigEndian, frame)
	b.WriteByte(idx)
	b.WriteByte(count)
	k := byte(0)
	if key {
		k = 1
	}
	b.WriteByte(k)
	_ = binary.Write(&b, binary.BigEndian, time.Now().UnixNano())
	for range filler {
		b.WriteByte(byte(rng.IntN(256)))
	}
	h := fnv.New64a()
	h.Write(b.Bytes())
	return h.Sum(b.Bytes())
}

var errCorrupt = errors.New("corrupt payload")

// parsePayload checks a test payload's hash and returns its header.
// nalLen is 0 for audio.
func parsePayload(p []byte, video bool) (payloadInfo, error) {
	var pi payloadInfo
	if len(p) < 8 {
		return pi, errCorrupt
	}
	body, sum := p[:len(p)-8], p[len(p)-8:]
	h := fnv.New64a()
	h.Write(body)
	if !bytes.Equal(h.Sum(nil), sum) {
		return pi, errCorrupt
	}
	off := 1
	if video {
		pi.nalType = p[0] & 0x1f
		if pi.nalType == naluFUA {
			pi.fuStart = p[1]&0x80 != 0
			off = 2
		}
		pi.keyStart = h264StartsKeyframe(p)
	}
	r := body[off:]
	if len(r) < 2+1+4+3+8 || string(r[:2]) != payloadMagic {
		return pi, errCorrupt
	}
	pi.layer = r[2]
	pi.frame = binary.BigEndian.Uint32(r[3:])
	pi.idx, pi.count, pi.key = r[7], r[8], r[9] == 1
	pi.sent = time.Unix(0, int64(binary.BigEndian.Uint64(r[10:])))
	return pi, nil
}

// --- publisher ------------------------------------------------------------

type pubOptions struct {
	rids     []string // simulcast layers; nil for a single video stream
	noAudio  bool
	mux      net.PacketConn // optional ICE UDP mux socket
	keyEvery int            // frames between periodic keyframes (0: on PLI only)
	fps      int
	firstSeq uint16
	vp8Offer bool
	perFrame int // video packets per frame without simulcast; default 3
	// exchange, when set, sends the offer in place of a WHIP POST and
	// returns the answer (call participants).
	exchange func(offer string) (string, error)
	level    *atomic.Int32 // RFC 6464 level sent with audio (default 30: speech)
}

// testPublisher is a pion WHIP client sending synthetic H.264 and Opus.
type testPublisher struct {
	t        testing.TB
	pc       *webrtc.PeerConnection
	location string
	video    []*webrtc.TrackLocalStaticRTP
	audio    *webrtc.TrackLocalStaticRTP
	rids     []string
	opts     pubOptions

	keyWanted []atomic.Bool // per layer
	plis      atomic.Int64
	// paused layers send nothing (a browser that dropped the layer);
	// a layer ignores as many PLIs as its lostPLIs says (lost on the way).
	paused    []atomic.Bool
	lostPLIs  []atomic.Int32
	sent      atomic.Int64 // video packets written
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// packetsPerFrame per layer index: layer i sends i+1 packets per frame
// (3 without simulcast), plus an SPS packet on keyframes.
func (p *testPublisher) packetsPerFrame(i int) int {
	if len(p.rids) == 0 {
		if p.opts.perFrame > 0 {
			return p.opts.perFrame
		}
		return 3
	}
	return i + 1
}

func startPublisher(ctx context.Context, t testing.TB, env *testEnv, stream, key string, o pubOptions) (*testPublisher, *http.Response, string) {
	t.Helper()
	if o.fps == 0 {
		o.fps = 30
	}
	api := clientAPI(t, o.mux, o.vp8Offer)
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	p := &testPublisher{t: t, pc: pc, rids: o.rids, opts: o, stop: make(chan struct{})}
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}
	if o.vp8Offer {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	}
	var sender *webrtc.RTPSender
	if len(o.rids) == 0 {
		v, err := webrtc.NewTrackLocalStaticRTP(codec, "video", "pub")
		must(t, err)
		p.video = append(p.video, v)
		tr, err := pc.AddTransceiverFromTrack(v, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		must(t, err)
		sender = tr.Sender()
	} else {
		for i, rid := range o.rids {
			v, err := webrtc.NewTrackLocalStaticRTP(codec, "video", "pub", webrtc.WithRTPStreamID(rid))
			must(t, err)
			p.video = append(p.video, v)
			if i == 0 {
				tr, err := pc.AddTransceiverFromTrack(v, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
				must(t, err)
				sender = tr.Sender()
			} else {
				must(t, sender.AddEncoding(v))
			}
		}
	}
	p.keyWanted = make([]atomic.Bool, len(p.video))
	p.paused = make([]atomic.Bool, len(p.video))
	p.lostPLIs = make([]atomic.Int32, len(p.video))
	for i := range p.keyWanted {
		p.keyWanted[i].Store(true)
	}
	var audioSender *webrtc.RTPSender
	if !o.noAudio {
		a, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pub")
		must(t, err)
		p.audio = a
		tr, err := pc.AddTransceiverFromTrack(a, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		must(t, err)
		audioSender = tr.Sender()
	}
	offer := offerFor(ctx, t, pc)
	var resp *http.Response
	var body string
	if o.exchange != nil {
		ans, err := o.exchange(offer)
		if err != nil {
			_ = pc.Close()
			return nil, nil, err.Error()
		}
		body = ans
	} else {
		resp, body = env.post(ctx, "/whip/"+stream, "application/sdp", key, offer)
		if resp.StatusCode != http.StatusCreated {
			_ = pc.Close()
			return nil, resp, body
		}
		p.location = resp.Header.Get("Location")
	}
	must(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}))

	// RTCP: PLIs make the next frame of that layer a keyframe.
	for i := range p.video {
		rid := ""
		if len(o.rids) > 0 {
			rid = o.rids[i]
		}
		i := i
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				pkts, _, err := sender.ReadSimulcastRTCP(rid)
				if err != nil {
					return
				}
				for _, pk := range pkts {
					switch pk.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						if p.lostPLIs[i].Add(-1) >= 0 {
							continue
						}
						p.lostPLIs[i].Store(0)
						p.plis.Add(1)
						p.keyWanted[i].Store(true)
					}
				}
			}
		}()
	}
	if audioSender != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				if _, _, err := audioSender.ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}

	var midExt, ridExt, levelExt uint8
	for _, e := range sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midExt = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridExt = uint8(e.ID)
		}
	}
	if audioSender != nil {
		for _, e := range audioSender.GetParameters().HeaderExtensions {
			if e.URI == AudioLevelURI {
				levelExt = uint8(e.ID)
			}
		}
	}
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}
	p.wg.Add(1)
	go p.run(midExt, ridExt, levelExt, mid)
	return p, resp, body
}

// run sends video frames at fps and 20 ms audio packets until stopped.
func (p *testPublisher) run(midExt, ridExt, levelExt uint8, mid string) {
	defer p.wg.Done()
	rng := rand.New(rand.NewPCG(1, 2))
	seqs := make([]uint16, len(p.video))
	tsBase := make([]uint32, len(p.video))
	for i := range seqs {
		seqs[i] = p.opts.firstSeq + uint16(rng.IntN(1000))
		tsBase[i] = rng.Uint32()
	}
	aseq, ats := uint16(rng.IntN(60000)), rng.Uint32()
	frameTick := time.NewTicker(time.Second / time.Duration(p.opts.fps))
	audioTick := time.NewTicker(20 * time.Millisecond)
	defer frameTick.Stop()
	defer audioTick.Stop()
	var frame, aframe uint32
	for {
		select {
		case <-p.stop:
			return
		case <-audioTick.C:
			if p.audio == nil {
				continue
			}
			pkt := &rtp.Packet{
				Header:  rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: ats, Marker: aframe == 0},
				Payload: makePayload([]byte{0xfc}, 'a', aframe, 0, 1, true, 60, rng),
			}
			if levelExt != 0 {
				lv := byte(30)
				if p.opts.level != nil {
					lv = byte(p.opts.level.Load())
				}
				_ = pkt.Header.SetExtension(levelExt, []byte{lv})
			}
			_ = p.audio.WriteRTP(pkt)
			aseq++
			ats += 960
			aframe++
		case <-frameTick.C:
			for i, track := range p.video {
				if p.paused[i].Load() {
					continue
				}
				key := p.keyWanted[i].Swap(false) || (p.opts.keyEvery > 0 && int(frame)%p.opts.keyEvery == 0)
				n := p.packetsPerFrame(i)
				layer := byte('v')
				if len(p.rids) > 0 {
					layer = p.rids[i][0]
				}
				var payloads [][]byte
				count := uint8(n)
				if key {
					count++
				}
				idx := uint8(0)
				if key {
					payloads = append(payloads, makePayload([]byte{0x67}, layer, frame, idx, count, true, 20, rng))
					idx++
				}
				for j := 0; j < n; j++ {
					nalType := byte(1)
					if key {
						nalType = naluIDR
					}
					fu := nalType
					if j == 0 {
						fu |= 0x80
					}
					if j == n-1 {
						fu |= 0x40
					}
					payloads = append(payloads, makePayload([]byte{0x60 | naluFUA, fu}, layer, frame, idx, count, key, 900, rng))
					idx++
				}
				for k, pl := range payloads {
					pkt := &rtp.Packet{
						Header: rtp.Header{
							Version: 2, SequenceNumber: seqs[i], Timestamp: tsBase[i] + frame*3000,
							Marker: k == len(payloads)-1,
						},
						Payload: pl,
					}
					if len(p.rids) > 0 && midExt != 0 && ridExt != 0 {
						_ = pkt.Header.SetExtension(midExt, []byte(mid))
						_ = pkt.Header.SetExtension(ridExt, []byte(p.rids[i]))
					}
					_ = track.WriteRTP(pkt)
					p.sent.Add(1)
					seqs[i]++
				}
			}
			frame++
		}
	}
}

// close stops sending and closes the peer connection (a DTLS close, not a
// WHIP DELETE).
func (p *testPublisher) close() {
	p.closeOnce.Do(func() {
		close(p.stop)
		_ = p.pc.Close()
		p.wg.Wait()
	})
}

// --- subscriber -------------------------------------------------------------

type rxPacket struct {
	kind    webrtc.RTPCodecType
	seq     uint16
	ts      uint32
	ssrc    uint32
	marker  bool
	info    payloadInfo
	err     error
	arrived time.Time
}

type testSubscriber struct {
	t        testing.TB
	pc       *webrtc.PeerConnection
	location string
	id       string
	video    chan rxPacket
	audio    chan rxPacket
	wg       sync.WaitGroup
	dropped  atomic.Int64
}

func startSubscriber(ctx context.Context, t testing.TB, env *testEnv, stream, query string) (*testSubscriber, *http.Response, string) {
	t.Helper()
	api := clientAPI(t, nil, false)
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	sub := &testSubscriber{t: t, pc: pc, video: make(chan rxPacket, 1<<15), audio: make(chan rxPacket, 1<<15)}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		must(t, err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		sub.wg.Add(1)
		defer sub.wg.Done()
		ch := sub.video
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			ch = sub.audio
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			info, perr := parsePayload(pkt.Payload, tr.Kind() == webrtc.RTPCodecTypeVideo)
			rx := rxPacket{kind: tr.Kind(), seq: pkt.SequenceNumber, ts: pkt.Timestamp, ssrc: pkt.SSRC,
				marker: pkt.Marker, info: info, err: perr, arrived: time.Now()}
			select {
			case ch <- rx:
			default:
				sub.dropped.Add(1)
			}
		}
	})
	offer := offerFor(ctx, t, pc)
	resp, body := env.post(ctx, "/whep/"+stream+query, "application/sdp", "", offer)
	if resp.StatusCode != http.StatusCreated {
		_ = pc.Close()
		return nil, resp, body
	}
	sub.location = resp.Header.Get("Location")
	sub.id = sub.location[strings.LastIndex(sub.location, "/")+1:]
	must(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}))
	return sub, resp, body
}

func (s *testSubscriber) close() {
	_ = s.pc.Close()
	s.wg.Wait()
}

// next returns the next packet from ch or fails the test at ctx's end.
func next(ctx context.Context, t testing.TB, ch <-chan rxPacket) rxPacket {
	t.Helper()
	select {
	case p := <-ch:
		if p.err != nil {
			t.Fatalf("packet seq %d: %v", p.seq, p.err)
		}
		return p
	case <-ctx.Done():
		t.Fatalf("timed out waiting for a packet")
	}
	return rxPacket{}
}

// --- tap ----------------------------------------------------------------------

// recordingTap counts what a Tap receives.
type recordingTap struct {
	mu       sync.Mutex
	tracks   map[string]TrackInfo // by rid/kind key
	packets  map[string]int
	ended    map[string]int
	srs      map[string]int
	events   []PublisherEvent
	changed  chan struct{}
	badOrder atomic.Int64
}

func newRecordingTap() *recordingTap {
	return &recordingTap{
		tracks: map[string]TrackInfo{}, packets: map[string]int{}, ended: map[string]int{},
		srs: map[string]int{}, changed: make(chan struct{}, 1),
	}
}

func tapKey(t TrackInfo) string { return fmt.Sprintf("%s/%s", t.ID, t.RID) }

func (r *recordingTap) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recordingTap) OnTrack(t TrackInfo) {
	r.mu.Lock()
	r.tracks[tapKey(t)] = t
	r.mu.Unlock()
	r.poke()
}

func (r *recordingTap) OnRTP(t TrackInfo, pkt *rtp.Packet) {
	r.mu.Lock()
	if _, ok := r.tracks[tapKey(t)]; !ok {
		r.badOrder.Add(1)
	}
	r.packets[tapKey(t)]++
	r.mu.Unlock()
	r.poke()
}

func (r *recordingTap) OnSenderReport(t TrackInfo, sr *rtcp.SenderReport) {
	r.mu.Lock()
	r.srs[tapKey(t)]++
	r.mu.Unlock()
	r.poke()
}

func (r *recordingTap) OnTrackEnded(t TrackInfo) {
	r.mu.Lock()
	r.ended[tapKey(t)]++
	r.mu.Unlock()
	r.poke()
}

func (r *recordingTap) OnPublisherChange(ev PublisherEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.poke()
}

// waitUntil waits for cond (checked under r.mu) or fails at ctx's end.
func (r *recordingTap) waitUntil(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for tap: %s", what)
		}
	}
}

// makeOffer returns a gathered SDP offer from a throwaway peer connection
// with a video and an audio section in the given direction.
func makeOffer(ctx context.Context, t testing.TB, dir webrtc.RTPTransceiverDirection, vp8 bool) string {
	t.Helper()
	pc, err := clientAPI(t, nil, vp8).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: dir})
		must(t, err)
	}
	return offerFor(ctx, t, pc)
}
