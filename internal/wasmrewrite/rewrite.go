package wasmrewrite

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Names of the exports that rewrite adds.
const (
	// InterruptExport is an i32 global that the host sets to 1 to make the
	// guest trap at its next loop iteration or function call.
	InterruptExport = "wisp.interrupt"
	// SnapshotGlobalPrefix + index names an exported mutable global.
	SnapshotGlobalPrefix = "wisp.snapshot.global."
)

// Fuel is how many loop iterations and function calls a guest makes
// between two visits to the host, where it can be preempted by Go's
// scheduler and sees its interrupt. See runtime/wasm/RATIONALE.md, "Interrupting
// guests".
const Fuel = 1024

// mergeGap is the largest run of zeros between two data segments that
// rewrite fills in to merge them into one.
const mergeGap = 4096

// Section IDs of the WebAssembly binary format.
const (
	sectionCustom    = 0
	sectionImport    = 2
	sectionMemory    = 5
	sectionGlobal    = 6
	sectionExport    = 7
	sectionCode      = 10
	sectionData      = 11
	sectionDataCount = 12
)

// Import and export kinds.
const (
	kindFunc   = 0
	kindTable  = 1
	kindMemory = 2
	kindGlobal = 3
	kindTag    = 4
)

var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// Result is a module as Rewrite changed it.
type Result struct {
	// Bin is the new module.
	Bin []byte
	// Globals names the exports of the module's mutable globals.
	Globals []string
	// SegmentsBefore and SegmentsAfter count the data segments before
	// and after merging.
	SegmentsBefore, SegmentsAfter int
}

// Rewrite returns a copy of the module bin changed so that wisp can run it
// cheaply and stop it at any time. See runtime/wasm/RATIONALE.md, "Interrupting guests"
// and "Snapshots". It
//
//   - adds two mutable i32 globals, $fuel and $interrupt (exported as
//     InterruptExport), and at the start of every function body and every
//     loop the code
//
//     $fuel = $fuel - 1
//     if $fuel == 0 { memory.grow(0); if $interrupt { unreachable }; $fuel = Fuel }
//
//     so that the guest visits the host (memory.grow exits to Go) every
//     Fuel iterations or calls, where the goroutine can be preempted and
//     the interrupt is seen;
//
//   - exports every mutable global the module defines, as
//     SnapshotGlobalPrefix+index, so that a snapshot can read and restore
//     them;
//
//   - merges active data segments separated by at most mergeGap zero
//     bytes (Go's linker emits tens of thousands, and wazero spends
//     instantiation time per segment);
//
//   - drops the DWARF custom sections (".debug_*"), whose code offsets no
//     longer hold.
//
// Everything else is copied unchanged. An error means the module uses
// something rewrite does not understand; the module is then run as it is.
func Rewrite(bin []byte) (*Result, error) {
	if !bytes.HasPrefix(bin, wasmHeader) {
		return nil, errors.New("not a WebAssembly 1.0 binary module")
	}
	type section struct {
		id   byte
		body []byte
		raw  []byte // id, size and body
	}
	var (
		sections []section
		hasCount bool
		imported uint32 // globals
		defined  uint32 // globals
		mutable  []uint32
		mems     uint32
		mem64    bool
	)
	r := reader{b: bin[len(wasmHeader):]}
	for r.len() > 0 {
		start := r.off
		id := r.byte()
		body := r.bytes(r.u32())
		if r.err != nil {
			return nil, fmt.Errorf("section at offset %d: %w", len(wasmHeader)+start, r.err)
		}
		var err error
		switch id {
		case sectionImport:
			imported, mems, err = countImports(body)
		case sectionMemory:
			var n uint32
			n, mem64, err = memories(body)
			mems += n
		case sectionGlobal:
			defined, mutable, err = mutableGlobals(body, imported)
		case sectionDataCount:
			hasCount = true
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		sections = append(sections, section{id, body, r.b[start:r.off]})
	}
	if mems == 0 {
		return nil, errors.New("the module has no memory, which the interrupt check needs")
	}
	fuelGlobal := imported + defined // indices of the globals added
	interrupt := fuelGlobal + 1

	res := &Result{Globals: make([]string, len(mutable))}
	for i, idx := range mutable {
		res.Globals[i] = SnapshotGlobalPrefix + strconv.FormatUint(uint64(idx), 10)
	}

	out := append(make([]byte, 0, len(bin)+len(bin)/8), wasmHeader...)
	var globalBody, exportBody []byte
	wroteGlobal, wroteExport := false, false
	for _, s := range sections {
		switch s.id {
		case sectionGlobal:
			globalBody = s.body
			continue
		case sectionExport:
			exportBody = s.body
			continue
		}
		if s.id != sectionCustom && !wroteGlobal && order(s.id) > order(sectionGlobal) {
			out = appendSection(out, sectionGlobal, appendGlobal(globalBody))
			wroteGlobal = true
		}
		if s.id != sectionCustom && !wroteExport && order(s.id) > order(sectionExport) {
			out = appendSection(out, sectionExport, appendExports(exportBody, interrupt, mutable))
			wroteExport = true
		}
		switch s.id {
		case sectionCustom:
			if name, _ := customName(s.body); strings.HasPrefix(name, ".debug_") {
				continue
			}
			out = append(out, s.raw...)
		case sectionCode:
			code, err := instrumentCode(s.body, fuelGlobal, interrupt, mem64)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			out = appendSection(out, sectionCode, code)
		case sectionData:
			data, before, after, err := mergeData(s.body, !hasCount)
			if err != nil {
				return nil, fmt.Errorf("data section: %w", err)
			}
			res.SegmentsBefore, res.SegmentsAfter = before, after
			out = appendSection(out, sectionData, data)
		default:
			out = append(out, s.raw...)
		}
	}
	if !wroteGlobal {
		out = appendSection(out, sectionGlobal, appendGlobal(globalBody))
	}
	if !wroteExport {
		out = appendSection(out, sectionExport, appendExports(exportBody, interrupt, mutable))
	}
	res.Bin = out
	return res, nil
}

// order is the position of a non-custom section in a module. The tag
// (13) and data count (12) sections are out of ID order.
func order(id byte) int {
	switch id {
	case 13:
		return 55 // between memory (5) and global (6)
	case sectionDataCount:
		return 95 // between element (9) and code (10)
	}
	return int(id) * 10
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(body)))
	return append(out, body...)
}

