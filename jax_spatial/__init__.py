"""jax_spatial: a JAX-vectorized engine that writes spatial-reasoning QA for vision-language models."""

__version__ = "0.1.0"
