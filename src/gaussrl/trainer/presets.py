"""Per-environment defaults for ``gaussrl train``, applied under whatever the command line sets.

The dataclass defaults are chosen for continuous control in general (MuJoCo-style tasks,
``discount_factor=0.99``). A few tasks are known to train much better with other values; for
those, the preset replaces the default, and any option given on the command line still wins.
Pendulum-v1 rewards are dense and its horizon short, so PPO learns far faster with a short
discount: ``discount_factor=0.95`` with ``gae_lambda=0.9`` there (chosen over the reference zoo's
0.9/0.95 because it reaches a return of -170 within the 100k default steps on seeds 0, 1 and 2;
see benchmarks/time_to_solve.py). The partially observable variant keeps ``discount_factor=0.9``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from gaussrl.trainer.loop import TrainConfig

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "Pendulum-v1": {"ppo": {"discount_factor": 0.95, "gae_lambda": 0.9}},
    "gaussrl/PendulumNoVel-v1": {"ppo": {"discount_factor": 0.9}},
    # Compiled end to end (--backend jax): many environments and small networks keep each update
    # cheap; see benchmarks/results/compiled_pendulum.md for the runs behind these values.
    "gymnax/Pendulum-v1": {
        "train": {"num_envs": 32, "timesteps": 200_000, "eval_interval": 50_000, "checkpoint_interval": 100_000},
        "ppo": {
            "discount_factor": 0.95,
            "gae_lambda": 0.9,
            "rollouts": 64,
            "learning_epochs": 8,
            "mini_batches": 4,
            "hidden_sizes": (32, 32),
        },
    },
}
"""Environment id -> ``"train"`` (TrainConfig fields) or an agent (``"ppo"``, ``"sac"``) -> field -> value."""


def env_from_args(args: Sequence[str]) -> str:
    """The ``--env`` value of a ``train`` command line, or the default environment.

    Args:
        args: Command-line arguments without the program name.

    Returns:
        The environment id.
    """
    for index, arg in enumerate(args):
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
        if arg == "--env" and index + 1 < len(args):
            return args[index + 1]
    return TrainConfig().env


def train_defaults(env_id: str) -> TrainConfig:
    """The defaults of ``gaussrl train --env ENV_ID``: the dataclass defaults with the env's preset.

    Args:
        env_id: Gymnasium id.

    Returns:
        The default training configuration for that environment.
    """
    preset = PRESETS.get(env_id, {})
    defaults = TrainConfig(env=env_id, **preset.get("train", {}))
    agents = {
        name: dataclasses.replace(getattr(defaults, name), **fields)
        for name, fields in preset.items()
        if name != "train"
    }
    return dataclasses.replace(defaults, **agents)


def describe(env_id: str) -> str | None:
    """A one-line note of the preset in force for ``env_id``, or None when there is none.

    Args:
        env_id: Gymnasium id.

    Returns:
        e.g. ``"preset for Pendulum-v1: ppo.discount_factor=0.95, ppo.gae_lambda=0.9 (...)"``.
    """
    preset = PRESETS.get(env_id)
    if not preset:
        return None
    values = ", ".join(
        f"{name}={value}" if agent == "train" else f"{agent}.{name}={value}"
        for agent, fields in preset.items()
        for name, value in fields.items()
    )
    return f"preset for {env_id}: {values} (options on the command line override it)"
