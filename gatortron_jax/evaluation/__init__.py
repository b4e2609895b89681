"""Evaluation: entity-level NER metrics as the clinical NER challenges report them."""

from gatortron_jax.evaluation.ner_metrics import bio_to_spans, entity_scores, format_table

__all__ = ["bio_to_spans", "entity_scores", "format_table"]