// customName returns the name of a custom section.
func customName(body []byte) (string, error) {
	r := reader{b: body}
	name := r.bytes(r.u32())
	return string(name), r.err
}

// appendGlobal returns a global section holding the globals of body (a
// global section's content, possibly nil) and then $fuel and $interrupt.
func appendGlobal(body []byte) []byte {
	var count uint32
	var entries []byte
	if body != nil {
		r := reader{b: body}
		count = r.u32()
		entries = body[r.off:]
	}
	sec := appendU32(nil, count+2)
	sec = append(sec, entries...)
	sec = append(sec, 0x7f, 0x01, 0x41) // i32, mutable, i32.const fuel, end
	sec = appendS32(sec, Fuel)
	sec = append(sec, 0x0b)
	return append(sec, 0x7f, 0x01, 0x41, 0x00, 0x0b) // i32, mutable, i32.const 0, end
}

// appendExports returns an export section holding the exports of body (an
// export section's content, possibly nil), the interrupt global and the
// mutable globals.
func appendExports(body []byte, interrupt uint32, globals []uint32) []byte {
	var count uint32
	var entries []byte
	if body != nil {
		r := reader{b: body}
		count = r.u32()
		entries = body[r.off:]
	}
	sec := appendU32(nil, count+1+uint32(len(globals)))
	sec = append(sec, entries...)
	export := func(name string, idx uint32) {
		sec = appendU32(sec, uint32(len(name)))
		sec = append(sec, name...)
		sec = append(sec, kindGlobal)
		sec = appendU32(sec, idx)
	}
	export(InterruptExport, interrupt)
	for _, idx := range globals {
		export(SnapshotGlobalPrefix+strconv.FormatUint(uint64(idx), 10), idx)
	}
	return sec
}

// countImports returns how many globals and memories an import section
// imports.
func countImports(body []byte) (globals, mems uint32, err error) {
	r := reader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		r.bytes(r.u32()) // module
		r.bytes(r.u32()) // name
		switch kind := r.byte(); kind {
		case kindFunc:
			r.u32()
		case kindTable:
			r.s33() // reference type
			r.limits()
		case kindMemory:
			if r.limits() {
				return 0, 0, errors.New("64-bit memories are not supported")
			}
			mems++
		case kindGlobal:
			r.s33()  // value type
			r.byte() // mutability
			globals++
		case kindTag:
			r.byte() // attribute
			r.u32()  // type index
		default:
			return 0, 0, fmt.Errorf("unknown import kind %#x", kind)
		}
	}
	return globals, mems, r.err
}

// memories returns how many memories a memory section defines and whether
// the first is 64-bit.
func memories(body []byte) (uint32, bool, error) {
	r := reader{b: body}
	n := r.u32()
	var mem64 bool
	for i := uint32(0); i < n && r.err == nil; i++ {
		if is64 := r.limits(); i == 0 {
			mem64 = is64
		}
	}
	return n, mem64, r.err
}

