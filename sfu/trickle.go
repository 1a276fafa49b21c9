package sfu

import (
	"bytes"
	"fmt"
	"strings"
)

// maxTrickleLines bounds the work spent on one trickle-ice-sdpfrag body.
const maxTrickleLines = 1024

// trickleFragment is a parsed application/trickle-ice-sdpfrag body
// (RFC 8840, as used by WHIP/WHEP PATCH requests).
type trickleFragment struct {
	Ufrag, Pwd      string // session-level or media-level ICE credentials
	Candidates      []trickleCandidate
	EndOfCandidates bool
}

// trickleCandidate is one a=candidate line with the media section it
// belongs to.
type trickleCandidate struct {
	Mid        string // "" when the fragment names no mid
	MLineIndex uint16
	Candidate  string // "candidate:..." without the "a=" prefix
}

// parseTrickleFragment parses an SDP fragment. It accepts the lines RFC 8840
// allows (a=ice-ufrag, a=ice-pwd, a=ice-options, m=, a=mid, a=candidate,
// a=end-of-candidates) and ignores other attribute lines; anything that is
// not an SDP line is an error wrapping ErrBadTrickle.
func parseTrickleFragment(body []byte) (*trickleFragment, error) {
	f := &trickleFragment{}
	mline := -1
	mid := ""
	lines := 0
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if lines++; lines > maxTrickleLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrBadTrickle, maxTrickleLines)
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return nil, fmt.Errorf("%w: not an SDP line: %.40q", ErrBadTrickle, line)
		}
		val := string(line[2:])
		switch line[0] {
		case 'm':
			if mline >= 0xffff {
				return nil, fmt.Errorf("%w: too many media sections", ErrBadTrickle)
			}
			mline++
			mid = ""
		case 'a':
			name, arg, _ := strings.Cut(val, ":")
			switch name {
			case "ice-ufrag":
				if arg == "" {
					return nil, fmt.Errorf("%w: empty ice-ufrag", ErrBadTrickle)
				}
				f.Ufrag = arg
			case "ice-pwd":
				if arg == "" {
					return nil, fmt.Errorf("%w: empty ice-pwd", ErrBadTrickle)
				}
				f.Pwd = arg
			case "mid":
				mid = arg
			case "candidate":
				if arg == "" {
					return nil, fmt.Errorf("%w: empty candidate", ErrBadTrickle)
				}
				idx := mline
				if idx < 0 {
					idx = 0
				}
				f.Candidates = append(f.Candidates, trickleCandidate{
					Mid: mid, MLineIndex: uint16(idx), Candidate: val,
				})
			case "end-of-candidates":
				f.EndOfCandidates = true
			}
		}
	}
	return f, nil
}
