"""PyTorch backend: ``from gaussrl.models.torch import Model, GaussianMixin, DeterministicMixin``."""

from gaussrl.models.torch.base import Model
from gaussrl.models.torch.deterministic import DeterministicMixin
from gaussrl.models.torch.functional import (
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    reduce_log_prob,
    tanh_log_det,
)
from gaussrl.models.torch.gaussian import GaussianMixin

__all__ = [
    "DeterministicMixin",
    "GaussianMixin",
    "Model",
    "gaussian_entropy",
    "gaussian_kl",
    "gaussian_log_prob",
    "reduce_log_prob",
    "tanh_log_det",
]
