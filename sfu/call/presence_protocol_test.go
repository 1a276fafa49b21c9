package call

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestDecodePresence(t *testing.T) {
	key := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	sig := base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	salt := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	callID := NewRoomID()
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"hello", `{"v":1,"type":"hello","key":"` + key + `","device":"device-01","sig":"` + sig + `","name":"Ann","contacts":["` + key + `"]}`, true},
		{"hello short key", `{"type":"hello","key":"abc","device":"device-01","sig":"` + sig + `"}`, false},
		{"hello short device", `{"type":"hello","key":"` + key + `","device":"d","sig":"` + sig + `"}`, false},
		{"hello device with slash", `{"type":"hello","key":"` + key + `","device":"../../etc","sig":"` + sig + `"}`, false},
		{"hello short sig", `{"type":"hello","key":"` + key + `","device":"device-01","sig":"AAAA"}`, false},
		{"contacts bad key", `{"type":"contacts","contacts":["nope"]}`, false},
		{"too many contacts", `{"type":"contacts","contacts":[` + strings.Repeat(`"`+key+`",`, MaxContacts) + `"` + key + `"]}`, false},
		{"ring", `{"type":"ring","to":"` + key + `","salt":"` + salt + `","video":true,"e2ee":true}`, true},
		{"ring without salt", `{"type":"ring","to":"` + key + `"}`, false},
		{"ring short salt", `{"type":"ring","to":"` + key + `","salt":"AAAA"}`, false},
		{"ring bad room", `{"type":"ring","to":"` + key + `","salt":"` + salt + `","room":"x"}`, false},
		{"ring big box", `{"type":"ring","to":"` + key + `","salt":"` + salt + `","box":"` + strings.Repeat("A", MaxBoxBytes+1) + `"}`, false},
		{"answer", `{"type":"answer","call":"` + callID + `"}`, true},
		{"answer bad id", `{"type":"answer","call":"x"}`, false},
		{"hold", `{"type":"hold","call":"` + callID + `"}`, true},
		{"unknown", `{"type":"teleport"}`, false},
		{"future version", `{"v":9,"type":"ping"}`, false},
		{"trailing", `{"type":"ping"}x`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePresence([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("DecodePresence: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
		})
	}
}

func FuzzDecodePresence(f *testing.F) {
	key := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, s := range []string{
		`{"v":1,"type":"hello","key":"` + key + `","device":"device-01","sig":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 64)) + `"}`,
		`{"type":"ring","to":"` + key + `","salt":"AAAAAAAAAAAAAAAAAAAAAA","box":"AA"}`,
		`{"type":"contacts","contacts":["` + key + `"]}`,
		`{"type":"hangup","call":"` + NewRoomID() + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodePresence(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		if len(m.Contacts) > MaxContacts || len(m.Box) > MaxBoxBytes || len(m.Name) > 4*MaxNameRunes {
			t.Fatalf("accepted out of bounds: %+v", m)
		}
		if m.Type == PTypeHello && !ValidDevice(m.Device) {
			t.Fatalf("accepted a bad device id %q", m.Device)
		}
	})
}
