"""Backend-free pieces shared by every backend: spaces, options, reference math and errors.

Nothing in this package imports torch, jax or warp.
"""

from gaussrl.core.errors import NonFiniteOutputError, NotReadyError
from gaussrl.core.spaces import ActionBounds, action_bounds, space_shape, space_size
from gaussrl.core.spec import DeterministicSpec, GaussianSpec, Reduction

__all__ = [
    "ActionBounds",
    "DeterministicSpec",
    "GaussianSpec",
    "NonFiniteOutputError",
    "NotReadyError",
    "Reduction",
    "action_bounds",
    "space_shape",
    "space_size",
]
