"""gatortron_jax: GatorTron-style clinical encoders in JAX."""
__version__ = "0.1.0"
