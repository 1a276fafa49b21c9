package server

import (
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/seedcast/seedcast/tracker"
)

// writeDB builds a MaxMind DB of type dbType holding records and returns its
// path. The test networks are documentation ranges, which mmdbwriter
// refuses unless reserved networks are allowed.
func writeDB(t testing.TB, dbType string, ipVersion int, records map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		IPVersion:               ipVersion,
		RecordSize:              24,
		IncludeReservedNetworks: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func cityRecord(name, country string, lat, lon float64) mmdbtype.Map {
	return mmdbtype.Map{
		"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(name)}},
		"country":  mmdbtype.Map{"iso_code": mmdbtype.String(country), "names": mmdbtype.Map{"en": mmdbtype.String(country)}},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon), "accuracy_radius": mmdbtype.Uint16(20)},
	}
}

// testCityDB is a GeoLite2-City-like database of documentation networks,
// of type dbType (e.g. GeoLite2-City, or GeoIP2-Enterprise to have the ASNs
// in its traits read).
func testCityDB(t testing.TB, dbType string) string {
	tokyo := cityRecord("Tokyo", "JP", 35.6895, 139.6917)
	tokyo["traits"] = mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64501)}
	return writeDB(t, dbType, 6, map[string]mmdbtype.Map{
		"192.0.2.0/24":    cityRecord("Paris", "FR", 48.8566, 2.3522),
		"198.51.100.0/24": tokyo,
		"2001:db8::/32":   cityRecord("Sydney", "AU", -33.8688, 151.2093),
		// No location, no country; a lower-case registered country and an
		// ASN in the traits, as GeoIP2 Enterprise and DB-IP carry.
		"203.0.113.0/25": {
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("nz")},
			"traits":             mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64500)},
		},
		// A record of the wrong shape: it must count as an error and
		// contribute nothing.
		"203.0.113.128/25": {
			"location": mmdbtype.Map{"latitude": mmdbtype.String("north"), "longitude": mmdbtype.Float64(1)},
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String("GB")},
		},
		// Out-of-range coordinates and a malformed country code.
		"100.64.0.0/24": {
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(91), "longitude": mmdbtype.Float64(0)},
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String("FRA")},
		},
	})
}

// testASNDB is a GeoLite2-ASN-like database.
func testASNDB(t testing.TB) string {
	asn := func(n uint32, org string) mmdbtype.Map {
		return mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n),
			"autonomous_system_organization": mmdbtype.String(org),
		}
	}
	return writeDB(t, "GeoLite2-ASN", 6, map[string]mmdbtype.Map{
		"192.0.2.0/24":    asn(64496, "Example Paris"),
		"198.51.100.0/24": asn(64502, "Example Tokyo"),
		"2001:db8::/32":   asn(64497, "Example Sydney"),
	})
}

