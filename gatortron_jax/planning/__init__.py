"""AOT planning: lower and compile the real train step on a simulated mesh and report
per-device memory, FLOPs and collectives.

Imports: ``core``, ``models``, ``pretraining``.
"""
