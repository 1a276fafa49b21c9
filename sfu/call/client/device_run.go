package client

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/media/sframe"
	"github.com/seedcast/seedcast/sfu/call"
)

// RunParams configures RunDevice: a native device that holds presence,
// rings and answers, and receives its calls' media end-to-end decrypted.
type RunParams struct {
	Server   string // http(s)://host[:port]
	Identity *Identity
	Contacts []Contact
	// AutoAnswer answers calls from this identity's other devices (the
	// server does it: docs/protocol.md §7.4). Answer answers every ring
	// from a contact (a device whose owner chose that, a kiosk).
	AutoAnswer, Answer bool
	// Ring, if set, is a contact key to ring once online.
	Ring   ed25519.PublicKey
	API    *webrtc.API
	Logger *slog.Logger
	// OnCall sees every call state of this device.
	OnCall func(call.CallInfo)
}

// MediaStats counts a call's received video frames.
type MediaStats struct {
	Frames, Decrypted, Failed atomic.Int64
}

// Runner is a running device.
type Runner struct {
	p     RunParams
	mu    sync.Mutex
	stats map[string]*MediaStats // by call id
}

// Stats returns a call's media counters (nil before it has any).
func (r *Runner) Stats(callID string) *MediaStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats[callID]
}

// NewRunner checks p.
func NewRunner(p RunParams) (*Runner, error) {
	if p.Identity == nil || p.Server == "" {
		return nil, fmt.Errorf("client: a device needs an identity and a server")
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.API == nil {
		p.API = NewAPI(webrtc.SettingEngine{})
	}
	return &Runner{p: p, stats: map[string]*MediaStats{}}, nil
}

// Run holds presence until ctx ends, connecting again after a loss with
// backoff and jitter (1 s doubling to 30 s, ±50%).
func (r *Runner) Run(ctx context.Context) error {
	ws := "ws" + strings.TrimPrefix(strings.TrimSuffix(r.p.Server, "/"), "http")
	back := time.Second
	rang := false
	for ctx.Err() == nil {
		keys := make([]ed25519.PublicKey, len(r.p.Contacts))
		for i, c := range r.p.Contacts {
			keys[i] = c.Key
		}
		d, err := DialDevice(ctx, DeviceParams{URL: ws + "/presence/ws", Key: r.p.Identity.Sign, Device: r.p.Identity.Device,
			Name: r.p.Identity.Name, Contacts: keys, AutoAnswer: r.p.AutoAnswer})
		if err != nil {
			r.p.Logger.Warn("presence: cannot connect", "err", err, "retry_in", back)
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(float64(back) * (0.5 + rand.Float64()))):
			}
			back = min(2*back, 30*time.Second)
			continue
		}
		back = time.Second
		r.p.Logger.Info("presence: online", "key", r.p.Identity.Key(), "device", r.p.Identity.Device, "contacts_online", len(d.Ready().Online))
		if r.p.Ring != nil && !rang {
			rang = true
			salt := make([]byte, 16)
			_, _ = crand.Read(salt)
			if err := d.Ring(r.p.Ring, salt); err != nil {
				r.p.Logger.Warn("ring", "err", err)
			}
		}
		r.serve(ctx, d)
		d.Close()
	}
	return ctx.Err()
}

// serve handles one presence connection's messages until it ends.
func (r *Runner) serve(ctx context.Context, d *Device) {
	seen := 0
	calls := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range calls {
			stop()
		}
	}()
	for {
		evs, err := d.Next(ctx, seen)
		if err != nil {
			return
		}
		for _, o := range evs {
			seen++
			switch o.Type {
			case call.PTypePresence:
				r.p.Logger.Info("presence", "contact", o.Key, "online", o.Here)
			case call.PTypeError:
				r.p.Logger.Warn("presence error", "code", o.Code, "message", o.Message)
			case call.PTypeCall:
				c := *o.Call
				r.p.Logger.Info("call", "id", c.ID, "state", c.State, "reason", c.Reason, "peer", c.Peer)
				if r.p.OnCall != nil {
					r.p.OnCall(c)
				}
				switch {
				case c.State == "incoming-ringing" && r.p.Answer:
					_ = d.Act(call.PTypeAnswer, c.ID)
				case c.State == "connecting" && c.Room != "" && calls[c.ID] == nil:
					cctx, stop := context.WithCancel(ctx)
					calls[c.ID] = stop
					go r.join(cctx, c)
				case c.State == "ended" && calls[c.ID] != nil:
					calls[c.ID]()
					delete(calls, c.ID)
				}
			}
		}
	}
}

