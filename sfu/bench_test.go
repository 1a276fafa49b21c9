package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// discardWriter is a TrackLocalWriter that drops packets.
type discardWriter struct{}

func (discardWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) { return len(p), nil }
func (discardWriter) Write(b []byte) (int, error)                   { return len(b), nil }

// benchLayer builds a room track with one layer and n bound down tracks
// writing nowhere, without any network.
func benchLayer(b *testing.B, n int) (*layer, *Server) {
	b.Helper()
	s, err := NewServer(ServerParams{ICE: LoopbackICE(time.Second)})
	if err != nil {
		b.Fatal(err)
	}
	room, err := s.OpenRoom("bench", RoomKindBroadcast)
	if err != nil {
		b.Fatal(err)
	}
	codec := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000},
		PayloadType:        102,
	}
	t := room.track("video", webrtc.RTPCodecTypeVideo, codec)
	pub := &session{id: "pub", room: room}
	l := &layer{t: t, pub: pub, src: 1, ck: codecH264, limiter: newRateLimiter(time.Second)}
	l.info = TrackInfo{Room: "bench", ID: "video", MimeType: codec.MimeType, ClockRate: 90000}
	layers := []*layer{l}
	t.layers.Store(&layers)
	for i := 0; i < n; i++ {
		d := newDownTrack(&session{id: fmt.Sprint(i), room: room}, t, "bench")
		d.ws, d.ssrc, d.pt, d.ready = discardWriter{}, uint32(1000+i), 96, true
		d.cur, d.target = l, l
		t.addDown(d)
	}
	return l, s
}

// BenchmarkForward measures the per-packet cost of fanning one received
// packet out to n subscribers (rewriting included, network excluded).
func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			l, s := benchLayer(b, n)
			defer s.Close()
			pkt := &rtp.Packet{
				Header:  rtp.Header{Version: 2, PayloadType: 102, SSRC: 42, Timestamp: 1000},
				Payload: make([]byte, 1100),
			}
			pkt.Payload[0] = 0x41                        // non-IDR slice
			_ = pkt.Header.SetExtension(3, []byte{1, 2}) // a publisher extension to strip
			now := time.Unix(1, 0)
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt.Payload)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pkt.SequenceNumber++
				if i%4 == 0 {
					pkt.Timestamp += 3000
				}
				l.handle(pkt, now)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
		})
	}
}

// BenchmarkRewrite measures the rewriter alone.
func BenchmarkRewrite(b *testing.B) {
	rw := newRewriter(90000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rw.rewrite(uint64(i>>12), uint16(i), uint32(i*3000), int64(i))
	}
}
