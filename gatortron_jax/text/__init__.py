"""Tokenizers: SentencePiece (``vocab``) and BERT WordPiece (``wordpiece``) vocabularies
behind one interface, with character offsets.

Imports: ``core``.
"""
