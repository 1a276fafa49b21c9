package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/sfu/call"
)

// PublishOptions says what a client sends.
type PublishOptions struct {
	Audio bool
	Video bool
	// Simulcast sends the video in three layers, q, h and f, at a tenth,
	// three tenths and all of VideoKbps.
	Simulcast bool
	VideoKbps int // the full layer's rate; default 600
	// Level returns the RFC 6464 level of the next audio packet (0 loud,
	// 127 silent); default 40, speech.
	Level func() uint8
}

// payload layout: NAL header bytes | "SC" | layer | seq u32 | sent ns i64 | filler
const magic = "SC"

func makePayload(nal []byte, layer byte, seq uint32, size int) []byte {
	b := make([]byte, 0, max(size, len(nal)+15))
	b = append(b, nal...)
	b = append(b, magic...)
	b = append(b, layer)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixNano()))
	for len(b) < size {
		b = append(b, byte(len(b)))
	}
	return b
}

func parsePayload(p []byte, video bool) (layer byte, sent time.Time, ok bool) {
	off := 1
	if video && len(p) > 0 && p[0]&0x1f == 28 { // FU-A
		off = 2
	}
	if len(p) < off+15 || string(p[off:off+2]) != magic {
		return 0, time.Time{}, false
	}
	r := p[off+2:]
	return r[0], time.Unix(0, int64(binary.BigEndian.Uint64(r[5:13]))), true
}

// sender writes the synthetic media.
type sender struct {
	video  []*webrtc.TrackLocalStaticRTP // by layer
	rids   []string
	rates  []int // bit/s by layer
	audio  *webrtc.TrackLocalStaticRTP
	level  func() uint8
	key    []atomic.Bool
	active []atomic.Bool
	quit   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	levelExt, midExt, ridExt uint8
	mid                      string
}

func (s *sender) stop() {
	s.once.Do(func() { close(s.quit) })
	s.wg.Wait()
}

// setActive pauses the layers not named (dynacast).
func (s *sender) setActive(rids []string) {
	for i, r := range s.rids {
		on := false
		for _, a := range rids {
			on = on || a == r
		}
		if on && !s.active[i].Load() {
			s.key[i].Store(true) // a resumed layer starts with a keyframe
		}
		s.active[i].Store(on)
	}
}

// Publish starts sending: it makes the publish connection, sends the
// offer with the tracks' descriptions and applies the answer.
func (c *Client) Publish(ctx context.Context, o PublishOptions) error {
	if o.VideoKbps <= 0 {
		o.VideoKbps = 600
	}
	if o.Level == nil {
		o.Level = func() uint8 { return 40 }
	}
	c.mu.Lock()
	if c.pub != nil {
		c.mu.Unlock()
		return fmt.Errorf("client: already publishing")
	}
	pc, err := c.p.API.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.pub = pc
	c.mu.Unlock()
	pc.OnICECandidate(c.trickle("publish"))
	s := &sender{level: o.Level, quit: make(chan struct{})}
	var vsender, asender *webrtc.RTPSender
	if o.Video {
		codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
		layers := []string{""}
		s.rates = []int{o.VideoKbps * 1000}
		if o.Simulcast {
			layers = []string{"q", "h", "f"}
			s.rates = []int{o.VideoKbps * 100, o.VideoKbps * 300, o.VideoKbps * 1000}
		}
		for i, rid := range layers {
			var opts []func(*webrtc.TrackLocalStaticRTP)
			if rid != "" {
				opts = append(opts, webrtc.WithRTPStreamID(rid))
			}
			t, err := webrtc.NewTrackLocalStaticRTP(codec, "camera", "client", opts...)
			if err != nil {
				return err
			}
			s.video = append(s.video, t)
			s.rids = append(s.rids, rid)
			if i == 0 {
				tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
				if err != nil {
					return err
				}
				vsender = tr.Sender()
			} else if err := vsender.AddEncoding(t); err != nil {
				return err
			}
		}
		s.key = make([]atomic.Bool, len(layers))
		s.active = make([]atomic.Bool, len(layers))
		for i := range s.key {
			s.key[i].Store(true)
			s.active[i].Store(true)
		}
	}
	if o.Audio {
		t, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "microphone", "client")
		if err != nil {
			return err
		}
		s.audio = t
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		asender = tr.Sender()
	}
	if err := c.exchange(ctx, pc, false); err != nil {
		return err
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == vsender && vsender != nil {
			s.mid = tr.Mid()
		}
	}
	if vsender != nil {
		for _, e := range vsender.GetParameters().HeaderExtensions {
			switch e.URI {
			case sdp.SDESMidURI:
				s.midExt = uint8(e.ID)
			case sdp.SDESRTPStreamIDURI:
				s.ridExt = uint8(e.ID)
			}
		}
		for i, rid := range s.rids {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				for {
					pkts, _, err := vsender.ReadSimulcastRTCP(rid)
					if err != nil {
						return
					}
					for _, p := range pkts {
						switch p.(type) {
						case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
							s.key[i].Store(true)
						}
					}
				}
			}()
		}
	}
	if asender != nil {
		for _, e := range asender.GetParameters().HeaderExtensions {
			if e.URI == "urn:ietf:params:rtp-hdrext:ssrc-audio-level" {
				s.levelExt = uint8(e.ID)
			}
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				if _, _, err := asender.ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}
	c.mu.Lock()
	c.sender = s
	c.mu.Unlock()
	s.wg.Add(1)
	go s.run()
	return nil
}

