;; globals exercises rewrite: it has imported, mutable and immutable
;; globals, no export of its memory's data, data segments out of order
;; with small and large gaps, and loops.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  (global $count (mut i32) (i32.const 0))
  (global $step i32 (i32.const 1))
  (global $wide (mut i64) (i64.const 7))
  (data (i32.const 100) "cd")
  (data (i32.const 90) "ab")
  (data (i32.const 60000) "ef")
  ;; count(n) loops n times and returns how often it looped.
  (func (export "count") (param $n i32) (result i32)
    (global.set $count (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (global.get $count) (local.get $n)))
        (global.set $count (i32.add (global.get $count) (global.get $step)))
        (br $l)))
    (global.get $count))
  ;; peek(addr) reads one byte of memory.
  (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))
