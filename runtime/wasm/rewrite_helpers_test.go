package wasm

import "github.com/wisp-faas/wisp/internal/wasmrewrite"

// rewritten is a module as rewrite changed it.
type rewritten struct {
	bin                           []byte
	globals                       []string
	segmentsBefore, segmentsAfter int
}

// rewrite is wasmrewrite.Rewrite.
func rewrite(bin []byte) (*rewritten, error) {
	r, err := wasmrewrite.Rewrite(bin)
	if err != nil {
		return nil, err
	}
	return &rewritten{bin: r.Bin, globals: r.Globals, segmentsBefore: r.SegmentsBefore, segmentsAfter: r.SegmentsAfter}, nil
}
