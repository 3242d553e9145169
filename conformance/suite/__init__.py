"""The properties (:mod:`.properties`), the comparisons they make (:mod:`.comparison`,
:mod:`.tolerances`, :mod:`.finite_difference`), the failures they raise (:mod:`.failure`), and
running them under Hypothesis (:mod:`.runner`, :mod:`.profiles`)."""
