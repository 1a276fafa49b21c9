package media

import (
	"errors"
	"time"
)

// Codec names a media codec carried by a track.
type Codec string

// Codecs Seedcast carries. Broadcasts use H.264 and Opus; VP8 never reaches
// the chunker because MP4 cannot carry it.
const (
	CodecH264 Codec = "h264"
	CodecOpus Codec = "opus"
)

// Kind is "video" or "audio".
type Kind string

// Track kinds.
const (
	KindVideo Kind = "video"
	KindAudio Kind = "audio"
)

// Kind reports whether c is a video or an audio codec.
func (c Codec) Kind() Kind {
	if c == CodecOpus {
		return KindAudio
	}
	return KindVideo
}

// PayloadFormat says how an H.264 access unit's NAL units are framed.
type PayloadFormat int

// H.264 payload framings. Audio ignores the format.
const (
	// AnnexB separates NAL units with 00 00 01 / 00 00 00 01 start codes
	// (RTP depacketizers and raw .h264 files).
	AnnexB PayloadFormat = iota
	// AVCC prefixes each NAL unit with its 4-byte big-endian length (MP4 samples).
	AVCC
)

// Track describes one elementary stream.
type Track struct {
	Codec  Codec
	Format PayloadFormat // H.264 only

	// H.264 parameter sets without start codes or length prefixes. Required for
	// AVCC input (MP4 keeps them out of band); Annex-B input may carry them
	// in-band in its keyframes instead.
	SPS, PPS [][]byte
	Width    int
	Height   int

	// Opus.
	SampleRate int    // 48000 for Opus
	Channels   int    // 1 or 2
	PreSkip    uint16 // encoder delay in 48 kHz samples
}

// AccessUnit is one decodable unit: a video frame or an audio packet.
// Times are measured from the start of the stream and must not go backwards
// in decode order.
type AccessUnit struct {
	DTS time.Duration // decode time
	PTS time.Duration // presentation time; equal to DTS when frames are not reordered
	// Data is the frame: H.264 NAL units framed as the track's Format says, or one
	// Opus packet.
	Data []byte
	// Keyframe marks an H.264 IDR frame (decodable on its own). Audio packets are
	// always independent; sources set Keyframe for them too.
	Keyframe bool
	// Discontinuity marks the first unit after a gap the source could not repair
	// (lost frames, publisher reconnect).
	Discontinuity bool
}

// Errors returned by sources.
var (
	ErrNoTracks         = errors.New("media: no supported track")
	ErrUnsupportedCodec = errors.New("media: unsupported codec")
	ErrMalformed        = errors.New("media: malformed input")
)
