"""The trainer's backends: which agents train, and where their arrays meet the environment.

The boundary is NumPy. The trainer's loop and evaluator step a :class:`~gaussrl.envs.TorchVecEnv`
(CPU torch tensors) and drive an agent through the ``Agent`` protocol of
:mod:`gaussrl.trainer.evaluate`. The torch agents implement it directly. An agent of any other
backend implements :class:`ArrayAgent`, the same six methods over NumPy arrays, and one for export:

- ``act(observations) -> actions``: (N, num_observations) float32 in, (N, A) in [-1, 1] out;
- ``observe(step: ArrayStep) -> metrics``: the environment's answer as NumPy arrays;
- ``act_eval(observations, states, *, deterministic) -> (actions, states)`` and ``eval_states(batch)``;
- ``state()`` / ``load_state(state)``: nested dicts/lists of NumPy arrays, numbers, strings and
  None (checkpointed as safetensors + JSON; arrays come back as CPU torch tensors, which
  ``np.asarray`` reads without a copy);
- ``policy_arrays() -> PolicyArrays``: the policy under its torch twin's names (``gaussrl export``).

:class:`ArrayBoundary` wraps an ``ArrayAgent`` into the torch protocol (zero-copy conversions on
CPU). To add a backend: write its agents with the ``ArrayAgent`` methods, then add a branch to
:func:`build_array_agent`; the loop, evaluation, metrics, checkpoints, ``--resume`` and
``gaussrl eval`` and ``gaussrl export`` need no change.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np
import torch

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.core.errors import ConfigError
from gaussrl.envs.gymnasium import Step, TorchVecEnv
from gaussrl.envs.step import ArrayStep
from gaussrl.trainer.config import BACKENDS, ONE_THREAD_XLA_FLAGS, Backend


class ArrayAgent(Protocol):
    """What the trainer needs from an agent of a non-torch backend: the ``Agent`` methods over NumPy."""

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Sample training actions."""
        ...

    def observe(self, step: ArrayStep) -> dict[str, float]:
        """Store a transition and learn when due."""
        ...

    def act_eval(
        self, observations: np.ndarray, states: list[Any], *, deterministic: bool = True
    ) -> tuple[np.ndarray, list[Any]]:
        """Act for evaluation."""
        ...

    def eval_states(self, batch: int) -> list[Any]:
        """Initial evaluation hidden states."""
        ...

    def state(self) -> dict[str, Any]:
        """Checkpoint state."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore checkpoint state."""
        ...

    def policy_arrays(self) -> PolicyArrays:
        """The policy's parameters and observation statistics under the torch twin's names."""
        ...


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


class ArrayBoundary:
    """An :class:`ArrayAgent` seen through the trainer's torch ``Agent`` protocol.

    Args:
        agent: The wrapped agent (``self.agent``).
    """

    def __init__(self, agent: ArrayAgent) -> None:
        self.agent = agent

    def act(self, observations: torch.Tensor) -> torch.Tensor:
        """See ``Agent.act``."""
        return torch.from_numpy(np.array(self.agent.act(_numpy(observations))))

    def observe(self, step: Step) -> dict[str, float]:
        """See ``Agent.observe``."""
        fields = (step.observations, step.rewards, step.terminated, step.truncated, step.final_observations)
        return self.agent.observe(ArrayStep(*(_numpy(t) for t in fields)))

    def act_eval(
        self, observations: torch.Tensor, states: list[Any], *, deterministic: bool = True
    ) -> tuple[torch.Tensor, list[Any]]:
        """See ``Agent.act_eval``."""
        actions, states = self.agent.act_eval(_numpy(observations), states, deterministic=deterministic)
        return torch.from_numpy(np.array(actions)), states

    def eval_states(self, batch: int) -> list[Any]:
        """See ``Agent.eval_states``."""
        return self.agent.eval_states(batch)

    def state(self) -> dict[str, Any]:
        """See ``Agent.state``."""
        return self.agent.state()

    def load_state(self, state: dict[str, Any]) -> None:
        """See ``Agent.load_state``."""
        self.agent.load_state(state)

    def policy_arrays(self) -> PolicyArrays:
        """See :meth:`ArrayAgent.policy_arrays`."""
        return self.agent.policy_arrays()


def build_array_agent(
    backend: Backend,
    algo: str,
    env: TorchVecEnv,
    *,
    agents: tuple[PPOConfig, SACConfig],
    seed: int,
    threads: int,
    total_timesteps: int,
) -> ArrayBoundary:
    """The agent of a non-torch backend, wrapped for the trainer.

    Args:
        backend: ``"jax"`` (``"warp"`` is built by :func:`gaussrl.trainer.warp_backend.build_warp_agent`).
        algo: ``"ppo"`` or ``"sac"``.
        env: The training environment.
        agents: The PPO and SAC hyperparameters.
        seed: Seed of the parameters and the sampling.
        threads: CPU threads; 1 sets XLA:CPU to one thread unless ``XLA_FLAGS`` is already set.
        total_timesteps: Environment steps of the run (PPO's "linear" schedule).

    Returns:
        The wrapped agent.

    Raises:
        ConfigError: For a backend without agents.
    """
    if backend != "jax":
        raise ConfigError(
            f"backend={backend!r} has no agents yet; use --backend torch or --backend jax (one of {BACKENDS})."
        )
    if threads == 1:
        os.environ.setdefault("XLA_FLAGS", ONE_THREAD_XLA_FLAGS)
    spaces = (env.observation_space, env.action_space)
    if algo == "sac":
        from gaussrl.agents.jax.sac import SAC  # noqa: PLC0415 (JAX is imported only when asked for)

        return ArrayBoundary(SAC(*spaces, config=agents[1], num_envs=env.num_envs, seed=seed))
    from gaussrl.agents.jax.ppo import PPO  # noqa: PLC0415

    per_update = agents[0].rollouts * env.num_envs
    total_updates = -(-total_timesteps // per_update)
    return ArrayBoundary(PPO(*spaces, config=agents[0], num_envs=env.num_envs, seed=seed, total_updates=total_updates))
