"""Checkpoints from and to other formats (HF transformers) and the model-dir format.

Imports: ``core``, ``models``, ``text``.
"""
