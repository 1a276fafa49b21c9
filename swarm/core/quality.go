package core

import (
	"errors"
	"fmt"
	"strings"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
)

func selectRenditions(infos []manifest.RenditionInfo, quality string) ([]string, error) {
	var video, audio []manifest.RenditionInfo
	for _, r := range infos {
		if r.Kind == "audio" {
			audio = append(audio, r)
		} else {
			video = append(video, r)
		}
	}
	pick := map[string]bool{}
	for _, a := range audio {
		pick[a.Name] = true
	}
	best := func(maxHeight int) {
		var b *manifest.RenditionInfo
		for i := range video {
			v := &video[i]
			if maxHeight > 0 && v.Height > maxHeight {
				continue
			}
			if b == nil || v.Height*v.Width > b.Height*b.Width {
				b = v
			}
		}
		if b != nil {
			pick[b.Name] = true
		}
	}
	switch q := strings.ToLower(quality); {
	case q == "" || q == "auto":
		best(0)
	case q == "all":
		for _, v := range video {
			pick[v.Name] = true
		}
	case q == "audio-only" || q == "audio":
	case strings.HasSuffix(q, "p"):
		var h int
		if _, err := fmt.Sscanf(q, "%dp", &h); err != nil || h <= 0 {
			return nil, fmt.Errorf("%w: quality %q", ErrBadQuality, quality)
		}
		best(h)
		if len(video) > 0 && len(pick) == len(audio) {
			return nil, fmt.Errorf("%w: no video rendition of %s or less", ErrBadQuality, quality)
		}
	default:
		return nil, fmt.Errorf("%w: quality %q (want auto, all, audio-only or a height like 720p)", ErrBadQuality, quality)
	}
	var out []string
	for _, r := range infos {
		if pick[r.Name] && len(out) < wire.MaxRenditions {
			out = append(out, r.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the stream has no rendition for %q", ErrBadQuality, quality)
	}
	return out, nil
}

// ErrBadQuality is returned for a quality setting the stream cannot meet.
var ErrBadQuality = errors.New("swarm: quality")
