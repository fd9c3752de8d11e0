;; badimport imports a function wisp does not provide.
(module
  (import "env" "secret" (func $secret))
  (memory (export "memory") 1)
  (func (export "_start") (call $secret)))