// mutableGlobals returns how many globals a global section defines and
// the indices of the mutable ones, the first defined global having index
// base.
func mutableGlobals(body []byte, base uint32) (uint32, []uint32, error) {
	r := reader{b: body}
	var idx []uint32
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.s33() // value type
		if mut := r.byte(); mut == 1 {
			idx = append(idx, base+i)
		}
		r.constExpr()
	}
	return n, idx, r.err
}

// instrumentCode returns the code section body with the fuel check (see
// rewrite) at the start of every function and of every loop.
func instrumentCode(body []byte, fuelGlobal, interrupt uint32, mem64 bool) ([]byte, error) {
	getFuel := appendU32([]byte{0x23}, fuelGlobal)
	setFuel := appendU32([]byte{0x24}, fuelGlobal)
	var check []byte
	check = append(check, getFuel...)
	check = append(check, 0x41, 0x01, 0x6b) // i32.const 1, i32.sub
	check = append(check, setFuel...)
	check = append(check, getFuel...)
	check = append(check, 0x45, 0x04, 0x40) // i32.eqz, if
	if mem64 {
		check = append(check, 0x42, 0x00) // i64.const 0
	} else {
		check = append(check, 0x41, 0x00) // i32.const 0
	}
	check = append(check, 0x40, 0x00, 0x1a) // memory.grow 0, drop
	check = append(check, 0x23)
	check = appendU32(check, interrupt)
	check = append(check, 0x04, 0x40, 0x00, 0x0b) // if, unreachable, end
	check = append(check, 0x41)
	check = appendS32(check, Fuel)
	check = append(check, setFuel...)
	check = append(check, 0x0b) // end

	r := reader{b: body}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(body)+len(body)/4), n)
	var fn []byte
	for i := uint32(0); i < n; i++ {
		f := reader{b: r.bytes(r.u32())}
		if r.err != nil {
			return nil, r.err
		}
		for locals := f.u32(); locals > 0 && f.err == nil; locals-- {
			f.u32() // count
			f.s33() // type
		}
		fn = append(fn[:0], f.b[:f.off]...)
		fn = append(fn, check...)
		for f.len() > 0 && f.err == nil {
			start := f.off
			op := f.instruction()
			fn = append(fn, f.b[start:f.off]...)
			if op == 0x03 { // loop
				fn = append(fn, check...)
			}
		}
		if f.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, f.err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if r.len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return out, r.err
}

// dataSegment is an active data segment of memory 0 at a constant offset.
type dataSegment struct {
	offset uint32
	data   []byte
}

// mergeData returns the data section body with its segments merged where
// at most mergeGap zero bytes separate them, and the segment counts
// before and after. It returns body unchanged unless merging is safe: it
// is allowed (no data count section, so no instruction names a segment),
// every segment is active in memory 0 at an i32.const offset, and no two
// segments overlap.
func mergeData(body []byte, allowed bool) ([]byte, int, int, error) {
	r := reader{b: body}
	n := int(r.u32())
	if !allowed || n < 2 {
		return body, n, n, r.err
	}
	segs := make([]dataSegment, 0, n)
	for i := 0; i < n; i++ {
		flags := r.u32()
		if flags != 0 {
			return body, n, n, nil
		}
		if r.byte() != 0x41 { // i32.const
			return body, n, n, nil
		}
		off := uint32(r.i32())
		if r.byte() != 0x0b {
			return body, n, n, nil
		}
		data := r.bytes(r.u32())
		if r.err != nil {
			return nil, 0, 0, r.err
		}
		segs = append(segs, dataSegment{off, data})
	}
	if r.len() != 0 {
		return nil, 0, 0, errors.New("trailing bytes")
	}
	// Segments that do not overlap can be applied in any order.
	slices.SortStableFunc(segs, func(a, b dataSegment) int { return cmp.Compare(a.offset, b.offset) })
	for i := 1; i < len(segs); i++ {
		if prev := segs[i-1]; uint64(segs[i].offset) < uint64(prev.offset)+uint64(len(prev.data)) {
			return body, n, n, nil
		}
	}
	var merged []dataSegment
	var buf []byte
	for i, s := range segs {
		if i > 0 {
			cur := &merged[len(merged)-1]
			end := uint64(cur.offset) + uint64(len(cur.data))
			if gap := uint64(s.offset) - end; gap <= mergeGap {
				cur.data = append(append(cur.data, make([]byte, gap)...), s.data...)
				continue
			}
		}
		buf = append([]byte(nil), s.data...)
		merged = append(merged, dataSegment{s.offset, buf})
	}
	out := appendU32(nil, uint32(len(merged)))
	for _, s := range merged {
		out = append(out, 0x00, 0x41)
		out = appendS32(out, int32(s.offset))
		out = append(out, 0x0b)
		out = appendU32(out, uint32(len(s.data)))
		out = append(out, s.data...)
	}
	return out, n, len(merged), nil
}

