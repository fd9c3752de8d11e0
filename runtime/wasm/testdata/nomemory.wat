;; nomemory has no memory, so rewrite cannot instrument it; wisp runs it
;; with wazero's own interruption instead.
(module
  (func (export "_start") (loop $l (br $l))))
