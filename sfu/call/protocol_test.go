package call

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"join", `{"v":1,"type":"join","name":"Ann"}`, true},
		{"join without version", `{"type":"join"}`, true},
		{"future version", `{"v":2,"type":"join"}`, false},
		{"unknown type", `{"type":"teleport"}`, false},
		{"unknown field ignored", `{"type":"ping","x":1}`, true},
		{"trailing data", `{"type":"ping"}{}`, false},
		{"not json", `hello`, false},
		{"long name", `{"type":"join","name":"` + strings.Repeat("é", MaxNameRunes+1) + `"}`, false},
		{"control chars", `{"type":"chat","text":"a\u0007b"}`, false},
		{"chat newline", `{"type":"chat","text":"a\nb"}`, true},
		{"empty chat", `{"type":"chat","text":""}`, false},
		{"publish without sdp", `{"type":"publish"}`, false},
		{"publish bad source", `{"type":"publish","sdp":"v=0","tracks":[{"mid":"0","source":"tv"}]}`, false},
		{"publish", `{"type":"publish","sdp":"v=0","tracks":[{"mid":"0","source":"camera","width":1280,"height":720}]}`, true},
		{"trickle bad target", `{"type":"trickle","target":"x","candidate":{"candidate":""}}`, false},
		{"trickle", `{"type":"trickle","target":"publish","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0"}}`, true},
		{"subscribe nothing", `{"type":"subscribe","ids":[]}`, false},
		{"size negative", `{"type":"size","track":"a-0","width":-1,"height":1}`, false},
		{"host unknown action", `{"type":"host","action":"ban"}`, false},
		{"host mute needs who", `{"type":"host","action":"mute"}`, false},
		{"host lock", `{"type":"host","action":"lock"}`, true},
		{"resume", `{"type":"resume","participant":"p","token":"t"}`, true},
		{"resume without token", `{"type":"resume","participant":"p"}`, false},
		{"sealed chat", `{"type":"chat","sealed":"v1.AAAA.BBBB-_"}`, true},
		{"sealed and text", `{"type":"chat","sealed":"v1.AAAA","text":"hi"}`, false},
		{"sealed not base64url", `{"type":"chat","sealed":"a b"}`, false},
		{"sealed too big", `{"type":"chat","sealed":"` + strings.Repeat("A", MaxSealedBytes+1) + `"}`, false},
		{"e2ee", `{"type":"e2ee","sealed":"v1.AAAA"}`, true},
		{"e2ee empty", `{"type":"e2ee"}`, false},
		{"too big", `{"type":"chat","text":"` + strings.Repeat("x", MaxMessageBytes) + `"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("Decode: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"join","name":"Ann","invite":"x"}`,
		`{"type":"publish","sdp":"v=0","tracks":[{"mid":"0","source":"camera"}]}`,
		`{"type":"trickle","target":"subscribe","candidate":{"candidate":"c","sdpMLineIndex":0}}`,
		`{"type":"subscribe","ids":["a-0","b-1"]}`,
		`{"type":"host","action":"admit","participant":"p"}`,
		`{"type":"size","track":"a-0","width":320,"height":180}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		// What Decode accepts is within the limits.
		if len(m.Text) > 4*MaxChatRunes || len(m.SDP) > MaxSDPBytes || len(m.Tracks) > MaxTracks || len(m.IDs) > MaxIDs {
			t.Fatalf("accepted out of bounds: %+v", m)
		}
	})
}

func TestInvite(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	tok := newInvite(secret, "call.ROOM", now.Add(time.Hour))
	if _, _, err := checkInvite(secret, "call.ROOM", tok, now); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret    []byte
		room, tok string
		at        time.Time
	}{
		"other room":   {secret, "call.OTHER", tok, now},
		"other secret": {[]byte("x"), "call.ROOM", tok, now},
		"expired":      {secret, "call.ROOM", tok, now.Add(2 * time.Hour)},
		"truncated":    {secret, "call.ROOM", tok[:20], now},
		"garbage":      {secret, "call.ROOM", "!!!", now},
	} {
		if _, _, err := checkInvite(c.secret, c.room, c.tok, c.at); !errors.Is(err, ErrInvite) {
			t.Errorf("%s: %v, want ErrInvite", name, err)
		}
	}
}
