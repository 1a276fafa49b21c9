package tracker

import (
	"math"
	"testing"
)

func TestDistance(t *testing.T) {
	at := func(lat, lon float64) Location { return Location{Lat: lat, Lon: lon, HasCoords: true} }
	paris, tokyo, sydney := at(48.85, 2.35), at(35.68, 139.69), at(-33.87, 151.21)
	for _, tc := range []struct {
		name   string
		a, b   Location
		wantKm float64
		tol    float64 // relative
	}{
		{"paris-tokyo", paris, tokyo, 9700, 0.01},
		{"tokyo-paris", tokyo, paris, 9700, 0.01},
		{"paris-sydney", paris, sydney, 16960, 0.01},
		{"same place", paris, paris, 0, 0},
		{"antipodes", at(0, 0), at(0, 180), math.Pi * earthRadiusKm, 1e-9},
		{"poles", at(90, 0), at(-90, 0), math.Pi * earthRadiusKm, 1e-9},
		{"across the date line", at(0, 179.5), at(0, -179.5), 111.2, 0.01},
	} {
		km, ok := Distance(tc.a, tc.b)
		if !ok {
			t.Errorf("%s: not ok", tc.name)
			continue
		}
		if math.Abs(km-tc.wantKm) > tc.tol*tc.wantKm+1e-9 {
			t.Errorf("%s: %.1f km, want %.1f ± %.1f%%", tc.name, km, tc.wantKm, tc.tol*100)
		}
	}
	for _, tc := range []struct {
		name string
		a, b Location
	}{
		{"no coords", Location{Lat: 1, Lon: 1}, paris},
		{"no coords b", paris, Location{}},
		{"NaN", at(math.NaN(), 0), paris},
		{"out of range", paris, at(0, 200)},
	} {
		if km, ok := Distance(tc.a, tc.b); ok {
			t.Errorf("%s: got %v km, want not ok", tc.name, km)
		}
	}
}
