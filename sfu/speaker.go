package sfu

import (
	"math"
	"time"
)

// SpeakerParams tunes dominant-speaker detection.
type SpeakerParams struct {
	// Smoothing is the time constant of the exponential average of each
	// speaker's loudness. Default 300 ms.
	Smoothing time.Duration
	// Hold is how long a speaker must lead to take over. Default 1 s.
	Hold time.Duration
	// Threshold is the smoothed loudness a speaker must exceed to count as
	// speaking. Loudness is 127 minus the RFC 6464 level (−dBov), so 0 is
	// silence and speech is typically 80..110. Default 70 (−57 dBov).
	Threshold float64
	// Margin: a challenger must be this many times louder than the current
	// dominant speaker (when the latter is speaking). Default 1.2.
	Margin float64
}

func (p SpeakerParams) withDefaults() SpeakerParams {
	if p.Smoothing <= 0 {
		p.Smoothing = 300 * time.Millisecond
	}
	if p.Hold <= 0 {
		p.Hold = time.Second
	}
	if p.Threshold <= 0 {
		p.Threshold = 70
	}
	if p.Margin <= 0 {
		p.Margin = 1.2
	}
	return p
}

// speakerDetector finds the dominant speaker of a room from the RFC 6464
// audio levels of the participants' packets. Each speaker's loudness is
// smoothed exponentially (and decays while it sends nothing, e.g. during
// Opus DTX); the loudest speaker above the threshold takes over once it has
// led for Hold. Silence never switches: the last dominant speaker stays until
// someone else speaks. Pure: time is passed in; not safe for concurrent use.
type speakerDetector struct {
	p        SpeakerParams
	speakers map[string]*speakerState
	dominant string
	leader   string    // challenger currently leading, "" if none
	since    time.Time // when leader started leading
}

type speakerState struct {
	score float64   // smoothed loudness at at
	at    time.Time // time of the last update
}

func newSpeakerDetector(p SpeakerParams) *speakerDetector {
	return &speakerDetector{p: p.withDefaults(), speakers: make(map[string]*speakerState)}
}

// scoreAt returns s's smoothed loudness decayed to now.
func (d *speakerDetector) scoreAt(s *speakerState, now time.Time) float64 {
	dt := now.Sub(s.at)
	if dt <= 0 {
		return s.score
	}
	return s.score * math.Exp(-float64(dt)/float64(d.p.Smoothing))
}

// observe records an audio level (RFC 6464: 0 = loudest, 127 = silence) of
// speaker id at now, and returns the dominant speaker and whether it changed.
func (d *speakerDetector) observe(id string, level uint8, now time.Time) (dominant string, changed bool) {
	if level > 127 {
		level = 127
	}
	loud := float64(127 - level)
	s, ok := d.speakers[id]
	if !ok {
		s = &speakerState{at: now}
		d.speakers[id] = s
	}
	dt := now.Sub(s.at)
	if dt < 0 {
		dt = 0
	}
	alpha := 1 - math.Exp(-float64(dt)/float64(d.p.Smoothing))
	if !ok {
		alpha = 0.2 // first packet: start low, it must keep speaking to count
	}
	s.score = s.score*(1-alpha) + loud*alpha
	s.at = now
	return d.evaluate(now)
}

// remove forgets a speaker (it left the room). If it was dominant, the
// dominant speaker becomes "" until someone else takes over.
func (d *speakerDetector) remove(id string) (dominant string, changed bool) {
	delete(d.speakers, id)
	if d.leader == id {
		d.leader = ""
	}
	if d.dominant == id {
		d.dominant = ""
		return "", true
	}
	return d.dominant, false
}

func (d *speakerDetector) evaluate(now time.Time) (string, bool) {
	best, bestScore := "", d.p.Threshold
	for id, s := range d.speakers {
		if sc := d.scoreAt(s, now); sc > bestScore {
			best, bestScore = id, sc
		}
	}
	if best == "" || best == d.dominant {
		// Silence or the dominant speaker leads: no challenger.
		d.leader = ""
		return d.dominant, false
	}
	if cur, ok := d.speakers[d.dominant]; ok {
		if cs := d.scoreAt(cur, now); cs > d.p.Threshold && bestScore < cs*d.p.Margin {
			d.leader = ""
			return d.dominant, false
		}
	}
	if d.leader != best {
		d.leader, d.since = best, now
	}
	if now.Sub(d.since) >= d.p.Hold {
		d.dominant, d.leader = best, ""
		return d.dominant, true
	}
	return d.dominant, false
}

// levels returns every speaker's smoothed loudness at now (0 silent, up to
// 127; above SpeakerParams.Threshold counts as speaking).
func (d *speakerDetector) levels(now time.Time) map[string]float64 {
	out := make(map[string]float64, len(d.speakers))
	for id, s := range d.speakers {
		out[id] = d.scoreAt(s, now)
	}
	return out
}
