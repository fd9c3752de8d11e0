;; hello-wat is the smallest wisp function: a WASI command, written in the
;; WebAssembly text format, that prints a fixed CGI response to stdout
;; with fd_write (the wagi ABI).
;;
;;   wat2wasm hello.wat -o hello-wat.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; The response at offset 16; the iovec {ptr, len} at 0; the count of
  ;; bytes written at 8.
  (data (i32.const 16) "Content-Type: text/plain\n\nHello from WAT!\n")

  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 42))
    (drop (call $fd_write
      (i32.const 1)   ;; stdout
      (i32.const 0)   ;; iovecs
      (i32.const 1)   ;; one iovec
      (i32.const 8)))))
