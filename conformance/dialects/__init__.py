"""Which dialect a loss computes: fitted to the oracle on probes (:mod:`.fitting`, term by term on
:mod:`.term_probes`), put in words (:mod:`.words`), and hints for the usual mistakes (:mod:`.hints`)."""
