package sfu

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// h264Profiles are the profile_idc and constraint bytes (hex) of the H.264
// profiles the server registers.
var h264Profiles = []string{"42e0", "4200", "4d00", "6400", "640c"}

// checkOffer parses an SDP offer and checks it carries media the room kind
// accepts: a broadcast takes at most one video section (H.264,
// packetization-mode=1) and one audio section (Opus); a call also takes VP8.
func checkOffer(offer string, kind RoomKind) (*sdp.SessionDescription, error) {
	if strings.TrimSpace(offer) == "" {
		return nil, fmt.Errorf("%w: empty body", ErrBadOffer)
	}
	sd := &sdp.SessionDescription{}
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	var video, audio, supported int
	for _, md := range sd.MediaDescriptions {
		switch md.MediaName.Media {
		case "video":
			video++
			if hasVideoCodec(md, kind) {
				supported++
			} else if kind == RoomKindBroadcast {
				return nil, fmt.Errorf("%w: video section %d has no H.264 with packetization-mode=1 "+
					"(broadcasts carry H.264 and Opus only)", ErrUnsupportedCodec, video)
			}
		case "audio":
			audio++
			if hasCodec(md, "opus") {
				supported++
			} else if kind == RoomKindBroadcast {
				return nil, fmt.Errorf("%w: audio section %d has no Opus", ErrUnsupportedCodec, audio)
			}
		}
	}
	if kind == RoomKindBroadcast && (video > 1 || audio > 1) {
		return nil, fmt.Errorf("%w: a broadcast takes at most one video and one audio section (got %d and %d)",
			ErrBadOffer, video, audio)
	}
	if supported == 0 {
		return nil, fmt.Errorf("%w: the offer has no audio or video section with a supported codec", ErrUnsupportedCodec)
	}
	return sd, nil
}

// rtpmaps returns a media section's payload types by lower-case encoding
// name, and its fmtp lines by payload type.
func rtpmaps(md *sdp.MediaDescription) (byName map[string][]string, fmtp map[string]string) {
	byName = map[string][]string{}
	fmtp = map[string]string{}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			pt, enc, ok := strings.Cut(a.Value, " ")
			if !ok {
				continue
			}
			name, _, _ := strings.Cut(enc, "/")
			name = strings.ToLower(strings.TrimSpace(name))
			byName[name] = append(byName[name], pt)
		case "fmtp":
			pt, params, ok := strings.Cut(a.Value, " ")
			if ok {
				fmtp[pt] = params
			}
		}
	}
	return byName, fmtp
}

func hasCodec(md *sdp.MediaDescription, name string) bool {
	byName, _ := rtpmaps(md)
	return len(byName[name]) > 0
}

func hasVideoCodec(md *sdp.MediaDescription, kind RoomKind) bool {
	byName, fmtp := rtpmaps(md)
	if kind == RoomKindCall && len(byName["vp8"]) > 0 {
		return true
	}
	for _, pt := range byName["h264"] {
		f := fmtp[pt]
		if fmtpParam(f, "packetization-mode") != "1" {
			continue
		}
		plid := fmtpParam(f, "profile-level-id")
		for _, p := range h264Profiles {
			if profileMatches(plid, p+"1f") {
				return true
			}
		}
	}
	return false
}

// canReceive reports whether an offer's media section lets the offerer
// receive media.
func canReceive(md *sdp.MediaDescription) bool {
	_, recv := directions(md)
	return recv
}

// directions says whether the side that wrote a media section sends on it
// and receives on it (a rejected section, port 0, does neither).
func directions(md *sdp.MediaDescription) (send, recv bool) {
	if md.MediaName.Port.Value == 0 {
		return false, false
	}
	send, recv = true, true
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendonly":
			recv = false
		case "recvonly":
			send = false
		case "inactive":
			send, recv = false, false
		}
	}
	return send, recv
}

// offerUfrag returns the ICE ufrag of an SDP (session or first media level).
func offerUfrag(sd *sdp.SessionDescription) string {
	if v, ok := sd.Attribute("ice-ufrag"); ok {
		return v
	}
	for _, md := range sd.MediaDescriptions {
		if v, ok := md.Attribute("ice-ufrag"); ok {
			return v
		}
	}
	return ""
}
