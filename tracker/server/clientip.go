package server

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds how many X-Forwarded-For entries ClientIP reads
// from the right.
const maxForwardedHops = 32

// ClientIP returns the address of the client behind r.
//
// It is the connection's remote address (r.RemoteAddr), unless that address
// is inside one of the trusted proxy prefixes: then the X-Forwarded-For
// entries (all header lines, in order, comma-separated) are read from the
// right, skipping addresses that are themselves trusted proxies, and the
// first untrusted one is the client. If every entry is trusted, the
// left-most is returned. Entries to the left of the client are written by
// the client and ignored; an entry that ClientIP has to read but cannot
// parse (empty, "unknown", garbage), a missing header, or more than 32
// trusted hops make it fall back to the remote address.
//
// Entries may be bare addresses or address:port ("[v6]:port" for IPv6).
// The result is unmapped (::ffff:a.b.c.d becomes a.b.c.d) and without an
// IPv6 zone; trusted prefixes are compared in the same form. It is the
// zero, invalid Addr when r.RemoteAddr cannot be parsed.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	remote := parseHostAddr(r.RemoteAddr)
	if !remote.IsValid() || !isTrusted(remote, trusted) {
		return remote
	}
	xff := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	if strings.TrimSpace(xff) == "" {
		return remote
	}
	for hops := 0; hops < maxForwardedHops; hops++ {
		i := strings.LastIndexByte(xff, ',')
		a := parseHostAddr(strings.TrimSpace(xff[i+1:]))
		if !a.IsValid() {
			return remote
		}
		if i < 0 || !isTrusted(a, trusted) {
			return a
		}
		xff = xff[:i]
	}
	return remote
}

// parseHostAddr parses "addr", "addr:port" or "[addr]:port" and returns the
// address unmapped and without zone, or the zero Addr.
func parseHostAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone("")
}

// isTrusted reports whether a (unmapped, no zone) is inside one of the
// prefixes; IPv4-mapped prefixes are unmapped to match.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if pa := p.Addr(); pa.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(pa.Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}
