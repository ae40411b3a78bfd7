"""Gymnasium environments as batched torch tensors: ``TorchVecEnv``, ``make_vector_env`` and wrappers.

gymnax environments (``gymnax/<id>``, JAX-native) live in :mod:`gaussrl.envs.gymnax`, imported on use.
"""

from gaussrl.core.errors import EnvError
from gaussrl.envs.gymnasium import Step, TorchVecEnv, check_env_id, episode_seed, make_vector_env
from gaussrl.envs.wrappers import NO_VELOCITY_ID, KeepObservationIndices, register_envs

GYMNAX_PREFIX = "gymnax/"
"""Environment ids starting with this name gymnax environments, trained compiled end to end."""


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
