"""Masked-LM pretraining: raw notes (``corpus``) are tokenized once into a cache
(``prepare`` writes it, ``corpus_cache`` reads it), which the one training input path
(``cache_pipeline``: global shuffle, per-process shards, hashed masks, packing, O(1) resume)
feeds to the pure donated step and the loop (``steps``, ``trainer``); ``seqio_tasks`` registers
the corpus task users extend. ``preprocessors`` / ``feature_converters`` / ``pipeline`` are the
raw-text tf.data pipeline that ``benchmarks/bench_data.py`` measures the cache against.

Imports: ``core``, ``models``, ``text``, ``annotations``.
"""
