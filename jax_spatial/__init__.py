"""jax_spatial: a JAX-vectorized engine writing spatial-reasoning QA for vision-language models."""

__version__ = "0.1.0"
