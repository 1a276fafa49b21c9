package tracker

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// ErrGeoDB is wrapped by the errors OpenGeo returns for a database that
// cannot be opened or read.
var ErrGeoDB = errors.New("tracker: geo database")

// GeoParams configures OpenGeo. Both databases are optional.
type GeoParams struct {
	// CityDB is the path to a MaxMind DB format City database (GeoIP2-City,
	// GeoLite2-City, DB-IP City Lite, or any database whose records carry
	// the GeoIP2 City fields); "" for none.
	CityDB string
	// ASNDB is the path to a MaxMind DB format ASN database (GeoLite2-ASN,
	// DB-IP ASN Lite, ...); "" for none.
	ASNDB string
}

// Geo turns a client address into a Location. It is safe for concurrent
// use. A nil *Geo, or one opened without databases, still fills in Region
// and Prefix.
type Geo struct {
	mu     sync.RWMutex // held for reading by lookups; Close takes it to unmap
	city   *maxminddb.Reader
	asn    *maxminddb.Reader
	errors atomic.Uint64
}

// OpenGeo opens the databases p names. The files are memory-mapped and must
// be released with Close. Records are read by field name, not by database
// type, so any database following the GeoIP2 City or GeoLite2 ASN layout
// works.
func OpenGeo(p GeoParams) (*Geo, error) {
	g := &Geo{}
	var err error
	if p.CityDB != "" {
		if g.city, err = maxminddb.Open(p.CityDB); err != nil {
			return nil, fmt.Errorf("%w: city database %q: %w", ErrGeoDB, p.CityDB, err)
		}
	}
	if p.ASNDB != "" {
		if g.asn, err = maxminddb.Open(p.ASNDB); err != nil {
			if g.city != nil {
				_ = g.city.Close()
			}
			return nil, fmt.Errorf("%w: ASN database %q: %w", ErrGeoDB, p.ASNDB, err)
		}
	}
	return g, nil
}

// Close releases the databases. It waits for lookups in progress; Locate
// after Close returns only Region and Prefix. Close on a nil *Geo does
// nothing.
func (g *Geo) Close() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, r := range []*maxminddb.Reader{g.city, g.asn} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	g.city, g.asn = nil, nil
	return errors.Join(errs...)
}

// LookupErrors is the number of lookups that found a record they could not
// decode (a corrupt or unexpected database), for metrics. Such a lookup
// contributes nothing to the Location.
func (g *Geo) LookupErrors() uint64 {
	if g == nil {
		return 0
	}
	return g.errors.Load()
}

// geoRecord is the part of a City or ASN record Locate reads. A City record
// keeps an ASN, if any, under traits (GeoIP2 Enterprise, DB-IP); an ASN
// record at its top level.
type geoRecord struct {
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Traits struct {
		ASN uint64 `maxminddb:"autonomous_system_number"`
	} `maxminddb:"traits"`
	ASN uint64 `maxminddb:"autonomous_system_number"`
}

// Locate returns what is known of where ip is. Region is declaredRegion
// sanitised (see SanitizeRegion); Prefix is the /24 of an IPv4 address
// (IPv4-mapped IPv6 addresses are unmapped first) or the /48 of an IPv6
// one. With a City database it adds coordinates and the country (the
// registered country when the database gives no other); the ASN comes from
// the ASN database, else from the City database if its records carry one.
// An invalid ip yields only Region.
func (g *Geo) Locate(ip netip.Addr, declaredRegion string) Location {
	loc := Location{Region: SanitizeRegion(declaredRegion)}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return loc
	}
	loc.Prefix = addrPrefix(ip)
	if g == nil {
		return loc
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if rec, ok := g.lookup(g.city, ip); ok {
		lat, lon := rec.Location.Latitude, rec.Location.Longitude
		if lat != nil && lon != nil && validCoords(*lat, *lon) {
			loc.Lat, loc.Lon, loc.HasCoords = *lat, *lon, true
		}
		loc.Country = countryCode(rec.Country.ISOCode)
		if loc.Country == "" {
			loc.Country = countryCode(rec.RegisteredCountry.ISOCode)
		}
		loc.ASN = asnValue(rec.Traits.ASN)
	}
	if rec, ok := g.lookup(g.asn, ip); ok {
		if a := asnValue(rec.ASN); a != 0 {
			loc.ASN = a
		}
	}
	return loc
}

// lookup reads ip's record from db, if db is open and holds one.
func (g *Geo) lookup(db *maxminddb.Reader, ip netip.Addr) (geoRecord, bool) {
	var rec geoRecord
	if db == nil || (ip.Is6() && db.Metadata.IPVersion == 4) {
		return rec, false
	}
	res := db.Lookup(ip)
	if !res.Found() {
		if res.Err() != nil {
			g.errors.Add(1)
		}
		return rec, false
	}
	if err := res.Decode(&rec); err != nil {
		g.errors.Add(1)
		return geoRecord{}, false
	}
	return rec, true
}

// addrPrefix is the /24 of an IPv4 address or the /48 of an IPv6 one; ip
// is valid, unmapped and without zone.
func addrPrefix(ip netip.Addr) netip.Prefix {
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p
}

func validCoords(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 // false for NaN
}

// countryCode returns s if it is a two-letter code, upper-cased, else "".
func countryCode(s string) string {
	if len(s) != 2 {
		return ""
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		default:
			return ""
		}
	}
	return string(b)
}

func asnValue(n uint64) uint32 {
	if n > math.MaxUint32 {
		return 0
	}
	return uint32(n)
}

// maxRegionLen is the longest declared region kept.
const maxRegionLen = 32

// SanitizeRegion returns the region a peer declared, lower-cased, if it is
// 1 to 32 characters of ASCII letters, digits and '-'; otherwise "".
func SanitizeRegion(s string) string {
	if len(s) == 0 || len(s) > maxRegionLen {
		return ""
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		default:
			return ""
		}
	}
	return string(b)
}

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

// earthRadiusKm is the mean Earth radius (IUGG).
const earthRadiusKm = 6371.0088

// Distance returns the great-circle distance between a and b in kilometres
// (haversine formula on a spherical Earth, within about 0.5% of the
// ellipsoidal distance). ok is false when either location has no valid
// coordinates.
func Distance(a, b Location) (km float64, ok bool) {
	if !a.HasCoords || !b.HasCoords || !validCoords(a.Lat, a.Lon) || !validCoords(b.Lat, b.Lon) {
		return 0, false
	}
	const rad = math.Pi / 180
	lat1, lat2 := a.Lat*rad, b.Lat*rad
	dLat, dLon := (b.Lat-a.Lat)*rad, (b.Lon-a.Lon)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1)*math.Cos(lat2)*math.Sin(dLon/2)*math.Sin(dLon/2)
	h = min(max(h, 0), 1)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(h)), true
}
