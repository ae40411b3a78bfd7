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
version): PPO's values are the generic MuJoCo settings (SB3's PPO defaults with normalised
observations and rewards, as the RL Baselines3 Zoo runs Ant-v3 and Swimmer-v3, with the rate
annealed linearly to 0), SAC's the zoo's defaults for every MuJoCo task. A family may name tasks whose own tuned values
go over the family's (``TASKS``): HalfCheetah's and Ant's PPO take the zoo's tuned HalfCheetah
settings (the zoo tunes per task too); no other task gets them. An exact-id preset (``PRESETS``)
wins over both.
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
    # PPO, each value with what it fixes; the networks keep the dataclass defaults (64-64 tanh, orthogonal
    # initialisation with gain sqrt(2), 0.01 on the mean's layer, log-std 0).
    "ppo": {
        # MuJoCo rewards are tens per step and observations unbounded: normalise both (running statistics,
        # rewards by the std of the discounted return, as SB3's VecNormalize), so one learning rate fits all tasks.
        "observation_normalization": True,
        "reward_normalization": True,
        "value_normalization": False,  # the scaled rewards already give unit-scale value targets
        # Long rollouts (2048 steps of one environment) span whole episodes of the 1000-step tasks, so the
        # advantages of a falling Hopper and of a slow Swimmer both see where their episodes go.
        "rollouts": 2048,
        "mini_batches": 32,
        "learning_epochs": 10,
        # 3e-4 annealed linearly to 0 over the run: large early steps, then a policy that settles instead of
        # oscillating (the KL-adaptive default chases a KL target tuned on Pendulum).
        "learning_rate": 3e-4,
        "learning_rate_scheduler": "linear",
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

HALFCHEETAH_PPO: dict[str, Any] = {
    # rl-baselines3-zoo's tuned HalfCheetah hyperparameters, for HalfCheetah and Ant (on Hopper and Swimmer these
    # values stall: Hopper at 570, Swimmer at 31 after 500k steps, against 3433 and 111 with the family's).
    # Larger ReLU networks; a start at std exp(-2) = 0.14 keeps the early random torques from flipping the body,
    # where std 1 spends the first 100k steps on its back.
    "hidden_sizes": (256, 256),
    "activation": "relu",
    "initial_log_std": -2.0,
    # Weights and biases uniform in +-1/sqrt(fan_in), as the zoo's run (ortho_init=False): the first mean actions
    # differ between states instead of all starting near zero. HalfCheetah-v5 1M, seeds 0/1/2: 6115 / 6108 /
    # 4337 with it, 5620 / 5787 / 4791 with orthogonal initialisation.
    "initialization": "uniform",
    # Short rollouts, many small epochs at a low, constant rate and a tight clip: frequent, conservative updates
    # that do not collapse the policy of a fast-moving gait.
    "rollouts": 512,
    "mini_batches": 8,
    "learning_epochs": 20,
    "learning_rate": 2.0633e-5,
    "learning_rate_scheduler": "constant",
    "ratio_clip": 0.1,
    "entropy_loss_scale": 0.000401762,
    "value_loss_scale": 0.58096,
    "grad_norm_clip": 0.8,
    # A 0.98 discount (horizon ~50 steps) is enough for a running gait and lowers the variance of the returns.
    "discount_factor": 0.98,
    "gae_lambda": 0.92,
}
"""PPO on HalfCheetah and Ant (any version): the zoo's tuned HalfCheetah values, over the family's."""

FAMILIES: dict[str, tuple[tuple[str, ...], dict[str, dict[str, Any]]]] = {
    "MuJoCo locomotion": (
        ("Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "Swimmer", "Walker2d"),
        MUJOCO_LOCOMOTION,
    ),
}
"""Family name -> (task names without their ``-vN`` suffix, preset)."""

TASKS: dict[str, dict[str, dict[str, Any]]] = {
    "HalfCheetah": {"ppo": HALFCHEETAH_PPO},
    # Ant-v5 PPO 1M, seed 0: 1918 with HalfCheetah's values, 602 with the family's (near the zoo's Ant-v3 setting,
    # SB3's defaults with normalisation, which the zoo reports at 1327): chosen for Ant by that measurement.
    "Ant": {"ppo": HALFCHEETAH_PPO},
}
"""Task name without its ``-vN`` suffix -> its own tuned values, applied over its family's preset. The
targets of the benchmark against the zoo's tuned results (HalfCheetah, Ant) carry their own; every other
task of the family trains on the family's values alone."""


def preset_for(env_id: str, algo: str | None = None) -> tuple[str, dict[str, dict[str, Any]]] | None:
    """The preset in force for ``env_id``: its own, else its family's (with the task's tuned values), else None.

    Args:
        env_id: Gymnasium id, e.g. ``"HalfCheetah-v5"``.
        algo: The agent the description is for: a task's tuned values are named only when they are its
            (or when None).

    Returns:
        ``(what it is for, preset)``, e.g. ``("the MuJoCo locomotion family", {...})``.
    """
    if env_id in PRESETS:
        return env_id, PRESETS[env_id]
    name = env_id.rsplit("-v", 1)[0]
    for family, (names, preset) in FAMILIES.items():
        if name in names:
            if name not in TASKS:
                return f"the {family} family", preset
            tuned = TASKS[name]
            merged = {agent: {**preset.get(agent, {}), **tuned.get(agent, {})} for agent in {**preset, **tuned}}
            if algo is not None and algo not in tuned:
                return f"the {family} family", merged
            return f"the {family} family with {name}'s tuned {', '.join(a.upper() for a in tuned)}", merged
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


def preset_from_args(args: Sequence[str]) -> bool:
    """Whether a ``train`` command line keeps its env's preset (no ``--no-preset``).

    Args:
        args: Command-line arguments without the program name.

    Returns:
        False when the last of ``--preset`` / ``--no-preset`` is ``--no-preset``.
    """
    flags = [arg for arg in args if arg in ("--preset", "--no-preset")]
    return not flags or flags[-1] == "--preset"


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
    found = preset_for(env_id, algo)
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
