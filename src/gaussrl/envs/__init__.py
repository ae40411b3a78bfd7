"""Gymnasium environments as batched torch tensors: ``TorchVecEnv``, ``make_vector_env`` and wrappers.

gymnax environments (``gymnax/<id>``, JAX-native) live in :mod:`gaussrl.envs.gymnax`, imported on use.
The Gymnasium names are imported on first use too (they import torch), so that a run on a gymnax
environment, which never needs torch, does not import it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gaussrl.core.errors import EnvError

if TYPE_CHECKING:
    from gaussrl.envs.gymnasium import Step, TorchVecEnv, check_env_id, make_vector_env
    from gaussrl.envs.step import episode_seed
    from gaussrl.envs.wrappers import NO_VELOCITY_ID, KeepObservationIndices, register_envs

GYMNAX_PREFIX = "gymnax/"
"""Environment ids starting with this name gymnax environments, trained compiled end to end."""
_LAZY = {
    "Step": "gymnasium",
    "TorchVecEnv": "gymnasium",
    "check_env_id": "gymnasium",
    "episode_seed": "step",
    "make_vector_env": "gymnasium",
    "NO_VELOCITY_ID": "wrappers",
    "KeepObservationIndices": "wrappers",
    "register_envs": "wrappers",
}


def __getattr__(name: str) -> Any:
    """The Gymnasium names, from their modules on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


def is_gymnax_id(env_id: str) -> bool:
    """Whether ``env_id`` names a gymnax environment (``gymnax/<gymnax id>``).

    Args:
        env_id: An environment id.

    Returns:
        True for ``gymnax/...`` ids.
    """
    return env_id.startswith(GYMNAX_PREFIX)


__all__ = [
    "GYMNAX_PREFIX",
    "NO_VELOCITY_ID",
    "EnvError",
    "KeepObservationIndices",
    "Step",
    "TorchVecEnv",
    "check_env_id",
    "episode_seed",
    "is_gymnax_id",
    "make_vector_env",
    "register_envs",
]
