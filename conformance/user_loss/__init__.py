"""The user's loss: loaded (:mod:`.loading`), called through one interface whatever its framework,
layout and dtype (:mod:`.implementation`), in a worker process of its own (:mod:`.isolation`
here, :mod:`.worker` there)."""
