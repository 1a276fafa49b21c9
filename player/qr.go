package player

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"rsc.io/qr"
)

// MaxQRText bounds the text of GET /qr: a contact link is a few hundred
// bytes; this leaves room and keeps the code scannable on a screen.
const MaxQRText = 1024

// qrQuiet is the quiet zone around a code, in modules (the standard's 4).
const qrQuiet = 4

// Errors of QRSVG.
var (
	ErrQREmpty   = errors.New("player: no text to encode as a QR code")
	ErrQRTooLong = errors.New("player: text too long for a QR code")
)

// QRSVG renders text as a QR code (error correction level M) in SVG: one
// path of dark modules on a white square with the quiet zone, one SVG unit
// a module.
func QRSVG(text string) ([]byte, error) {
	switch {
	case text == "":
		return nil, ErrQREmpty
	case len(text) > MaxQRText:
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrQRTooLong, len(text), MaxQRText)
	}
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQRTooLong, err)
	}
	n := c.Size + 2*qrQuiet
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`, n, n, n*8, n*8)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	// One subpath a horizontal run of dark modules.
	for y := 0; y < c.Size; y++ {
		for x := 0; x < c.Size; {
			if !c.Black(x, y) {
				x++
				continue
			}
			run := 1
			for x+run < c.Size && c.Black(x+run, y) {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x+qrQuiet, y+qrQuiet, run, run)
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return b.Bytes(), nil
}

// serveQR answers GET /qr?text=… with the text's QR code as SVG. The
// contacts page shows the contact link this way: the link holds only the
// browser's public keys and display name, which the server learns anyway
// from presence, so rendering it here tells the server nothing new (the
// fragment of a link it renders is seen by the server only in this query).
func (pl *Player) serveQR(w http.ResponseWriter, r *http.Request) {
	svg, err := QRSVG(r.URL.Query().Get("text"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("Cache-Control", "private, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Content-Length", strconv.Itoa(len(svg)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(svg)
}
