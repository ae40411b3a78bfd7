"""Evaluation episodes on an environment of their own, deterministic (mean actions) by default; torch agents."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.agents.torch.recurrent import reset_states
from gaussrl.envs.gymnasium import Step, TorchVecEnv, make_vector_env
from gaussrl.envs.step import NonFinite

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation episodes use seeds of their own stream (``seed + EVAL_SEED_OFFSET``)."""


class Agent(Protocol):
    """What the trainer needs from an agent (``PPO`` and ``SAC`` provide it)."""

    def act(self, observations: torch.Tensor) -> torch.Tensor:
        """Sample training actions."""
        ...

    def observe(self, step: Step) -> dict[str, float]:
        """Store a transition and learn when due."""
        ...

    def act_eval(
        self, observations: torch.Tensor, states: list[torch.Tensor], *, deterministic: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Act for evaluation."""
        ...

    def eval_states(self, batch: int) -> list[torch.Tensor]:
        """Initial evaluation hidden states."""
        ...

    def state(self) -> dict[str, Any]:
        """Checkpoint state."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore checkpoint state."""
        ...

    def policy_arrays(self) -> PolicyArrays:
        """The policy's parameters and observation statistics under the torch twin's names (``gaussrl export``)."""
        ...


class Evaluator:
    """Runs ``episodes`` episodes in parallel, one per sub-environment, on fixed seeds.

    Every evaluation replays the same initial states, so successive evaluations are comparable.

    Args:
        env_id: Gymnasium id.
        episodes: Number of episodes (and sub-environments).
        seed: The run's seed.
        device: Device of the tensors.
        nonfinite: NaN/inf from the environment: ``"stop"`` raises ``NonFiniteDataError``; ``"skip"``
            leaves the episode out (its return is NaN).
    """

    def __init__(
        self, env_id: str, episodes: int, seed: int, device: str | torch.device = "cpu", nonfinite: NonFinite = "stop"
    ) -> None:
        self.episodes = episodes
        self.env = TorchVecEnv(
            make_vector_env(env_id, episodes),
            seed=seed + EVAL_SEED_OFFSET,
            device=device,
            name=f"{env_id} (evaluation)",
            nonfinite=nonfinite,
        )

    def run(self, agent: Agent, *, deterministic: bool = True) -> np.ndarray:
        """Play one episode per sub-environment without changing the caller's torch RNG stream.

        Args:
            agent: The agent.
            deterministic: Mean actions (True) or samples.

        Returns:
            The episode returns, shape (episodes,); NaN for an episode left out (``nonfinite="skip"``).
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.env.seed)
            self.env.episodes[:] = 0
            observations = self.env.reset()
            states = agent.eval_states(self.episodes)
            returns = np.zeros(self.episodes)
            active = np.ones(self.episodes, dtype=bool)
            while active.any():
                actions, states = agent.act_eval(observations, states, deterministic=deterministic)
                step = self.env.step(actions)
                returns += step.rewards.cpu().numpy().reshape(-1) * active
                if step.skipped is not None:
                    returns[step.skipped & active] = np.nan
                done = (step.terminated | step.truncated).cpu()
                active &= ~done.numpy().reshape(-1)
                states = reset_states(states, done.to(observations.device))
                observations = step.observations
            self.env.pop_episodes()
        return returns

    def close(self) -> None:
        """Close the environments."""
        self.env.close()
