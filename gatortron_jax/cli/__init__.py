"""The ``gatortron-jax`` command: argument parsing, dispatch and printing (``main.py``), and the
gin edge where configuration dataclasses become configurable (``gin_config.py``).

May import every other folder; nothing imports it.
"""

from gatortron_jax.cli.main import main

__all__ = ["main"]
