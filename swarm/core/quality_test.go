package core

import (
	"errors"
	"slices"
	"testing"

	"github.com/seedcast/seedcast/manifest"
)

func TestSelectRenditions(t *testing.T) {
	ladder := []manifest.RenditionInfo{
		{Name: "v0", Kind: "video", Width: 1920, Height: 1080},
		{Name: "v1", Kind: "video", Width: 1280, Height: 720},
		{Name: "v2", Kind: "video", Width: 640, Height: 360},
		{Name: "a0", Kind: "audio"},
	}
	tests := []struct {
		quality string
		infos   []manifest.RenditionInfo
		want    []string
		err     bool
	}{
		{"auto", ladder, []string{"v0", "a0"}, false},
		{"", ladder, []string{"v0", "a0"}, false},
		{"all", ladder, []string{"v0", "v1", "v2", "a0"}, false},
		{"audio-only", ladder, []string{"a0"}, false},
		{"720p", ladder, []string{"v1", "a0"}, false},
		{"800p", ladder, []string{"v1", "a0"}, false},
		{"360P", ladder, []string{"v2", "a0"}, false},
		{"240p", ladder, nil, true},                 // no video that small
		{"audio-only", ladder[:3], nil, true},       // no audio at all
		{"auto", ladder[3:], []string{"a0"}, false}, // an audio-only stream
		{"fast", ladder, nil, true},                 // not a quality
		{"-5p", ladder, nil, true},
	}
	for _, tc := range tests {
		got, err := SelectRenditions(tc.infos, tc.quality)
		if tc.err {
			if !errors.Is(err, ErrBadQuality) {
				t.Errorf("%q: got %v, %v; want ErrBadQuality", tc.quality, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.quality, got, err, tc.want)
		}
	}
}