func openTestGeo(t testing.TB, p GeoParams) *Geo {
	t.Helper()
	g, err := OpenGeo(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestLocate(t *testing.T) {
	city, asn := testCityDB(t, "GeoIP2-Enterprise"), testASNDB(t)
	both := openTestGeo(t, GeoParams{CityDB: city, ASNDB: asn})
	cityOnly := openTestGeo(t, GeoParams{CityDB: city})
	plainCity := openTestGeo(t, GeoParams{CityDB: testCityDB(t, "GeoLite2-City")})
	asnOnly := openTestGeo(t, GeoParams{ASNDB: asn})
	none := openTestGeo(t, GeoParams{})

	paris := tracker.Location{Lat: 48.8566, Lon: 2.3522, HasCoords: true, Country: "FR", ASN: 64496, Prefix: pfx("192.0.2.0/24")}
	tests := []struct {
		name   string
		g      *Geo
		ip     string // "" for the zero Addr
		region string
		want   tracker.Location
	}{
		{"v4", both, "192.0.2.77", "eu-west", func() tracker.Location { l := paris; l.Region = "eu-west"; return l }()},
		{"v4-mapped v6", both, "::ffff:192.0.2.77", "", paris},
		{"asn db wins over city traits", both, "198.51.100.5", "",
			tracker.Location{Lat: 35.6895, Lon: 139.6917, HasCoords: true, Country: "JP", ASN: 64502, Prefix: pfx("198.51.100.0/24")}},
		{"asn from city traits", cityOnly, "198.51.100.5", "",
			tracker.Location{Lat: 35.6895, Lon: 139.6917, HasCoords: true, Country: "JP", ASN: 64501, Prefix: pfx("198.51.100.0/24")}},
		{"no asn from a plain city db", plainCity, "198.51.100.5", "",
			tracker.Location{Lat: 35.6895, Lon: 139.6917, HasCoords: true, Country: "JP", Prefix: pfx("198.51.100.0/24")}},
		{"plain city db, registered country", plainCity, "203.0.113.9", "",
			tracker.Location{Country: "NZ", Prefix: pfx("203.0.113.0/24")}},
		{"v6", both, "2001:db8:1234:5678::1", "ap-southeast",
			tracker.Location{Lat: -33.8688, Lon: 151.2093, HasCoords: true, Country: "AU", ASN: 64497, Region: "ap-southeast", Prefix: pfx("2001:db8:1234::/48")}},
		{"v6 with zone", both, "2001:db8:1::1%eth0", "",
			tracker.Location{Lat: -33.8688, Lon: 151.2093, HasCoords: true, Country: "AU", ASN: 64497, Prefix: pfx("2001:db8:1::/48")}},
		{"registered country, city asn", both, "203.0.113.9", "",
			tracker.Location{Country: "NZ", ASN: 64500, Prefix: pfx("203.0.113.0/24")}},
		{"bad coords and country", both, "100.64.0.1", "", tracker.Location{Prefix: pfx("100.64.0.0/24")}},
		{"corrupt record", both, "203.0.113.200", "", tracker.Location{Prefix: pfx("203.0.113.0/24")}},
		{"unknown v4", both, "8.8.8.8", "x", tracker.Location{Region: "x", Prefix: pfx("8.8.8.0/24")}},
		{"unknown v6", both, "2a00:1450:4007:80e::200e", "", tracker.Location{Prefix: pfx("2a00:1450:4007::/48")}},
		{"link-local v6 with zone", both, "fe80::1%en0", "", tracker.Location{Prefix: pfx("fe80::/48")}},
		{"asn only", asnOnly, "192.0.2.1", "", tracker.Location{ASN: 64496, Prefix: pfx("192.0.2.0/24")}},
		{"no db", none, "192.0.2.1", "EU-West", tracker.Location{Region: "eu-west", Prefix: pfx("192.0.2.0/24")}},
		{"no db v6", none, "2001:db8::1", "", tracker.Location{Prefix: pfx("2001:db8::/48")}},
		{"nil geo", nil, "::ffff:198.51.100.200", "us-east-1", tracker.Location{Region: "us-east-1", Prefix: pfx("198.51.100.0/24")}},
		{"invalid addr", both, "", "eu", tracker.Location{Region: "eu"}},
		{"invalid addr nil geo", nil, "", "bad region!", tracker.Location{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ip netip.Addr
			if tc.ip != "" {
				ip = netip.MustParseAddr(tc.ip)
			}
			if got := tc.g.Locate(ip, tc.region); got != tc.want {
				t.Errorf("Locate(%s, %q)\n got %+v\nwant %+v", tc.ip, tc.region, got, tc.want)
			}
		})
	}
}

func TestLocateLookupErrors(t *testing.T) {
	g := openTestGeo(t, GeoParams{CityDB: testCityDB(t, "GeoLite2-City")})
	if n := g.LookupErrors(); n != 0 {
		t.Fatalf("LookupErrors = %d before any lookup", n)
	}
	g.Locate(netip.MustParseAddr("192.0.2.1"), "")
	g.Locate(netip.MustParseAddr("8.8.8.8"), "")
	if n := g.LookupErrors(); n != 0 {
		t.Fatalf("LookupErrors = %d after good lookups", n)
	}
	g.Locate(netip.MustParseAddr("203.0.113.130"), "")
	if n := g.LookupErrors(); n != 1 {
		t.Fatalf("LookupErrors = %d after a corrupt record, want 1", n)
	}
	var nilGeo *Geo
	if n := nilGeo.LookupErrors(); n != 0 {
		t.Fatalf("nil LookupErrors = %d", n)
	}
}

func TestLocateIPv4OnlyDB(t *testing.T) {
	path := writeDB(t, "GeoLite2-City", 4, map[string]mmdbtype.Map{
		"192.0.2.0/24": cityRecord("Paris", "FR", 48.8566, 2.3522),
	})
	g := openTestGeo(t, GeoParams{CityDB: path})
	if got := g.Locate(netip.MustParseAddr("::ffff:192.0.2.9"), ""); got.Country != "FR" || !got.HasCoords {
		t.Errorf("mapped v4 in a v4 db: %+v", got)
	}
	want := tracker.Location{Prefix: pfx("2001:db8::/48")}
	if got := g.Locate(netip.MustParseAddr("2001:db8::1"), ""); got != want {
		t.Errorf("v6 in a v4 db: got %+v, want %+v", got, want)
	}
	if n := g.LookupErrors(); n != 0 {
		t.Errorf("LookupErrors = %d; a v6 address in a v4 db is not an error", n)
	}
}

func TestOpenGeoErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("not a maxmind database"), 0o644); err != nil {
		t.Fatal(err)
	}
	city := testCityDB(t, "GeoLite2-City")
	unknownType := writeDB(t, "Example-Geo", 6, map[string]mmdbtype.Map{"192.0.2.0/24": cityRecord("Paris", "FR", 48.8566, 2.3522)})
	for _, tc := range []struct {
		name     string
		p        GeoParams
		notExist bool
	}{
		{"missing city", GeoParams{CityDB: filepath.Join(dir, "none.mmdb")}, true},
		{"missing asn", GeoParams{CityDB: city, ASNDB: filepath.Join(dir, "none.mmdb")}, true},
		{"garbage city", GeoParams{CityDB: garbage}, false},
		{"garbage asn", GeoParams{ASNDB: garbage}, false},
		{"unknown database type", GeoParams{CityDB: unknownType}, false},
		{"asn db as city", GeoParams{CityDB: testASNDB(t)}, false},
		{"city db as asn", GeoParams{ASNDB: city}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := OpenGeo(tc.p)
			if err == nil {
				_ = g.Close()
				t.Fatal("no error")
			}
			if g != nil {
				t.Error("non-nil Geo with an error")
			}
			if !errors.Is(err, ErrGeoDB) {
				t.Errorf("%v does not wrap ErrGeoDB", err)
			}
			if tc.notExist && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v does not wrap fs.ErrNotExist", err)
			}
		})
	}
}

