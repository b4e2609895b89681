"""Metrics as the clinical challenges report them: strict/lenient entity P/R/F1,
relation/classification scores, Pearson, SQuAD EM/F1.

Imports: ``core``, ``annotations``.
"""

from gatortron_jax.evaluation.ner_metrics import bio_to_spans, entity_scores, format_table

__all__ = ["bio_to_spans", "entity_scores", "format_table"]
