package server

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/seedcast/seedcast/tracker"
)

// ErrGeoDB is wrapped by the errors OpenGeo returns for a database that
// cannot be opened or read, or is not of the kind asked for.
var ErrGeoDB = errors.New("tracker: geo database")

// GeoParams configures OpenGeo. Both databases are optional; each is a file
// in the MaxMind DB format, of a database type github.com/oschwald/geoip2-golang
// knows (others are refused when opened).
type GeoParams struct {
	// CityDB is the path to a City database (GeoIP2-City, GeoLite2-City,
	// DB-IP City Lite, ...), a Country database (countries only) or an
	// Enterprise one (GeoIP2-Enterprise, DB-IP ISP, whose records also
	// carry the ASN); "" for none.
	CityDB string
	// ASNDB is the path to an ASN database (GeoLite2-ASN, DB-IP ASN Lite in
	// its GeoLite2-ASN layout, GeoIP2-ISP); "" for none.
	ASNDB string
}

// Geo turns a client address into a Location. It is safe for concurrent
// use. A nil *Geo, or one opened without databases, still fills in Region
// and Prefix.
type Geo struct {
	mu         sync.RWMutex // held for reading by lookups; Close takes it to unmap
	city       *geoip2.Reader
	asn        *geoip2.Reader
	enterprise bool // city is an Enterprise database: read as such, it gives the ASN too
	cityV4     bool // city holds IPv4 only
	asnV4      bool // asn holds IPv4 only
	errors     atomic.Uint64
}

// OpenGeo opens the databases p names. The files are memory-mapped and must
// be released with Close.
func OpenGeo(p GeoParams) (*Geo, error) {
	g := &Geo{}
	if p.CityDB != "" {
		r, err := openDB(p.CityDB, func(r *geoip2.Reader) error { _, err := r.City(netip.IPv4Unspecified()); return err })
		if err != nil {
			return nil, fmt.Errorf("%w: city database %q: %w", ErrGeoDB, p.CityDB, err)
		}
		_, err = r.Enterprise(netip.IPv4Unspecified())
		g.city, g.enterprise = r, !isInvalidMethod(err)
		g.cityV4 = r.Metadata().IPVersion == 4
	}
	if p.ASNDB != "" {
		r, err := openDB(p.ASNDB, func(r *geoip2.Reader) error { _, err := r.ASN(netip.IPv4Unspecified()); return err })
		if err != nil {
			_ = g.Close()
			return nil, fmt.Errorf("%w: ASN database %q: %w", ErrGeoDB, p.ASNDB, err)
		}
		g.asn, g.asnV4 = r, r.Metadata().IPVersion == 4
	}
	return g, nil
}

// openDB opens a database and checks, with probe, that it answers the
// lookups it is opened for.
func openDB(path string, probe func(*geoip2.Reader) error) (*geoip2.Reader, error) {
	r, err := geoip2.Open(path)
	if err != nil {
		if r != nil { // opened, but of a type geoip2 does not know
			_ = r.Close()
		}
		return nil, err
	}
	if err := probe(r); isInvalidMethod(err) {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

func isInvalidMethod(err error) bool {
	var ime geoip2.InvalidMethodError
	return errors.As(err, &ime)
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
	for _, r := range []*geoip2.Reader{g.city, g.asn} {
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

// Locate returns what is known of where ip is. Region is declaredRegion
// sanitised (see SanitizeRegion); Prefix is the /24 of an IPv4 address
// (IPv4-mapped IPv6 addresses are unmapped first) or the /48 of an IPv6
// one. With a City database it adds coordinates and the country (the
// registered country when the database gives no other); the ASN comes from
// the ASN database, else from an Enterprise City database. An invalid ip
// yields only Region.
func (g *Geo) Locate(ip netip.Addr, declaredRegion string) tracker.Location {
	loc := tracker.Location{Region: SanitizeRegion(declaredRegion)}
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
	if rec, ok := g.lookupCity(ip); ok {
		lat, lon := rec.loc.Latitude, rec.loc.Longitude
		if lat != nil && lon != nil && tracker.ValidCoords(*lat, *lon) {
			loc.Lat, loc.Lon, loc.HasCoords = *lat, *lon, true
		}
		loc.Country = countryCode(rec.country)
		if loc.Country == "" {
			loc.Country = countryCode(rec.registered)
		}
		loc.ASN = asnValue(rec.asn)
	}
	if g.asn != nil && !(ip.Is6() && g.asnV4) {
		rec, err := g.asn.ASN(ip)
		if err != nil {
			g.errors.Add(1)
		} else if a := asnValue(rec.AutonomousSystemNumber); a != 0 {
			loc.ASN = a
		}
	}
	return loc
}

// cityFacts is the part of a City or Enterprise record Locate reads.
type cityFacts struct {
	loc                 geoip2.Location
	country, registered string // ISO codes
	asn                 uint   // Enterprise records only
}

// lookupCity reads ip's record from the City database, if one is open and
// holds one. An IPv6 address in an IPv4-only database is not looked up.
func (g *Geo) lookupCity(ip netip.Addr) (cityFacts, bool) {
	if g.city == nil || (ip.Is6() && g.cityV4) {
		return cityFacts{}, false
	}
	if g.enterprise {
		rec, err := g.city.Enterprise(ip)
		if err != nil {
			g.errors.Add(1)
			return cityFacts{}, false
		}
		return cityFacts{rec.Location, rec.Country.ISOCode, rec.RegisteredCountry.ISOCode, rec.Traits.AutonomousSystemNumber}, true
	}
	rec, err := g.city.City(ip)
	if err != nil {
		g.errors.Add(1)
		return cityFacts{}, false
	}
	return cityFacts{loc: rec.Location, country: rec.Country.ISOCode, registered: rec.RegisteredCountry.ISOCode}, true
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

func asnValue(n uint) uint32 {
	if uint64(n) > math.MaxUint32 {
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
