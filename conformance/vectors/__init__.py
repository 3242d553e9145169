"""Language-neutral test vectors: written (:mod:`.write`) and replayed against a loss (:mod:`.replay`)."""
