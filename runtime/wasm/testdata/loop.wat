;; loop is a WASI command that never returns and calls no host function:
;; only an interrupt inside the loop can stop it.
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))
