package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeClient(t *testing.T) {
	peer := "abcdefghijklmnopqrstuvwxyz"
	cases := []struct {
		name string
		msg  string
		ok   bool
	}{
		{"join", `{"type":"join","v":1,"stream":"demo","renditions":["v0","a0"],"budgetKbps":2500,"kind":"browser","region":"eu-west"}`, true},
		{"join, relay off", `{"type":"join","v":1,"stream":"demo","kind":"native"}`, true},
		{"join, origin", `{"type":"join","v":1,"stream":"demo","token":"secret","kind":"origin"}`, true},
		{"join, bad kind", `{"type":"join","v":1,"stream":"demo","kind":"relay"}`, false},
		{"join, no kind", `{"type":"join","v":1,"stream":"demo"}`, false},
		{"join, bad stream", `{"type":"join","v":1,"stream":"../x","kind":"native"}`, false},
		{"join, negative budget", `{"type":"join","v":1,"stream":"demo","kind":"native","budgetKbps":-1}`, false},
		{"join, region", `{"type":"join","v":1,"stream":"demo","kind":"native","region":"EU West"}`, false},
		{"join, long region", `{"type":"join","v":1,"stream":"demo","kind":"native","region":"` + strings.Repeat("a", 33) + `"}`, false},
		{"join, 32-byte region", `{"type":"join","v":1,"stream":"demo","kind":"native","region":"` + strings.Repeat("a", 31) + `-"}`, true},
		{"join, 17 renditions", `{"type":"join","v":1,"stream":"demo","kind":"native","renditions":["a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a"]}`, false},
		{"signal sdp", `{"type":"signal","to":"` + peer + `","sdp":{"type":"offer","sdp":"v=0"}}`, true},
		{"signal candidate", `{"type":"signal","to":"origin","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}`, true},
		{"signal both", `{"type":"signal","to":"origin","sdp":{"type":"offer","sdp":"v"},"candidate":{"candidate":"c"}}`, false},
		{"signal none", `{"type":"signal","to":"origin"}`, false},
		{"signal bad to", `{"type":"signal","to":"ABC","sdp":{"type":"offer","sdp":"v"}}`, false},
		{"signal pranswer", `{"type":"signal","to":"origin","sdp":{"type":"pranswer","sdp":"v"}}`, false},
		{"signal big sdp", `{"type":"signal","to":"origin","sdp":{"type":"offer","sdp":"` + strings.Repeat("v", MaxSDPBytes+1) + `"}}`, false},
		{"report", `{"type":"report","bufferSec":3.5,"newestSeq":9,"uploadKbps":100,"rttMs":40,"complaint":{"peer":"` + peer + `","reason":"bad-chunk"},"stalled":["origin"]}`, true},
		{"report negative", `{"type":"report","bufferSec":-1}`, false},
		{"report bad complaint", `{"type":"report","complaint":{"peer":"x"}}`, false},
		{"report, complaint forged-manifest", `{"type":"report","complaint":{"peer":"` + peer + `","reason":"forged-manifest"}}`, true},
		{"report, complaint bad-message", `{"type":"report","complaint":{"peer":"` + peer + `","reason":"bad-message"}}`, true},
		{"report, complaint unknown reason", `{"type":"report","complaint":{"peer":"` + peer + `","reason":"rude"}}`, false},
		{"report, complaint no reason", `{"type":"report","complaint":{"peer":"` + peer + `"}}`, false},
		{"report, relay cut", `{"type":"report","relayKbps":0}`, true},
		{"report, relay restored", `{"type":"report","relayKbps":2500}`, true},
		{"report, negative relay", `{"type":"report","relayKbps":-1}`, false},
		{"report, absurd relay", `{"type":"report","relayKbps":10000001}`, false},
		{"report, upload at the ceiling", `{"type":"report","uploadKbps":10000000}`, true},
		{"report, absurd upload", `{"type":"report","uploadKbps":10000001}`, false},
		{"report, two minutes buffered", `{"type":"report","bufferSec":120}`, true},
		{"report, absurd buffer", `{"type":"report","bufferSec":120.5}`, false},
		{"report, an hour buffered", `{"type":"report","bufferSec":3600}`, false},
		{"report, rtt a minute", `{"type":"report","rttMs":60000}`, true},
		{"report, absurd rtt", `{"type":"report","rttMs":60001}`, false},
		{"report, receipts", `{"type":"report","received":[{"peer":"` + peer + `","bytes":123456},{"peer":"origin","bytes":0}]}`, true},
		{"report, receipt bad peer", `{"type":"report","received":[{"peer":"x","bytes":1}]}`, false},
		{"report, receipt twice", `{"type":"report","received":[{"peer":"` + peer + `","bytes":1},{"peer":"` + peer + `","bytes":2}]}`, false},
		{"report, receipt negative", `{"type":"report","received":[{"peer":"` + peer + `","bytes":-1}]}`, false},
		{"report, receipt absurd", `{"type":"report","received":[{"peer":"` + peer + `","bytes":1099511627777}]}`, false},
		{"report, receipt unknown field", `{"type":"report","received":[{"peer":"` + peer + `","bytes":1,"kbps":9}]}`, false},
		{"report, 33 receipts", `{"type":"report","received":[` + receipts(33) + `]}`, false},
		{"report, 32 receipts", `{"type":"report","received":[` + receipts(32) + `]}`, true},
		{"leave", `{"type":"leave"}`, true},
		{"trailing", `{"type":"leave"} {}`, false},
		{"unknown field", `{"type":"leave","x":1}`, false},
		{"unknown type", `{"type":"welcome"}`, false},
		{"not utf-8", "{\"type\":\"leave\xff\"}", false},
		{"too big", `{"type":"leave","pad":"` + strings.Repeat(" ", MaxMessageBytes) + `"}`, false},
	}
	for _, c := range cases {
		_, err := DecodeClient([]byte(c.msg))
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if err != nil && !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: error does not wrap ErrBadMessage: %v", c.name, err)
		}
	}
}

