"""Gymnasium environments as batched torch tensors: ``TorchVecEnv``, ``make_vector_env`` and wrappers."""

from gaussrl.core.errors import EnvError
from gaussrl.envs.gymnasium import Step, TorchVecEnv, check_env_id, episode_seed, make_vector_env
from gaussrl.envs.wrappers import NO_VELOCITY_ID, KeepObservationIndices, register_envs

__all__ = [
    "NO_VELOCITY_ID",
    "EnvError",
    "KeepObservationIndices",
    "Step",
    "TorchVecEnv",
    "check_env_id",
    "episode_seed",
    "make_vector_env",
    "register_envs",
]