// join enters a call's room and counts (and decrypts) the video it gets.
func (r *Runner) join(ctx context.Context, c call.CallInfo) {
	st := &MediaStats{}
	r.mu.Lock()
	r.stats[c.ID] = st
	r.mu.Unlock()
	var rx *sframe.Receiver
	if c.E2EE {
		key, err := r.callKey(c)
		if err != nil {
			r.p.Logger.Warn("call key", "call", c.ID, "err", err)
		} else if rx, err = sframe.NewReceiver(sframe.ReceiverParams{}); err == nil {
			err = rx.SetKey(key, 0)
		}
		if err != nil {
			rx = nil
		}
	}
	frames := &VP8Frames{OnFrame: func(f []byte) {
		st.Frames.Add(1)
		if rx == nil {
			return
		}
		if _, err := rx.Decrypt(nil, f, sframe.ClearPrefixLen(webrtc.MimeTypeVP8, f)); err != nil {
			st.Failed.Add(1)
		} else {
			st.Decrypted.Add(1)
		}
	}}
	ws := "ws" + strings.TrimPrefix(strings.TrimSuffix(r.p.Server, "/"), "http")
	cl, err := Dial(ctx, Params{URL: ws + "/call/" + c.Room + "/ws", Name: r.p.Identity.Name, Invite: c.Invite, API: r.p.API,
		AutoSubscribe: true, OnRTP: func(_, mime string, pkt *rtp.Packet) {
			if strings.EqualFold(mime, webrtc.MimeTypeVP8) {
				frames.Add(pkt)
			}
		}})
	if err != nil {
		r.p.Logger.Warn("cannot join the call's room", "call", c.ID, "err", err)
		return
	}
	r.p.Logger.Info("in the call", "call", c.ID, "room", c.Room, "e2ee", c.E2EE)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			r.p.Logger.Info("call media", "call", c.ID, "frames", st.Frames.Load(), "decrypted", st.Decrypted.Load(), "failed", st.Failed.Load())
		}
	}
	cl.Close()
	r.p.Logger.Info("left the call", "call", c.ID, "frames", st.Frames.Load(), "decrypted", st.Decrypted.Load(), "failed", st.Failed.Load())
}

// callKey is the call's base key: the pairwise key with the peer.
func (r *Runner) callKey(c call.CallInfo) ([]byte, error) {
	salt, err := base64.RawURLEncoding.DecodeString(c.Salt)
	if err != nil {
		return nil, fmt.Errorf("client: the call's salt: %w", err)
	}
	for _, k := range r.p.Contacts {
		if KeyString(k.Key) == c.Peer {
			return r.p.Identity.PairwiseKey(k, salt)
		}
	}
	return nil, fmt.Errorf("client: the caller %s is not a contact", c.Peer)
}

// VP8Frames reassembles VP8 frames from one track's RTP packets (in order,
// as on loopback): OnFrame gets each whole frame.
type VP8Frames struct {
	OnFrame func([]byte)
	mu      sync.Mutex
	cur     []byte
	ok      bool
}

// Add takes the next packet.
func (f *VP8Frames) Add(pkt *rtp.Packet) {
	var p codecs.VP8Packet
	body, err := p.Unmarshal(pkt.Payload)
	if err != nil {
		return
	}
	f.mu.Lock()
	if p.S == 1 && p.PID == 0 {
		f.cur, f.ok = append([]byte(nil), body...), true
	} else if f.ok {
		f.cur = append(f.cur, body...)
	}
	var done []byte
	if pkt.Marker && f.ok {
		done, f.cur, f.ok = f.cur, nil, false
	}
	f.mu.Unlock()
	if done != nil && f.OnFrame != nil {
		f.OnFrame(done)
	}
}