func TestGeoClose(t *testing.T) {
	var nilGeo *Geo
	if err := nilGeo.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
	g, err := OpenGeo(GeoParams{CityDB: testCityDB(t, "GeoIP2-Enterprise"), ASNDB: testASNDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")

	// Lookups racing Close must neither crash (the files are unmapped) nor
	// race (go test -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				g.Locate(ip, "eu")
			}
		})
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()

	want := tracker.Location{Region: "eu", Prefix: pfx("192.0.2.0/24")}
	if got := g.Locate(ip, "eu"); got != want {
		t.Errorf("Locate after Close = %+v, want %+v", got, want)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSanitizeRegion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"eu-west", "eu-west"},
		{"EU-West-1", "eu-west-1"},
		{"us-east-1", "us-east-1"},
		{"", ""},
		{strings.Repeat("a", 32), strings.Repeat("a", 32)},
		{strings.Repeat("a", 33), ""},
		{"eu_west", ""},
		{"eu west", ""},
		{" eu-west", ""},
		{"eu.west", ""},
		{"../etc", ""},
		{"zürich", ""},
		{"\u212a8s", ""}, // KELVIN SIGN lower-cases to 'k' in Unicode; not here
		{"eu\x00", ""},
		{"\xff", ""},
	} {
		if got := SanitizeRegion(tc.in); got != tc.want {
			t.Errorf("SanitizeRegion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLocatePrefix(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.255", "192.0.2.0/24"},
		{"10.1.2.3", "10.1.2.0/24"},
		{"0.0.0.0", "0.0.0.0/24"},
		{"::ffff:10.1.2.3", "10.1.2.0/24"},
		{"2001:db8:aaaa:bbbb:cccc::1", "2001:db8:aaaa::/48"},
		{"::1", "::/48"},
		{"fe80::1%eth0", "fe80::/48"},
	} {
		got := (*Geo)(nil).Locate(netip.MustParseAddr(tc.ip), "").Prefix
		if got != pfx(tc.want) {
			t.Errorf("prefix of %s = %s, want %s", tc.ip, got, tc.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		pfx("10.0.0.0/8"),
		pfx("2001:db8:ffff::/48"),
		pfx("::ffff:172.16.0.0/108"), // written mapped: means 172.16.0.0/12
	}
	many := strings.TrimSuffix(strings.Repeat("10.0.0.9, ", 40), ", ")
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string // header lines
		trusted []netip.Prefix
		want    string // "" for the zero Addr
	}{
		{"no proxy", "203.0.113.7:1234", nil, trusted, "203.0.113.7"},
		{"untrusted remote ignores xff", "203.0.113.7:1234", []string{"198.51.100.9"}, trusted, "203.0.113.7"},
		{"no trusted list", "10.0.0.1:443", []string{"198.51.100.9"}, nil, "10.0.0.1"},
		{"trusted proxy", "10.0.0.1:443", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"spoofed left entries ignored", "10.0.0.1:443", []string{"1.1.1.1, 8.8.8.8, 198.51.100.9"}, trusted, "198.51.100.9"},
		{"trusted hops skipped", "10.0.0.1:443", []string{"1.1.1.1, 198.51.100.9, 10.0.0.2, 172.16.3.4"}, trusted, "198.51.100.9"},
		{"several header lines", "10.0.0.1:443", []string{"1.1.1.1, 198.51.100.9", "10.0.0.2"}, trusted, "198.51.100.9"},
		{"tabs and spaces", "10.0.0.1:443", []string{" 198.51.100.9 ,\t10.0.0.2\t"}, trusted, "198.51.100.9"},
		{"all trusted: left-most", "10.0.0.1:443", []string{"10.0.0.3, 10.0.0.2"}, trusted, "10.0.0.3"},
		{"no header", "10.0.0.1:443", nil, trusted, "10.0.0.1"},
		{"empty header", "10.0.0.1:443", []string{""}, trusted, "10.0.0.1"},
		{"blank header", "10.0.0.1:443", []string{"  "}, trusted, "10.0.0.1"},
		{"garbage", "10.0.0.1:443", []string{"garbage"}, trusted, "10.0.0.1"},
		{"unknown", "10.0.0.1:443", []string{"unknown"}, trusted, "10.0.0.1"},
		{"garbage at the right", "10.0.0.1:443", []string{"198.51.100.9, garbage"}, trusted, "10.0.0.1"},
		{"garbage behind a trusted hop", "10.0.0.1:443", []string{"198.51.100.9, %%, 10.0.0.2"}, trusted, "10.0.0.1"},
		{"client garbage at the left", "10.0.0.1:443", []string{"garbage, <script>, 198.51.100.9"}, trusted, "198.51.100.9"},
		{"trailing comma", "10.0.0.1:443", []string{"198.51.100.9,"}, trusted, "10.0.0.1"},
		{"empty entry", "10.0.0.1:443", []string{"198.51.100.9,,10.0.0.2"}, trusted, "10.0.0.1"},
		{"empty header line", "10.0.0.1:443", []string{"198.51.100.9", ""}, trusted, "10.0.0.1"},
		{"cidr is not an address", "10.0.0.1:443", []string{"198.51.100.0/24"}, trusted, "10.0.0.1"},
		{"too many trusted hops", "10.0.0.1:443", []string{"198.51.100.9, " + many}, trusted, "10.0.0.1"},
		{"entry with port", "10.0.0.1:443", []string{"198.51.100.9:5555"}, trusted, "198.51.100.9"},
		{"v6 entry with port", "10.0.0.1:443", []string{"[2001:db8:1::5]:5555"}, trusted, "2001:db8:1::5"},
		{"v6 entry", "10.0.0.1:443", []string{"2001:db8:1::5"}, trusted, "2001:db8:1::5"},
		{"v6 entry with zone", "10.0.0.1:443", []string{"fe80::9%en0"}, trusted, "fe80::9"},
		{"mapped entry", "10.0.0.1:443", []string{"::ffff:198.51.100.9"}, trusted, "198.51.100.9"},
		{"v6 trusted proxy", "[2001:db8:ffff::1]:443", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"v6 untrusted remote", "[2001:db8:1::1]:443", []string{"198.51.100.9"}, trusted, "2001:db8:1::1"},
		{"v6 remote with zone", "[fe80::1%eth0]:1234", []string{"198.51.100.9"}, trusted, "fe80::1"},
		{"mapped remote trusted", "[::ffff:10.0.0.1]:443", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"mapped trusted prefix", "172.16.5.5:443", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"mapped trusted prefix, outside", "172.32.0.1:443", []string{"198.51.100.9"}, trusted, "172.32.0.1"},
		{"remote without port", "198.51.100.1", nil, trusted, "198.51.100.1"},
		{"remote garbage", "garbage", []string{"198.51.100.9"}, trusted, ""},
		{"remote empty", "", []string{"198.51.100.9"}, trusted, ""},
		{"remote unix socket", "@", []string{"198.51.100.9"}, trusted, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/tracker", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got := ClientIP(r, tc.trusted); got != want {
				t.Errorf("ClientIP(remote %q, xff %q) = %v, want %v", tc.remote, tc.xff, got, want)
			}
		})
	}
}

