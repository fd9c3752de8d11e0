package wasmrewrite

import (
	"bytes"
	"testing"
)

func TestMergeData(t *testing.T) {
	seg := func(off int32, data string) []byte {
		b := []byte{0x00, 0x41}
		b = appendS32(b, off)
		b = append(b, 0x0b)
		b = appendU32(b, uint32(len(data)))
		return append(b, data...)
	}
	section := func(segs ...[]byte) []byte {
		b := appendU32(nil, uint32(len(segs)))
		for _, s := range segs {
			b = append(b, s...)
		}
		return b
	}
	body := section(seg(5000, "far"), seg(10, "cd"), seg(0, "ab"))
	out, before, after, err := mergeData(body, true)
	if err != nil || before != 3 || after != 2 {
		t.Fatalf("mergeData: %d → %d, %v", before, after, err)
	}
	want := section(seg(0, "ab\x00\x00\x00\x00\x00\x00\x00\x00cd"), seg(5000, "far"))
	if !bytes.Equal(out, want) {
		t.Errorf("merged % x\nwant   % x", out, want)
	}
	passive := append(appendU32(nil, 2), seg(0, "ab")...)
	passive = append(passive, 0x01, 0x02, 'x', 'y') // flags 1: passive, 2 bytes
	for name, body := range map[string][]byte{
		"overlap":    section(seg(0, "abcd"), seg(2, "xy")),
		"passive":    passive,
		"not wanted": section(seg(0, "ab"), seg(4, "cd")),
	} {
		out, before, after, err := mergeData(body, name != "not wanted")
		if err != nil || !bytes.Equal(out, body) || before != after {
			t.Errorf("%s: merged %d → %d (%v); want it left alone", name, before, after, err)
		}
	}
}
