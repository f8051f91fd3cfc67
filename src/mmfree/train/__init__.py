"""Quantisation-aware training of a tiny HGRN-Bit (``python -m mmfree.train``).

Optional: needs the ``[train]`` extra (``pip install -e ".[train]"``). Nothing else in
``mmfree`` imports this package. ``docs/training.md`` documents the run.
"""
