"""The ``gatortron-jax`` command: argument parsing, dispatch and printing (``main.py``; entry
point ``gatortron_jax.cli.main:main``, also ``python -m gatortron_jax.cli``), the gin edge where
configuration dataclasses become configurable (``gin_config.py``), and the start-up that keeps
TensorFlow's notices off a newcomer's screen (``quiet.py``).

May import every other folder; nothing imports it.
"""
