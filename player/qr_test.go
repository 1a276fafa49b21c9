package player

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"rsc.io/qr"
)

// TestQR: GET /qr answers a contact link with an SVG QR code whose module
// count is that of the QR version the text needs, surrounded by the quiet
// zone, drawing exactly the code's dark modules; empty and oversized texts
// are refused with 400, and other methods with 405.
func TestQR(t *testing.T) {
	_, ts := newTest(t, Params{})
	link := "http://127.0.0.1:8080/contacts#add=v1.11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo.8pIWr3X_BX6uXSjSyIC1xGqI0iMpOihbvJVCf1VfL1c.QWxpY2U"
	resp, body := get(t, ts.URL+"/qr?text="+url.QueryEscape(link))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" ||
		resp.Header.Get("Cache-Control") != "private, max-age=3600" {
		t.Fatalf("a link: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	if !strings.HasPrefix(string(body), `<svg xmlns="http://www.w3.org/2000/svg"`) || !strings.HasSuffix(string(body), "</svg>") {
		t.Fatalf("not an SVG: %.80s", body)
	}

	// A known input: 19 bytes in byte mode at level M need version 2
	// (version 1-M holds 14 bytes, 2-M 26): 17 + 4·2 = 25 modules a side,
	// 33 with the quiet zone.
	svg, err := QRSVG("https://example.com")
	if err != nil {
		t.Fatal(err)
	}
	vb := regexp.MustCompile(`viewBox="0 0 (\d+) (\d+)"`).FindStringSubmatch(string(svg))
	if vb == nil || vb[1] != "33" || vb[2] != "33" {
		t.Fatalf("viewBox %q, want 0 0 33 33 (version 2 and a quiet zone of 4)", vb)
	}
	// The path's runs cover exactly the code's dark modules, inside the
	// quiet zone.
	c, _ := qr.Encode("https://example.com", qr.M)
	dark := map[[2]int]bool{}
	for _, m := range regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`).FindAllStringSubmatch(string(svg), -1) {
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		n, _ := strconv.Atoi(m[3])
		if m[3] != m[4] || x < qrQuiet || y < qrQuiet || x+n > 25+qrQuiet || y >= 25+qrQuiet {
			t.Fatalf("run %q is malformed or in the quiet zone", m[0])
		}
		for i := range n {
			dark[[2]int{x + i - qrQuiet, y - qrQuiet}] = true
		}
	}
	want := 0
	for y := range c.Size {
		for x := range c.Size {
			if c.Black(x, y) {
				want++
				if !dark[[2]int{x, y}] {
					t.Fatalf("module %d,%d is dark in the code, not in the SVG", x, y)
				}
			}
		}
	}
	if len(dark) != want || want == 0 {
		t.Fatalf("%d dark modules drawn, the code has %d", len(dark), want)
	}

	for _, tc := range []struct {
		name, text string
		want       error
	}{
		{"empty", "", ErrQREmpty},
		{"oversized", strings.Repeat("a", MaxQRText+1), ErrQRTooLong},
	} {
		resp, body := get(t, ts.URL+"/qr?text="+url.QueryEscape(tc.text))
		if resp.StatusCode != 400 || !strings.Contains(string(body), "QR") {
			t.Errorf("%s text: %d %q, want 400 with the reason", tc.name, resp.StatusCode, body)
		}
		if _, err := QRSVG(tc.text); !errors.Is(err, tc.want) {
			t.Errorf("%s text: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := QRSVG(strings.Repeat("\xff", MaxQRText)); err != nil {
		t.Errorf("a text of the largest size: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/qr?text=x", nil)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /qr: %d, want 405", r2.StatusCode)
	}
}

// TestContactsPage: with call pages, GET /contacts renders with the call
// pages' policy (camera and microphone allowed: it starts calls), its own
// module and style sheet, and the ringer; without, it is not routed.
func TestContactsPage(t *testing.T) {
	pl, ts := newTest(t, Params{Calls: &CallPages{
		NewRoom: func() string { return "r" }, ValidRoom: func(string) bool { return true },
		Channels: func() any { return nil }, Channel: func(string) (any, bool) { return nil, false },
	}})
	resp, body := get(t, ts.URL+"/contacts")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Permissions-Policy"), "camera=(self)") {
		t.Fatalf("/contacts: %d, Permissions-Policy %q", resp.StatusCode, resp.Header.Get("Permissions-Policy"))
	}
	for _, a := range []string{"js/contacts.js", "js/ringer.js", "css/contacts.css", "css/app.css"} {
		if !strings.Contains(string(body), pl.assets.URL(a)) {
			t.Errorf("/contacts does not name %s", a)
		}
	}
	_, ts2 := newTest(t, Params{})
	if resp, _ := get(t, ts2.URL+"/contacts"); resp.StatusCode != 404 {
		t.Errorf("/contacts without call pages: %d, want 404", resp.StatusCode)
	}
}
