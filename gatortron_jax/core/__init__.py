"""The foundation every other folder stands on: errors, the device mesh and the one
logical-axis rules table (``partitioning``), multi-process start-up (``distributed``), the
sharded train state, orbax checkpoints, the optimizer, and where the checkout's files are.

Imports: jax/flax/optax/orbax only, never another gatortron_jax folder.
"""
