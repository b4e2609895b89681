"""Generators of the synthetic sample data shipped in ``data/`` (no real patient text):
the pretraining corpus, annotated NER notes, and task examples. Run by ``make-sample-data``.

Not part of any training or inference path: only ``cli`` and the tests import it.
"""
