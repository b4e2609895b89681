"""Masked-LM pretraining: the corpus (``corpus``), chunking and masking
(``preprocessors``), the feature converter, the seqio task users extend (``seqio_tasks``),
the input pipeline, the MLM loss, the pure donated step and the loop (``trainer``).

Imports: ``core``, ``models``, ``text``, ``annotations``.
"""
