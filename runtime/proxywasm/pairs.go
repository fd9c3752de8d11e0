package proxywasm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A header map crosses the ABI as: the number of pairs (u32, little
// endian); for each pair the length of its key and of its value (u32
// each); then for each pair its key and its value, each followed by a NUL
// byte. The lengths do not count the NULs.

// encodePairs serializes pairs. An empty map is encoded as an empty
// buffer, as proxy-wasm-cpp-host returns it (its getPairs); guests treat
// that as "no headers".
func encodePairs(pairs [][2]string) []byte {
	if len(pairs) == 0 {
		return nil
	}
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + 1 + len(p[1]) + 1
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, uint32(len(pairs)))
	at := 4
	for _, p := range pairs {
		binary.LittleEndian.PutUint32(b[at:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(b[at+4:], uint32(len(p[1])))
		at += 8
	}
	for _, p := range pairs {
		at += copy(b[at:], p[0]) + 1 // the NUL is already zero
		at += copy(b[at:], p[1]) + 1
	}
	return b
}

// errPairs is returned for a serialized map that is not well formed.
var errPairs = errors.New("malformed header map")

// decodePairs parses a serialized map, refusing one whose lengths run
// past its end, whose strings are not NUL-terminated, or that has bytes
// left over. An empty buffer is an empty map.
func decodePairs(b []byte) ([][2]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, want at least 4", errPairs, len(b))
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > (len(b)-4)/10 { // each pair takes at least 8 bytes of sizes and 2 NULs
		return nil, fmt.Errorf("%w: %d pairs do not fit in %d bytes", errPairs, n, len(b))
	}
	sizes := b[4 : 4+8*n]
	data := b[4+8*n:]
	pairs := make([][2]string, n)
	for i := range pairs {
		for j := range 2 {
			l := int(binary.LittleEndian.Uint32(sizes[8*i+4*j:]))
			if l >= len(data) || data[l] != 0 {
				return nil, fmt.Errorf("%w: pair %d runs past the end or lacks its NUL", errPairs, i)
			}
			pairs[i][j] = string(data[:l])
			data = data[l+1:]
		}
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last pair", errPairs, len(data))
	}
	return pairs, nil
}
