// Package tally adds up the count structs of the run summaries (a sweep's,
// a backfill's, inspect's): every int64 field of one is added to the same
// field of the other, so a count added to such a struct is summed without
// anyone remembering to.
package tally

import "reflect"

// Add adds every int64 field of src, including those of embedded structs,
// to the same field of dst. Fields of other types are left alone.
func Add[T any](dst *T, src T) {
	add(reflect.ValueOf(dst).Elem(), reflect.ValueOf(src))
}

func add(dst, src reflect.Value) {
	for i := range dst.NumField() {
		d, s := dst.Field(i), src.Field(i)
		switch {
		case d.Kind() == reflect.Struct:
			add(d, s)
		case d.Kind() == reflect.Int64 && d.CanSet():
			d.SetInt(d.Int() + s.Int())
		}
	}
}
