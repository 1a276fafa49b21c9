package media

import (
	_ "embed"
	"sync"
)

// demoMP4 is the built-in demo stream; democlip/generate.sh makes it.
//
//go:embed democlip/demo.mp4
var demoMP4 []byte

var demo struct {
	once sync.Once
	clip *Clip
	err  error
}

// DemoClip returns the embedded demo clip: 10 s of H.264 constrained
// baseline 640x360 at 30 fps with a keyframe every second (300 frames), and
// Opus 48 kHz stereo in 20 ms packets (500 packets). It is parsed once and
// shared by all callers, who must not modify the clip, its tracks, its units
// or their Data.
func DemoClip() (*Clip, error) {
	demo.once.Do(func() {
		demo.clip, demo.err = ReadMP4(demoMP4)
	})
	return demo.clip, demo.err
}
