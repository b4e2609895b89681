"""The ``gatortron-jax`` command: a small dispatcher (``main.py``; entry point
``gatortron_jax.cli.main:main``, also ``python -m gatortron_jax.cli``) over one module per command
family, each parsing, running and printing its own subcommands (``pretraining.py``,
``checkpoints.py``, ``finetuning.py``, ``inference.py``, ``planning.py``), the flags several
families share (``flags.py``), the gin edge where
configuration dataclasses become configurable (``gin_config.py``), and the start-up that keeps
TensorFlow's notices off a newcomer's screen (``quiet.py``).

May import every other folder; nothing imports it.
"""
