package media

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LoopParams configures a Loop.
type LoopParams struct {
	Clip  *Clip
	Clock Clock // nil means SystemClock
	// Loops is how many times to play the clip; 0 means forever.
	Loops int
	// Start is the wall time of media time 0; zero means when Run starts.
	Start time.Time
}

// Loop plays a Clip as a live source: over and over, paced in real time,
// with timestamps that keep increasing across repetitions.
type Loop struct {
	p LoopParams
}

// NewLoop checks p and returns a Loop.
func NewLoop(p LoopParams) (*Loop, error) {
	c := p.Clip
	switch {
	case c == nil:
		return nil, errors.New("media: loop without a clip")
	case c.Duration <= 0:
		return nil, fmt.Errorf("media: loop clip duration %v", c.Duration)
	case len(c.VideoUnits) == 0 && len(c.AudioUnits) == 0:
		return nil, errors.New("media: loop clip has no units")
	case p.Loops < 0:
		return nil, fmt.Errorf("media: loop count %d", p.Loops)
	}
	for _, units := range [][]AccessUnit{c.VideoUnits, c.AudioUnits} {
		for i, u := range units {
			if u.DTS >= c.Duration || (i > 0 && u.DTS < units[i-1].DTS) {
				return nil, fmt.Errorf("media: loop clip unit %d at %v is out of order or past the duration %v",
					i, u.DTS, c.Duration)
			}
		}
	}
	if p.Clock == nil {
		p.Clock = SystemClock{}
	}
	return &Loop{p: p}, nil
}

// Run emits the clip's units in decode-time order, video and audio
// interleaved, each when the clock reaches Start+DTS. Repetition k (from 0)
// adds k×Duration to DTS and PTS. If emit falls behind, the units that are
// due go out at once until it catches up.
//
// emit runs on Run's goroutine. The unit's Data is shared with the clip and
// must not be modified. Run returns nil after the last loop, emit's error if
// it fails, or ctx.Err() once ctx ends.
func (l *Loop) Run(ctx context.Context, emit func(kind Kind, au AccessUnit) error) error {
	start := l.p.Start
	if start.IsZero() {
		start = l.p.Clock.Now()
	}
	var err error
	l.p.Clip.Each(l.p.Loops, func(kind Kind, au AccessUnit) bool {
		if err = l.waitUntil(ctx, start.Add(au.DTS)); err != nil {
			return false
		}
		err = emit(kind, au)
		return err == nil
	})
	return err
}

// Each walks the clip's units in decode order, video and audio interleaved
// (video first at equal times), for loops repetitions (0: until emit
// returns false), adding k×Duration to the times of repetition k. It does
// not pace: Loop.Run does. The unit's Data is shared with the clip and must
// not be modified.
func (c *Clip) Each(loops int, emit func(kind Kind, au AccessUnit) bool) {
	streams := []*loopCursor{
		{kind: KindVideo, units: c.VideoUnits, period: c.Duration, loops: loops},
		{kind: KindAudio, units: c.AudioUnits, period: c.Duration, loops: loops},
	}
	for {
		var next *loopCursor
		for _, s := range streams {
			if s.more() && (next == nil || s.peek().DTS < next.peek().DTS) {
				next = s
			}
		}
		if next == nil || !emit(next.kind, next.peek()) {
			return
		}
		next.advance()
	}
}

// waitUntil blocks until the clock reaches t or ctx ends.
func (l *Loop) waitUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := t.Sub(l.p.Clock.Now())
	if d <= 0 {
		return nil
	}
	timer := l.p.Clock.NewTimer(d)
	select {
	case <-timer.C():
		return nil
	case <-ctx.Done():
		timer.Stop()
		return ctx.Err()
	}
}

// loopCursor walks one kind's units through the repetitions.
type loopCursor struct {
	kind   Kind
	units  []AccessUnit
	period time.Duration
	loops  int // 0 = forever
	i, k   int // unit index, repetition
}

func (c *loopCursor) more() bool {
	return len(c.units) > 0 && (c.loops == 0 || c.k < c.loops)
}

// peek returns the current unit with the repetition's offset applied.
func (c *loopCursor) peek() AccessUnit {
	au := c.units[c.i]
	off := time.Duration(c.k) * c.period
	au.DTS += off
	au.PTS += off
	return au
}

func (c *loopCursor) advance() {
	c.i++
	if c.i == len(c.units) {
		c.i, c.k = 0, c.k+1
	}
}
