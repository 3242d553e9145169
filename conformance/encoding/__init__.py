"""Targets from boxes: encoders held to the oracle's (``check-encoder``), and losses that take box
lists (``check --targets boxes|padded``).

:mod:`.conventions`: the conventions an encoder may follow (the oracle's and the classic bugs),
each an encoder of its own, in words; :mod:`.cases`: the boxes that tell them apart;
:mod:`.calling`: an encoder called in its framework (in the loss's worker process);
:mod:`.encoder_check`: check-encoder's run and report; :mod:`.box_targets`: a grid handed to a
loss as box lists, and the property that holds such a loss's encoding to the oracle's.
"""
