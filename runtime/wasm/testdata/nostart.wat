;; nostart exports neither _start nor wisp_handle: no ABI applies.
(module
  (memory (export "memory") 1)
  (func (export "run")))
