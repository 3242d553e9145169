"""``check --html``: the check's report as one self-contained HTML page (:mod:`.page`), drawn in
plain SVG (:mod:`.svg`) from what :mod:`.evidence` keeps of the failing examples."""
