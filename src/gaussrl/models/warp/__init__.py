"""NVIDIA Warp backend: ``from gaussrl.models.warp import Model, GaussianMixin, DeterministicMixin``.

Models are ``warp_nn`` modules; inputs and outputs are ``warp.array`` objects on the model's device.
"""

from gaussrl.models.warp.base import Model
from gaussrl.models.warp.deterministic import DeterministicMixin
from gaussrl.models.warp.functional import (
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    reduce_log_prob,
    tanh_log_det,
)
from gaussrl.models.warp.gaussian import GaussianMixin

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
