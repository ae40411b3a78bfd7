"""JAX/Flax backend: ``from gaussrl.models.jax import Model, GaussianMixin, DeterministicMixin``."""

from gaussrl.models.jax.base import Model, StateDict
from gaussrl.models.jax.deterministic import DeterministicMixin
from gaussrl.models.jax.functional import (
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    reduce_log_prob,
    tanh_log_det,
)
from gaussrl.models.jax.gaussian import GaussianMixin

__all__ = [
    "DeterministicMixin",
    "GaussianMixin",
    "Model",
    "StateDict",
    "gaussian_entropy",
    "gaussian_kl",
    "gaussian_log_prob",
    "reduce_log_prob",
    "tanh_log_det",
]
