"""Gaussian stochastic policy models for reinforcement learning on PyTorch, JAX/Flax and NVIDIA Warp.

Backends are imported lazily: ``import gaussrl`` pulls in none of torch, jax or warp.
Use ``from gaussrl.models.torch import Model, GaussianMixin`` (or ``.jax``, ``.warp``).
"""

__version__ = "0.1.0"
