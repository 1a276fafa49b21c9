package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/seedcast/seedcast/media"
)

// Params configures a publisher.
type Params struct {
	Endpoint string // WHIP endpoint URL, e.g. http://127.0.0.1:8080/whip/demo
	Token    string // stream key, sent as Authorization: Bearer
	Clip     *media.Clip
	Loops    int         // 0 = forever
	Clock    media.Clock // pacing; nil means the system clock
	// SettingEngine configures ICE (loopback-only in tests); zero value is
	// pion's default.
	SettingEngine webrtc.SettingEngine
	HTTPClient    *http.Client
	Logger        *slog.Logger
	// ConnectTimeout bounds the WHIP exchange and ICE/DTLS set-up (default 15 s).
	ConnectTimeout time.Duration
	// OnConnected is called once the peer connection is up (optional).
	OnConnected func()
}

// Errors of the publisher.
var (
	ErrRejected = errors.New("publish: WHIP endpoint refused the offer")
	ErrConnect  = errors.New("publish: could not connect")
)

// Run publishes p.Clip until ctx ends or the loops are played, then ends the
// WHIP session with DELETE.
func Run(ctx context.Context, p Params) error {
	if p.Clip == nil || p.Clip.Video == nil && p.Clip.Audio == nil {
		return errors.New("publish: no media")
	}
	if p.HTTPClient == nil {
		p.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.ConnectTimeout <= 0 {
		p.ConnectTimeout = 15 * time.Second
	}
	pc, video, audio, err := newPeer(p)
	if err != nil {
		return err
	}
	defer pc.Close()

	connected := make(chan struct{})
	failed := make(chan struct{})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.Logger.Debug("publisher connection", "state", s)
		switch s {
		case webrtc.PeerConnectionStateConnected:
			closeOnce(connected)
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			closeOnce(failed)
		}
	})

	setupCtx, cancel := context.WithTimeout(ctx, p.ConnectTimeout)
	defer cancel()
	location, err := offer(setupCtx, p, pc)
	if err != nil {
		return err
	}
	defer endSession(p, location)
	select {
	case <-connected:
	case <-failed:
		return fmt.Errorf("%w: ICE/DTLS failed", ErrConnect)
	case <-setupCtx.Done():
		return fmt.Errorf("%w: %v", ErrConnect, setupCtx.Err())
	}
	p.Logger.Info("publishing", "endpoint", p.Endpoint, "session", location)
	if p.OnConnected != nil {
		p.OnConnected()
	}

	playCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-failed:
			stop()
		case <-playCtx.Done():
		}
	}()
	err = play(playCtx, p, video, audio)
	select {
	case <-failed:
		return fmt.Errorf("%w: connection lost", ErrConnect)
	default:
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

func newPeer(p Params) (*webrtc.PeerConnection, *webrtc.TrackLocalStaticSample, *webrtc.TrackLocalStaticSample, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}, {Type: "transport-cc"}}},
		PayloadType: 102,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, nil, err
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, nil, nil, err
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(p.SettingEngine))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, nil, err
	}
	var video, audio *webrtc.TrackLocalStaticSample
	add := func(c webrtc.RTPCodecCapability, id string) (*webrtc.TrackLocalStaticSample, error) {
		t, err := webrtc.NewTrackLocalStaticSample(c, id, "seedcast")
		if err != nil {
			return nil, err
		}
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, err
		}
		go drainRTCP(tr.Sender()) // interceptors need RTCP read
		return t, nil
	}
	if p.Clip.Video != nil {
		if video, err = add(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video"); err != nil {
			pc.Close()
			return nil, nil, nil, err
		}
	}
	if p.Clip.Audio != nil {
		if audio, err = add(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio"); err != nil {
			pc.Close()
			return nil, nil, nil, err
		}
	}
	return pc, video, audio, nil
}

func drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// offer runs the WHIP exchange and returns the session URL.
func offer(ctx context.Context, p Params, pc *webrtc.PeerConnection) (string, error) {
	o, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("%w: ICE gathering: %v", ErrConnect, ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Endpoint, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	resp, err := p.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrConnect, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrConnect, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%w: %s: %s", ErrRejected, resp.Status, bytes.TrimSpace(body))
	}
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("%w: no Location: %v", ErrRejected, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		endSession(p, loc.String())
		return "", fmt.Errorf("%w: answer: %v", ErrRejected, err)
	}
	return loc.String(), nil
}

// endSession deletes the WHIP session (best effort, bounded in time).
func endSession(p Params, location string) {
	if _, err := url.Parse(location); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return
	}
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	if resp, err := p.HTTPClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// play paces the clip into the tracks.
func play(ctx context.Context, p Params, video, audio *webrtc.TrackLocalStaticSample) error {
	loop, err := media.NewLoop(media.LoopParams{Clip: p.Clip, Clock: p.Clock, Loops: p.Loops})
	if err != nil {
		return err
	}
	// A sample's duration is only known from the next one of its kind, so each
	// is written when its successor arrives (one frame of delay, as encoders have).
	var pending [2]*media.AccessUnit
	write := func(kind media.Kind, au media.AccessUnit, next time.Duration) error {
		d := next - au.DTS
		if kind == media.KindVideo {
			data := au.Data
			if p.Clip.Video.Format == media.AVCC {
				data = toAnnexB(data)
			}
			return video.WriteSample(pionmedia.Sample{Data: data, Duration: d})
		}
		return audio.WriteSample(pionmedia.Sample{Data: au.Data, Duration: d})
	}
	err = loop.Run(ctx, func(kind media.Kind, au media.AccessUnit) error {
		i := 0
		if kind == media.KindAudio {
			i = 1
		}
		if prev := pending[i]; prev != nil {
			if err := write(kind, *prev, au.DTS); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return err
			}
		}
		pending[i] = &au
		return nil
	})
	return err
}

// toAnnexB converts an AVCC sample (length-prefixed NAL units, as MP4 stores
// them) to the Annex-B form pion's H.264 payloader takes.
func toAnnexB(avcc []byte) []byte {
	return avc.ConvertSampleToByteStream(bytes.Clone(avcc))
}
