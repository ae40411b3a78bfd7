"""Per-environment defaults for ``gaussrl train``, applied under whatever the command line sets.

The dataclass defaults are chosen for continuous control in general (MuJoCo-style tasks,
``discount_factor=0.99``). A few tasks are known to train much better with other values; for
those, the preset replaces the default, and any option given on the command line still wins.
Pendulum-v1 rewards are dense and its horizon short, so PPO learns far faster with a short
discount: ``discount_factor=0.95`` with ``gae_lambda=0.9`` there (chosen over the reference zoo's
0.9/0.95 because it reaches a return of -170 within the 100k default steps on seeds 0, 1 and 2;
see benchmarks/time_to_solve.py). The partially observable variant keeps ``discount_factor=0.9``.

Families: one preset for every task of a family, so that its settings are judged on tasks they
were not tuned on. ``MUJOCO_LOCOMOTION`` covers Gymnasium's MuJoCo locomotion tasks (any
version): PPO's values are the RL Baselines3 Zoo's tuned HalfCheetah settings, SAC's the zoo's
defaults for every MuJoCo task. An exact-id preset wins over its family's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from gaussrl.trainer.config import TrainConfig

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "Pendulum-v1": {"ppo": {"discount_factor": 0.95, "gae_lambda": 0.9}},
    "gaussrl/PendulumNoVel-v1": {"ppo": {"discount_factor": 0.9}},
    # Compiled end to end (--backend jax): many environments and small networks keep each update
    # cheap, and 4 epochs (not 8) halve the update, which is most of a chunk's time, while seeds 0-2
    # still end above -200; see benchmarks/results/compiled_pendulum.md for the runs behind these values.
    "gymnax/Pendulum-v1": {
        "train": {
            "num_envs": 32,
            "timesteps": 200_000,
            "eval_interval": 50_000,
            "checkpoint_interval": 100_000,
            # The run takes seconds; metrics.jsonl has every record, and TensorBoard's writer (torch's) would
            # import torch, 1.2-1.7 s of CPU. --tensorboard turns it on.
            "tensorboard": False,
        },
        "ppo": {
            "discount_factor": 0.95,
            "gae_lambda": 0.9,
            "rollouts": 64,
            "learning_epochs": 4,
            "mini_batches": 4,
            "hidden_sizes": (32, 32),
        },
    },
}
"""Environment id -> ``"train"`` (TrainConfig fields) or an agent (``"ppo"``, ``"sac"``) -> field -> value."""

MUJOCO_LOCOMOTION: dict[str, dict[str, Any]] = {
    # PPO, each value with what it fixes (zoo: rl-baselines3-zoo's tuned HalfCheetah hyperparameters):
    "ppo": {
        # MuJoCo rewards are tens per step and observations unbounded: normalise both (running statistics,
        # rewards by the std of the discounted return, as SB3's VecNormalize), so one learning rate fits all tasks.
        "observation_normalization": True,
        "reward_normalization": True,
        "value_normalization": False,  # the scaled rewards already give unit-scale value targets
        # Larger ReLU networks fit the 17-376-dimensional states; a start at std exp(-2) = 0.14 keeps the
        # early random torques from flipping the body, where std 1 spends the first 100k steps falling over.
        "hidden_sizes": (256, 256),
        "activation": "relu",
        "initial_log_std": -2.0,
        # Weights and biases uniform in +-1/sqrt(fan_in), as the zoo's tuned HalfCheetah run (ortho_init=False):
        # the first mean actions differ between states instead of all starting near zero. HalfCheetah-v5 1M,
        # seeds 0/1/2: 6115 / 6108 / 4337 with it, 5620 / 5787 / 4791 with the orthogonal default.
        "initialization": "uniform",
        # Short rollouts of one environment, many small epochs at a low, constant rate and a tight clip:
        # frequent, conservative updates that do not collapse the policy of a fast-moving gait.
        "rollouts": 512,
        "mini_batches": 8,
        "learning_epochs": 20,
        "learning_rate": 2.0633e-5,
        "learning_rate_scheduler": "constant",
        "ratio_clip": 0.1,
        "entropy_loss_scale": 0.000401762,
        "value_loss_scale": 0.58096,
        "grad_norm_clip": 0.8,
        # A 0.98 discount (horizon ~50 steps) is enough for running gaits and lowers the variance of the returns.
        "discount_factor": 0.98,
        "gae_lambda": 0.92,
    },
    # SAC: 256x256 networks and the usual 3e-4 rates; 10k uniformly random steps fill the replay buffer with
    # varied states before the first update, so the critics do not overfit the first few trajectories.
    "sac": {
        "hidden_sizes": (256, 256),
        "actor_learning_rate": 3e-4,
        "critic_learning_rate": 3e-4,
        "entropy_learning_rate": 3e-4,
        "random_timesteps": 10_000,
        "learning_starts": 10_000,
    },
    "train": {"num_envs": 1, "eval_episodes": 10, "eval_interval": 10_000, "checkpoint_interval": 50_000},
}
"""The preset of Gymnasium's MuJoCo locomotion tasks (see the module docstring)."""

FAMILIES: dict[str, tuple[tuple[str, ...], dict[str, dict[str, Any]]]] = {
    "MuJoCo locomotion": (
        ("Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "Swimmer", "Walker2d"),
        MUJOCO_LOCOMOTION,
    ),
}
"""Family name -> (task names without their ``-vN`` suffix, preset)."""


def preset_for(env_id: str) -> tuple[str, dict[str, dict[str, Any]]] | None:
    """The preset in force for ``env_id``: its own, else its family's, else None.

    Args:
        env_id: Gymnasium id, e.g. ``"HalfCheetah-v5"``.

    Returns:
        ``(what it is for, preset)``, e.g. ``("the MuJoCo locomotion family", {...})``.
    """
    if env_id in PRESETS:
        return env_id, PRESETS[env_id]
    name = env_id.rsplit("-v", 1)[0]
    for family, (names, preset) in FAMILIES.items():
        if name in names:
            return f"the {family} family", preset
    return None


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
    found = preset_for(env_id)
    preset = found[1] if found else {}
    defaults = TrainConfig(env=env_id, **preset.get("train", {}))
    agents = {
        name: dataclasses.replace(getattr(defaults, name), **fields)
        for name, fields in preset.items()
        if name != "train"
    }
    return dataclasses.replace(defaults, **agents)


def describe(env_id: str, algo: str | None = None) -> str | None:
    """A one-line note of the preset in force for ``env_id``, or None when there is none.

    Args:
        env_id: Gymnasium id.
        algo: Show only this agent's fields (and the run's); None: every agent's.

    Returns:
        e.g. ``"preset for Pendulum-v1: ppo.discount_factor=0.95, ppo.gae_lambda=0.9 (...)"``; None also
        when the preset sets nothing for ``algo`` (Pendulum-v1's for SAC).
    """
    found = preset_for(env_id)
    if not found:
        return None
    target, preset = found
    values = ", ".join(
        f"{name}={value}" if agent == "train" else f"{agent}.{name}={value}"
        for agent, fields in preset.items()
        if algo is None or agent in ("train", algo)
        for name, value in fields.items()
    )
    if not values:
        return None
    return f"preset for {target}: {values} (options on the command line override it)"
