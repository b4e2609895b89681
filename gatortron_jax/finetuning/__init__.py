"""Supervised fine-tuning: the task registries, featurization (NER windows, relation
candidates, QA windows), one shared step/epoch machinery (``supervised``) and the per-task-kind
loops (``ner``, ``sequence``, ``qa``).

Imports: ``core``, ``models``, ``text``, ``annotations``, ``evaluation``; never ``inference``.
"""