// receipts returns n receipts from distinct peers, as JSON list items.
func receipts(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"peer":"%s","bytes":%d}`, strings.Repeat(string(rune('a'+i%26)), 25)+string(rune('a'+i/26)), i)
	}
	return strings.Join(items, ",")
}

// TestReportLimitsError: a report beyond physical sense is refused with an
// error naming the figure and its limit.
func TestReportLimitsError(t *testing.T) {
	for msg, want := range map[string]string{
		`{"type":"report","uploadKbps":99999999}`: "upload 99999999 kbps not in 0..10000000",
		`{"type":"report","bufferSec":3600}`:      "buffer 3600 s not in 0..120",
		`{"type":"report","rttMs":600000}`:        "rtt 600000 ms not in 0..60000",
	} {
		_, err := DecodeClient([]byte(msg))
		if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", msg, err, want)
		}
	}
}

func TestComplaintReasonError(t *testing.T) {
	_, err := DecodeClient([]byte(`{"type":"report","complaint":{"peer":"origin","reason":"rude"}}`))
	if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), `unknown complaint reason "rude"`) {
		t.Errorf("err = %v, want ErrBadMessage naming the reason", err)
	}
	for _, r := range []ComplaintReason{ComplaintBadMessage, ComplaintBadChunk, ComplaintForgedManifest} {
		if !r.Valid() {
			t.Errorf("%q not valid", r)
		}
	}
}

func TestValidPeerID(t *testing.T) {
	for _, tc := range []struct {
		id PeerID
		ok bool
	}{
		{"abcdefghijklmnopqrstuvwxyz", true},
		{"a234567a234567a234567a2345", true},
		{OriginPeer, true},
		{"", false},
		{"abcdefghijklmnopqrstuvwxy", false},
		{"abcdefghijklmnopqrstuvwxyz2", false},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZ", false},
		{"abcdefghijklmnopqrstuvwxy1", false},
		{"abcdefghijklmnopqrstuvwxy8", false},
		{"abcdefghijklmnopqrstuvwxy{", false},
	} {
		if got := ValidPeerID(tc.id); got != tc.ok {
			t.Errorf("ValidPeerID(%q) = %v", tc.id, got)
		}
	}
}

func FuzzDecodeClient(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","v":1,"stream":"demo","kind":"browser","budgetKbps":10}`,
		`{"type":"signal","to":"origin","sdp":{"type":"offer","sdp":"v=0"}}`,
		`{"type":"report","bufferSec":1,"stalled":["origin"]}`, `{"type":"leave"}`, `{`, ``,
		`{"type":"report","relayKbps":500,"complaint":{"peer":"origin","reason":"bad-chunk"}}`,
		`{"type":"report","bufferSec":2.5,"uploadKbps":800,"rttMs":40,"received":[{"peer":"origin","bytes":1000},{"peer":"abcdefghijklmnopqrstuvwxyz","bytes":0}]}`,
		`{"type":"report","received":[{"peer":"abcdefghijklmnopqrstuvwxyz","bytes":1},{"peer":"abcdefghijklmnopqrstuvwxyz","bytes":2}]}`,
		`{"type":"report","received":[{"peer":"origin","bytes":18446744073709551615}]}`,
		`{"type":"report","uploadKbps":10000001,"bufferSec":121}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClient(data)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) || m != nil {
				t.Fatalf("error %v with message %v", err, m)
			}
			return
		}
		// What decodes re-encodes and decodes to the same thing.
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeClient(b); err != nil {
			t.Fatalf("re-encoded %s: %v", b, err)
		}
	})
}

// TestWelcomeDelay: a welcome's delayMs is read when in range, absent
// means 0 (the node's default), and out of range is a bad message.
func TestWelcomeDelay(t *testing.T) {
	const head = `{"type":"welcome","v":1,"peer":"origin","publicKey":"00","manifest":"/m","iceServers":[],"substreams":4,"upstreams":[]`
	for _, c := range []struct {
		tail string
		want int
		ok   bool
	}{
		{`}`, 0, true},
		{`,"delayMs":3500}`, 3500, true},
		{`,"delayMs":30000}`, 30000, true},
		{`,"delayMs":30001}`, 0, false},
		{`,"delayMs":-1}`, 0, false},
		{`,"delayMs":1e12}`, 0, false},
		{`,"delayMs":"3500"}`, 0, false},
	} {
		m, err := DecodeServer([]byte(head + c.tail))
		if !c.ok {
			if !errors.Is(err, ErrBadMessage) {
				t.Errorf("%s: err %v, want ErrBadMessage", c.tail, err)
			}
			continue
		}
		if w, ok := m.(*Welcome); err != nil || !ok || w.DelayMs != c.want {
			t.Errorf("%s: %+v, %v; want delayMs %d", c.tail, m, err, c.want)
		}
	}
}

func FuzzDecodeServer(f *testing.F) {
	for _, s := range []string{
		`{"type":"welcome","v":1,"peer":"origin","publicKey":"00","manifest":"/m","iceServers":[],"substreams":4,"upstreams":[],"depth":0,"delayMs":3500}`,
		`{"type":"welcome","v":1,"peer":"origin","publicKey":"00","manifest":"/m","iceServers":[],"substreams":4,"upstreams":[{"substream":0,"peer":"origin"}]}`,
		`{"type":"signal","from":"origin","candidate":{"candidate":"c"}}`,
		`{"type":"reassign","substream":1,"peer":"origin","reason":"upstream-left"}`,
		`{"type":"error","code":"x","message":"y"}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeServer(data)
		if err != nil && (!errors.Is(err, ErrBadMessage) || m != nil) {
			t.Fatalf("error %v with message %v", err, m)
		}
	})
}
