package proxywasm

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// sdkSerialize is the Go SDK's SerializeMap
// (proxywasm/internal/serde.go), rewritten here because the SDK keeps it
// internal: what a guest built with the SDK hands the host.
func sdkSerialize(ms [][2]string) []byte {
	size := 4
	for _, m := range ms {
		size += len(m[0]) + len(m[1]) + 10
	}
	ret := make([]byte, size)
	ret[0], ret[1], ret[2], ret[3] = byte(len(ms)), byte(len(ms)>>8), byte(len(ms)>>16), byte(len(ms)>>24)
	base := 4
	put := func(n int) {
		ret[base], ret[base+1], ret[base+2], ret[base+3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		base += 4
	}
	for _, m := range ms {
		put(len(m[0]))
		put(len(m[1]))
	}
	for _, m := range ms {
		base += copy(ret[base:], m[0]) + 1
		base += copy(ret[base:], m[1]) + 1
	}
	return ret
}

func TestPairsGolden(t *testing.T) {
	got := encodePairs([][2]string{{"a", "1"}, {"bb", ""}})
	want := []byte{
		2, 0, 0, 0, // two pairs
		1, 0, 0, 0, 1, 0, 0, 0, // "a", "1"
		2, 0, 0, 0, 0, 0, 0, 0, // "bb", ""
		'a', 0, '1', 0, 'b', 'b', 0, 0,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoded\n% x\nwant\n% x", got, want)
	}
}

func TestPairsAgainstSDK(t *testing.T) {
	for name, pairs := range map[string][][2]string{
		"one":          {{":path", "/"}},
		"empty value":  {{"x-empty", ""}, {"x-b", "b"}},
		"empty key":    {{"", "v"}},
		"utf-8":        {{"x-snow", "☃ héllo"}, {"ключ", "значение"}},
		"repeated":     {{"set-cookie", "a=1"}, {"set-cookie", "b=2"}},
		"binary value": {{"x-bin", "\x01\xff\x7f"}},
	} {
		enc := encodePairs(pairs)
		if sdk := sdkSerialize(pairs); !bytes.Equal(enc, sdk) {
			t.Errorf("%s: host encodes\n% x\nthe SDK\n% x", name, enc, sdk)
		}
		dec, err := decodePairs(sdkSerialize(pairs))
		if err != nil || !slices.Equal(dec, pairs) {
			t.Errorf("%s: decoded the SDK's bytes as %q, %v", name, dec, err)
		}
	}
}

func TestPairsEmpty(t *testing.T) {
	if b := encodePairs(nil); len(b) != 0 {
		t.Errorf("an empty map is encoded as % x; proxy-wasm-cpp-host hands guests no bytes", b)
	}
	for _, b := range [][]byte{nil, sdkSerialize(nil)} {
		if pairs, err := decodePairs(b); err != nil || len(pairs) != 0 {
			t.Errorf("decoding % x: %q, %v", b, pairs, err)
		}
	}
}

func TestPairsMalformed(t *testing.T) {
	good := sdkSerialize([][2]string{{"ab", "cd"}})
	for name, b := range map[string][]byte{
		"short count":    {1, 0},
		"count too big":  {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0},
		"truncated":      good[:len(good)-1],
		"missing NUL":    append(slices.Clone(good[:len(good)-1]), 'x'),
		"trailing bytes": append(slices.Clone(good), 0),
		"length too big": func() []byte { b := slices.Clone(good); b[4] = 200; return b }(),
	} {
		if _, err := decodePairs(b); !errors.Is(err, errPairs) {
			t.Errorf("%s: %v, want errPairs", name, err)
		}
	}
}
