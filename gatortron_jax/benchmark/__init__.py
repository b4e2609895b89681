"""The GatorTron benchmark table in one command: a seqio Mixture of benchmark tasks, each
fine-tuned and scored on test for several seeds, written as a results table with its recipes.

``suite.py`` holds the benchmark registry (which fine-tuning recipe, data layout and metric each
task of a Mixture uses); ``runner.py`` runs one (task, seed) through the ``gatortron-jax``
command itself (a subprocess: the recipe is literally the command line, and one task's crash or
memory does not take the table down), resumably; ``table.py`` aggregates results.md/json and
compares two of them.

Imports: ``core``, ``finetuning`` (task registries); runs ``cli`` only as a subprocess.
"""
