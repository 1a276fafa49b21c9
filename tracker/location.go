package tracker

import (
	"math"
	"net/netip"
)

// Location is what the tracker knows of where a peer is. Any part may be
// missing: coordinates and ASN come from a GeoIP database when one is
// configured, Region from what the peer declares, Prefix and Addr from its
// address.
type Location struct {
	Lat, Lon  float64
	HasCoords bool
	Country   string // ISO 3166-1 alpha-2, upper case; "" when unknown
	ASN       uint32 // 0 when unknown
	Region    string // declared by the peer (e.g. "eu-west"); "" when none
	// Prefix is the peer's /24 (IPv4) or /48 (IPv6): peers sharing one are
	// probably close when nothing better is known, and no viewer gets two
	// upstreams in one. When it is missing, the Swarm takes Addr's.
	Prefix netip.Prefix
	// Addr is the peer's address. The viewers of one address (of one /64,
	// for IPv6) share one allowance of relay slots (see Swarm).
	Addr netip.Addr
}

// ValidCoords reports whether lat, lon are a latitude and a longitude in
// degrees (false for NaN).
func ValidCoords(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// earthRadiusKm is the Earth's mean radius, rounded (IUGG: 6371.0088 km).
const earthRadiusKm = 6371.0

// haversine returns hav(d/R) = sin²(d/2R) for the great-circle distance d
// between latitudes lat1 and lat2 that are dLon apart in longitude, all in
// degrees. Comparing it with a threshold's own value (as proximity does)
// avoids asin and sqrt.
func haversine(lat1, lat2, dLon float64) float64 {
	const rad = math.Pi / 180
	p1, p2 := lat1*rad, lat2*rad
	sp := math.Sin((p2 - p1) / 2)
	sl := math.Sin(dLon * rad / 2)
	return sp*sp + math.Cos(p1)*math.Cos(p2)*sl*sl
}

// Distance returns the great-circle distance between a and b in kilometres
// (haversine formula on a spherical Earth, within about 0.5% of the
// ellipsoidal distance). ok is false when either location has no valid
// coordinates.
func Distance(a, b Location) (km float64, ok bool) {
	if !a.HasCoords || !b.HasCoords || !ValidCoords(a.Lat, a.Lon) || !ValidCoords(b.Lat, b.Lon) {
		return 0, false
	}
	h := min(max(haversine(a.Lat, b.Lat, b.Lon-a.Lon), 0), 1)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(h)), true
}
