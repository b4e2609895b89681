"""Clinical documents and their annotations: the ``Document`` model, the readers and
writers of every annotated format (``formats/``), and the input policy (``input_policy``:
what happens to bad bytes, malformed lines and mismatched offsets).

Imports: ``core``.
"""
