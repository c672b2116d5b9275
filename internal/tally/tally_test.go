package tally

import "testing"

type inner struct{ A, B int64 }

type counts struct {
	inner
	C     int64
	Name  string
	n     int64 // unexported: left alone
	Ratio float64
}

func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dst, src counts
		want     counts
	}{
		{"zero", counts{}, counts{}, counts{}},
		{"every int64 field, embedded ones too", counts{inner: inner{1, 2}, C: 3}, counts{inner: inner{10, 20}, C: 30},
			counts{inner: inner{11, 22}, C: 33}},
		{"other fields untouched", counts{Name: "a", n: 1, Ratio: 0.5}, counts{Name: "b", n: 7, Ratio: 2},
			counts{Name: "a", n: 1, Ratio: 0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Add(&tc.dst, tc.src)
			if tc.dst != tc.want {
				t.Errorf("got %+v, want %+v", tc.dst, tc.want)
			}
		})
	}
}
