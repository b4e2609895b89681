"""Flax modules only: the Megatron-BERT encoder and the heads on top (MLM, token
classification + CRF, sequence classification/regression, span QA).

Modules name logical axes, never mesh axes. Imports: ``core`` only.
"""
