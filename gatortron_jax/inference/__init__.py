"""Running a model dir: NER prediction, sequence-task prediction, embeddings and
de-identification.

Imports: everything below it (``core`` … ``finetuning``, ``convert``); nothing imports it but ``cli``.
"""