// exchange sends the publish connection's offer and applies the answer.
func (c *Client) exchange(ctx context.Context, pc *webrtc.PeerConnection, iceRestart bool) error {
	offer, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: iceRestart})
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	var metas []call.TrackMeta
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == nil || tr.Sender().Track() == nil {
			continue
		}
		m := call.TrackMeta{Mid: tr.Mid(), Source: call.SourceMicrophone}
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			m.Source, m.Width, m.Height = call.SourceCamera, 1280, 720
		}
		metas = append(metas, m)
	}
	ref := strconv.FormatUint(c.refs.Add(1), 10)
	ch := make(chan call.Out, 1)
	c.mu.Lock()
	c.answers[ref] = ch
	c.mu.Unlock()
	if err := c.Send(call.Msg{Type: call.TypePublish, Ref: ref, SDP: pc.LocalDescription().SDP, Tracks: metas}); err != nil {
		return err
	}
	select {
	case o := <-ch:
		if o.Type == call.TypeError {
			return fmt.Errorf("client: publish: %s: %s", o.Code, o.Message)
		}
		return pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: o.SDP})
	case <-ctx.Done():
		return ctx.Err()
	}
}

// renegotiate offers the publish connection again (an ICE restart).
func (c *Client) renegotiate(ctx context.Context, iceRestart bool) error {
	c.mu.Lock()
	pc := c.pub
	c.mu.Unlock()
	return c.exchange(ctx, pc, iceRestart)
}

// Unpublish stops sending the tracks of one kind and renegotiates.
func (c *Client) Unpublish(ctx context.Context, kind webrtc.RTPCodecType) error {
	c.mu.Lock()
	pc := c.pub
	c.mu.Unlock()
	if pc == nil {
		return fmt.Errorf("client: not publishing")
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() == kind && tr.Sender() != nil && tr.Sender().Track() != nil {
			if err := pc.RemoveTrack(tr.Sender()); err != nil {
				return err
			}
		}
	}
	return c.exchange(ctx, pc, false)
}

// run sends 30 video frames and 50 audio packets a second.
func (s *sender) run() {
	defer s.wg.Done()
	rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
	seq := make([]uint16, len(s.video))
	ts := make([]uint32, len(s.video))
	for i := range seq {
		seq[i], ts[i] = uint16(rng.Uint32()), rng.Uint32()
	}
	aseq, ats := uint16(rng.Uint32()), rng.Uint32()
	frames := time.NewTicker(time.Second / 30)
	audio := time.NewTicker(20 * time.Millisecond)
	defer frames.Stop()
	defer audio.Stop()
	var n uint32
	for {
		select {
		case <-s.quit:
			return
		case <-audio.C:
			if s.audio == nil {
				continue
			}
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: ats}, Payload: makePayload([]byte{0xfc}, 'a', n, 80)}
			if s.levelExt != 0 {
				_ = p.Header.SetExtension(s.levelExt, []byte{s.level() & 0x7f})
			}
			_ = s.audio.WriteRTP(p)
			aseq++
			ats += 960
		case <-frames.C:
			n++
			for i, t := range s.video {
				if !s.active[i].Load() {
					continue
				}
				key := s.key[i].Swap(false) || n%90 == 0
				bytes := s.rates[i] / 8 / 30
				var payloads [][]byte
				if key {
					payloads = append(payloads, makePayload([]byte{0x67}, layerByte(s.rids[i]), n, 30))
				}
				count := max(1, (bytes+999)/1000)
				for j := range count {
					nal := byte(1)
					if key {
						nal = 5
					}
					fu := nal
					if j == 0 {
						fu |= 0x80
					}
					if j == count-1 {
						fu |= 0x40
					}
					payloads = append(payloads, makePayload([]byte{0x60 | 28, fu}, layerByte(s.rids[i]), n, min(1000, max(bytes, 40))))
				}
				for k, pl := range payloads {
					p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq[i], Timestamp: ts[i], Marker: k == len(payloads)-1}, Payload: pl}
					if s.rids[i] != "" && s.midExt != 0 && s.ridExt != 0 {
						_ = p.Header.SetExtension(s.midExt, []byte(s.mid))
						_ = p.Header.SetExtension(s.ridExt, []byte(s.rids[i]))
					}
					_ = t.WriteRTP(p)
					seq[i]++
				}
				ts[i] += 3000
			}
		}
	}
}

func layerByte(rid string) byte {
	if rid == "" {
		return 'v'
	}
	return rid[0]
}