// FuzzClientIP checks that ClientIP never panics and returns either the
// zero Addr or an address that is in its inputs, normalised (unmapped,
// without zone); and the remote address whenever that is not a proxy.
func FuzzClientIP(f *testing.F) {
	for _, s := range [][2]string{
		{"198.51.100.9", "10.0.0.1:443"},
		{"1.1.1.1, 198.51.100.9, 10.0.0.2", "10.0.0.1:443"},
		{"garbage, 198.51.100.9", "[::ffff:10.0.0.1]:443"},
		{"[2001:db8::1]:80, fe80::1%eth0", "[2001:db8::2%lo]:443"},
		{",,,", "127.0.0.1:1"},
		{"", "garbage"},
		{strings.Repeat("10.0.0.1,", 50), "10.0.0.1:1"},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	narrow := []netip.Prefix{pfx("10.0.0.0/8"), pfx("127.0.0.0/8"), pfx("::1/128"), pfx("2001:db8::/32"), pfx("::ffff:192.168.0.0/112")}
	wide := []netip.Prefix{pfx("0.0.0.0/0"), pfx("::/0")}
	f.Fuzz(func(t *testing.T, xff, remote string, trustAll bool) {
		trusted := narrow
		if trustAll {
			trusted = wide
		}
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := ClientIP(r, trusted)

		norm := func(s string) netip.Addr {
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
		rem := norm(remote)
		if !got.IsValid() {
			if rem.IsValid() {
				t.Fatalf("invalid result with a valid remote %q", remote)
			}
			return
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("result %v not normalised", got)
		}
		if !rem.IsValid() {
			t.Fatalf("result %v from an unparsable remote %q", got, remote)
		}
		if got == rem {
			return
		}
		trustedRemote := false
		for _, p := range trusted {
			if pa := p.Addr(); pa.Is4In6() {
				p = netip.PrefixFrom(pa.Unmap(), p.Bits()-96)
			}
			trustedRemote = trustedRemote || p.Contains(rem)
		}
		if !trustedRemote {
			t.Fatalf("result %v is not the untrusted remote %v", got, rem)
		}
		for _, e := range strings.Split(xff, ",") {
			if norm(strings.TrimSpace(e)) == got {
				return
			}
		}
		t.Fatalf("result %v is in neither remote %q nor xff %q", got, remote, xff)
	})
}