// reader decodes the binary format. The first error sticks; later reads
// return zero values.
type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("unexpected end of section")

func (r *reader) len() int { return len(r.b) - r.off }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.off = len(r.b)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail(errShort)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n uint32) []byte {
	if uint64(r.len()) < uint64(n) {
		r.fail(errShort)
		return nil
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

// leb reads an LEB128 number of at most bits bits and returns its raw
// (unsigned, not sign-extended) value.
func (r *reader) leb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= (bits+6)/7*7 {
			r.fail(errors.New("LEB128 number too long"))
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.leb(32)) }

// s33 steps over a value type, a reference type or a block type.
func (r *reader) s33() { r.leb(33) }

// i32 reads a signed LEB128 32-bit number.
func (r *reader) i32() int32 {
	var v int64
	var shift uint
	for {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v)
		}
		if shift >= 35 {
			r.fail(errors.New("LEB128 number too long"))
			return 0
		}
	}
}

// limits steps over the limits of a table or memory and reports whether
// they are 64-bit.
func (r *reader) limits() bool {
	flags := r.byte()
	bits := uint(32)
	if flags&0x04 != 0 { // memory64
		bits = 64
	}
	r.leb(bits)
	if flags&0x01 != 0 {
		r.leb(bits)
	}
	return bits == 64
}

// memarg steps over a memory instruction's alignment, memory index
// (multi-memory) and offset.
func (r *reader) memarg() {
	if align := r.u32(); align&0x40 != 0 {
		r.u32()
	}
	r.leb(64)
}

// constExpr steps over a constant expression up to and including its end.
func (r *reader) constExpr() {
	for r.err == nil {
		if op := r.instruction(); op == 0x0b {
			return
		}
	}
}

// instruction steps over one instruction and returns its opcode (the
// prefix byte for prefixed instructions). It fails on instructions of
// proposals that wazero does not run (GC, typed function references).
func (r *reader) instruction() byte {
	op := r.byte()
	switch {
	case op == 0x02, op == 0x03, op == 0x04, op == 0x06: // block, loop, if, try
		r.s33()
	case op == 0x0c, op == 0x0d, // br, br_if
		op == 0x07, op == 0x08, op == 0x09, op == 0x18, // catch, throw, rethrow, delegate
		op == 0x10, op == 0x12, // call, return_call
		op >= 0x20 && op <= 0x26, // local.*, global.*, table.get, table.set
		op == 0xd2:               // ref.func
		r.u32()
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x1c: // select t*
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.s33()
		}
	case op == 0x1f: // try_table
		r.s33()
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			switch kind := r.byte(); kind {
			case 0, 1: // catch, catch_ref: tag, label
				r.u32()
				r.u32()
			case 2, 3: // catch_all, catch_all_ref: label
				r.u32()
			default:
				r.fail(fmt.Errorf("unknown catch kind %#x", kind))
			}
		}
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f, op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41: // i32.const
		r.leb(32)
	case op == 0x42: // i64.const
		r.leb(64)
	case op == 0x43: // f32.const
		r.bytes(4)
	case op == 0x44: // f64.const
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.s33()
	case op == 0xfc:
		r.prefixFC()
	case op == 0xfd:
		r.prefixFD()
	case op == 0xfe:
		r.prefixFE()
	case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f, op == 0x19, // unreachable, nop, else, throw_ref, end, return, catch_all
		op == 0x1a, op == 0x1b, // drop, select
		op >= 0x45 && op <= 0xc4, // numeric
		op == 0xd1:               // ref.is_null
	default:
		r.fail(fmt.Errorf("unsupported instruction %#x", op))
	}
	return op
}

// prefixFC steps over a saturating truncation, bulk memory or table
// instruction.
func (r *reader) prefixFC() {
	switch sub := r.u32(); {
	case sub <= 7: // trunc_sat
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow, table.size, table.fill
		r.u32()
	default:
		r.fail(fmt.Errorf("unsupported instruction 0xfc %d", sub))
	}
}

// prefixFD steps over a SIMD instruction.
func (r *reader) prefixFD() {
	switch sub := r.u32(); {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load_zero
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		r.byte()
	case sub >= 84 && sub <= 91: // load_lane, store_lane
		r.memarg()
		r.byte()
	case sub <= 0x113: // everything else (and relaxed SIMD) has no immediate
	default:
		r.fail(fmt.Errorf("unsupported instruction 0xfd %d", sub))
	}
}

// prefixFE steps over an atomic instruction.
func (r *reader) prefixFE() {
	switch sub := r.u32(); {
	case sub == 3: // atomic.fence
		r.byte()
	case sub <= 0x4e:
		r.memarg()
	default:
		r.fail(fmt.Errorf("unsupported instruction 0xfe %d", sub))
	}
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
