package scheduler

import (
	"slices"
	"testing"
)

func TestAssignSubstreams(t *testing.T) {
	up := func(id string) Upstream { return Upstream{ID: id, BytesPerSec: 1e6} }
	late := func(id string) Upstream { return Upstream{ID: id, LateRatio: 0.5} }
	tests := []struct {
		name string
		p    SubstreamParams
		want []string
	}{
		{
			name: "healthy assignment kept",
			p: SubstreamParams{K: 4, Current: []string{"b", "c", "a", "d"},
				Upstreams: []Upstream{up("a"), up("b"), up("c"), up("d")}},
			want: []string{"b", "c", "a", "d"},
		},
		{
			name: "failing upstream's substream moves to the least loaded",
			p: SubstreamParams{K: 6, Current: []string{"a", "a", "b", "b", "c", "d"},
				Upstreams: []Upstream{up("a"), up("b"), late("c"), up("d")}},
			want: []string{"a", "a", "b", "b", "d", "d"},
		},
		{
			name: "slow upstream counts as failing",
			p: SubstreamParams{K: 4, Current: []string{"a", "b", "c", "d"}, MinBytesPerSec: 100_000,
				Upstreams: []Upstream{up("a"), {ID: "b", BytesPerSec: 5_000}, up("c"), up("d"), up("e")}},
			want: []string{"a", "e", "c", "d"},
		},
		{
			name: "upstream gone from the tracker's list is replaced",
			p: SubstreamParams{K: 3, Current: []string{"a", "x", "c"},
				Upstreams: []Upstream{up("a"), up("b"), up("c")}},
			want: []string{"a", "b", "c"},
		},
		{
			name: "fresh start spreads over distinct upstreams",
			p:    SubstreamParams{K: 4, Upstreams: []Upstream{up("c"), up("a"), up("b")}},
			want: []string{"a", "b", "c", "a"},
		},
		{
			name: "too few distinct: spread to an unused upstream",
			p: SubstreamParams{K: 4, Current: []string{"a", "a", "a", "b"},
				Upstreams: []Upstream{up("a"), up("b"), up("c")}},
			want: []string{"a", "a", "c", "b"},
		},
		{
			name: "too many distinct: consolidate",
			p: SubstreamParams{K: 4, Current: []string{"a", "b", "c", "d"}, MaxDistinct: 3,
				Upstreams: []Upstream{up("a"), up("b"), up("c"), up("d")}},
			want: []string{"b", "b", "c", "d"},
		},
		{
			name: "capacity respected",
			p: SubstreamParams{K: 4, Current: []string{"a", "a", "b", "b"},
				Upstreams: []Upstream{{ID: "a", Capacity: 1}, {ID: "b", Capacity: 3}, {ID: "c", Capacity: 1}}},
			want: []string{"a", "c", "b", "b"},
		},
		{
			name: "no healthy alternative: keep the failing one",
			p: SubstreamParams{K: 2, Current: []string{"a", "b"},
				Upstreams: []Upstream{late("a"), up("b")}},
			want: []string{"b", "b"},
		},
		{
			name: "nothing healthy at all: keep what we have",
			p: SubstreamParams{K: 2, Current: []string{"a", ""},
				Upstreams: []Upstream{late("a")}},
			want: []string{"a", ""},
		},
		{
			name: "no upstreams",
			p:    SubstreamParams{K: 2},
			want: []string{"", ""},
		},
		{
			name: "k zero",
			p:    SubstreamParams{K: 0, Upstreams: []Upstream{up("a")}},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.p.Upstreams)
			got := AssignSubstreams(tt.p)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !slices.Equal(in, tt.p.Upstreams) {
				t.Error("input modified")
			}
		})
	}
}
