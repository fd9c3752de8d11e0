package api

import (
	"fmt"
	"reflect"
	"testing"
)

// fill sets every exported field reachable from v to a non-zero value:
// pointers allocated, slices and maps given two elements.
func fill(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(depth + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(depth + 1))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for i := range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, depth+1+i)
			fill(e, depth+1)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	}
}

// assertNoSharing fails if a and b, equal values, share any pointer, slice
// array or map.
func assertNoSharing(t *testing.T, a, b reflect.Value, path string) {
	t.Helper()
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: pointer shared", path)
		}
		assertNoSharing(t, a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			t.Errorf("%s: slice shared", path)
		}
		for i := range a.Len() {
			assertNoSharing(t, a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			t.Errorf("%s: map shared", path)
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				assertNoSharing(t, a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)
			}
		}
	}
}

func TestDeepCopy(t *testing.T) {
	tests := []struct {
		name string
		orig any
		copy func(any) any
	}{
		{"Function", new(Function), func(v any) any { return v.(*Function).DeepCopy() }},
		{"Revision", new(Revision), func(v any) any { return v.(*Revision).DeepCopy() }},
		{"RevisionTemplate", new(RevisionTemplate), func(v any) any { return v.(*RevisionTemplate).DeepCopy() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fill(reflect.ValueOf(tt.orig).Elem(), 0)
			got := tt.copy(tt.orig)
			if !reflect.DeepEqual(got, tt.orig) {
				t.Fatalf("DeepCopy() =\n%s\nwant\n%s", mustMarshal(got), mustMarshal(tt.orig))
			}
			assertNoSharing(t, reflect.ValueOf(tt.orig), reflect.ValueOf(got), tt.name)
		})
	}
	if (*Function)(nil).DeepCopy() != nil || (*Revision)(nil).DeepCopy() != nil || (*RevisionTemplate)(nil).DeepCopy() != nil {
		t.Error("DeepCopy of nil is not nil")
	}
}
