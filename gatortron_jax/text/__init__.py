"""Tokenizers and token geometry: SentencePiece (``vocab``) and BERT WordPiece (``wordpiece``)
vocabularies behind one interface, text → tokens with character offsets (``offsets``), and the
one window planner for sequences longer than the model (``windows``).

Imports: ``core``, ``annotations``.
"""
