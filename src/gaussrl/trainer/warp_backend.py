"""The Warp agents behind the trainer's environment boundary (``gaussrl train --backend warp``).

The Gymnasium environments run on the host; :class:`WarpArrayAgent` takes and returns NumPy
arrays and moves them to and from the agent's Warp device, and :class:`WarpAgent` puts it behind
the torch-tensor ``Agent`` protocol of the trainer. Checkpoint state goes out as torch tensors (so
:mod:`gaussrl.io.checkpoint` writes it without pickle) and is read back with ``np.asarray``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import warp as wp
from gymnasium import spaces

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.agents.warp import PPO, SAC, WarpStep
from gaussrl.agents.warp.networks import QMLP, GaussianMLPPolicy, ValueMLP
from gaussrl.envs.gymnasium import Step, TorchVecEnv

if TYPE_CHECKING:
    from gaussrl.trainer.loop import TrainConfig

f32 = wp.float32

# A training run's output is the trainer's (progress bar, evaluations, summary): Warp's start-up banner
# and its line per loaded kernel module would bury it. Warnings and errors still print.
wp.config.log_level = wp.LOG_WARNING


def _warp(values: Any, device: Any) -> wp.array:
    return wp.array(np.asarray(values, np.float32), dtype=f32, device=device)


def _tensors(tree: Any) -> Any:
    """NumPy arrays to torch tensors, through nested dicts and lists."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(tree))
    if isinstance(tree, dict):
        return {k: _tensors(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [_tensors(v) for v in tree]
    return tree


class WarpArrayAgent:
    """A Warp PPO or SAC agent seen through NumPy: ``act``, ``observe``, ``act_eval``, ``eval_states``, state.

    The environment lives on the host, so its arrays cross to the agent's device here (one copy
    each way per step); everything else stays on the device.

    Args:
        agent: The Warp agent.
    """

    def __init__(self, agent: PPO | SAC) -> None:
        self.agent, self.device = agent, agent.device

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Training actions (see the Warp agent's ``act``).

        Args:
            observations: Shape (N, num_observations).

        Returns:
            Actions (N, A), float32.
        """
        actions: np.ndarray = self.agent.act(_warp(observations, self.device)).numpy().copy()
        return actions

    def observe(self, step: Any) -> dict[str, float]:
        """Pass a vector step (NumPy ``observations``, ``rewards``, ``terminated``, ...) to the Warp agent.

        Args:
            step: The environment's answer, with the fields of :class:`gaussrl.envs.gymnasium.Step`.

        Returns:
            The agent's update metrics, or an empty dict.
        """
        observations = _warp(step.observations, self.device)
        terminated = np.asarray(step.terminated, bool).reshape(-1)
        truncated = np.asarray(step.truncated, bool).reshape(-1)
        # Where no episode ended, the final observations are the observations: one copy to the device, not two.
        ended = terminated.any() or truncated.any()
        warp_step = WarpStep(
            observations=observations,
            rewards=_warp(np.asarray(step.rewards).reshape(-1, 1), self.device),
            terminated=terminated,
            truncated=truncated,
            final_observations=_warp(step.final_observations, self.device) if ended else observations,
        )
        return self.agent.observe(warp_step)

    def act_eval(
        self, observations: np.ndarray, states: list[Any], *, deterministic: bool = True
    ) -> tuple[np.ndarray, list[Any]]:
        """Evaluation actions.

        Args:
            observations: Shape (N, num_observations).
            states: Hidden states (empty: the Warp policies are feed-forward).
            deterministic: Mean actions instead of samples.

        Returns:
            Actions and ``states``.
        """
        actions, _ = self.agent.act_eval(_warp(observations, self.device), [], deterministic=deterministic)
        result: np.ndarray = actions.numpy().copy()
        return result, states

    def eval_states(self, batch: int) -> list[Any]:
        """No hidden states.

        Args:
            batch: Number of environments.

        Returns:
            An empty list.
        """
        return []

    def state(self) -> dict[str, Any]:
        """The Warp agent's state: nested dicts of NumPy arrays and JSON values.

        Returns:
            The state.
        """
        return self.agent.state()

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned (arrays may come back as CPU torch tensors).

        Args:
            state: The state.
        """
        self.agent.load_state(state)

    def policy_arrays(self) -> PolicyArrays:
        """The policy under its torch twin's names, and the observation statistics (``gaussrl export``).

        Returns:
            The arrays.
        """
        return self.agent.policy_arrays()


class WarpAgent:
    """A :class:`WarpArrayAgent` behind the trainer's torch-tensor ``Agent`` protocol.

    Args:
        agent: The Warp agent.
        device: Torch device of the environment's tensors.
    """

    def __init__(self, agent: PPO | SAC, device: str | torch.device = "cpu") -> None:
        self.agent, self.device = WarpArrayAgent(agent), torch.device(device)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(array)).to(self.device)

    def act(self, observations: torch.Tensor) -> torch.Tensor:
        """See :meth:`WarpArrayAgent.act`.

        Args:
            observations: Shape (N, num_observations).

        Returns:
            Actions (N, A).
        """
        return self._tensor(self.agent.act(observations.detach().cpu().numpy()))

    def observe(self, step: Step) -> dict[str, float]:
        """See :meth:`WarpArrayAgent.observe`.

        Args:
            step: What the environment returned.

        Returns:
            The agent's update metrics, or an empty dict.
        """
        names = ("observations", "rewards", "terminated", "truncated", "final_observations")
        return self.agent.observe(SimpleNamespace(**{k: getattr(step, k).detach().cpu().numpy() for k in names}))

    def act_eval(
        self, observations: torch.Tensor, states: list[Any], *, deterministic: bool = True
    ) -> tuple[torch.Tensor, list[Any]]:
        """See :meth:`WarpArrayAgent.act_eval`.

        Args:
            observations: Shape (N, num_observations).
            states: Hidden states (empty).
            deterministic: Mean actions instead of samples.

        Returns:
            Actions and ``states``.
        """
        actions, states = self.agent.act_eval(observations.detach().cpu().numpy(), states, deterministic=deterministic)
        return self._tensor(actions), states

    def eval_states(self, batch: int) -> list[Any]:
        """No hidden states.

        Args:
            batch: Number of environments.

        Returns:
            An empty list.
        """
        return []

    def state(self) -> dict[str, Any]:
        """The Warp agent's state with its arrays as torch tensors (what the checkpoint writer takes).

        Returns:
            Nested dicts of tensors and JSON values.
        """
        return _tensors(self.agent.state())  # type: ignore[no-any-return]

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: Nested dicts of tensors and JSON values.
        """
        self.agent.load_state(state)

    def policy_arrays(self) -> PolicyArrays:
        """See :meth:`WarpArrayAgent.policy_arrays`.

        Returns:
            The arrays.
        """
        return self.agent.policy_arrays()


def build_warp_ppo(
    config: PPOConfig,
    observation_space: spaces.Space,
    action_space: spaces.Box,
    *,
    num_envs: int,
    device: str,
    seed: int = 0,
    total_timesteps: int | None = None,
) -> PPO:
    """Warp PPO with gaussrl's default MLP policy and value (those of the torch agents).

    Args:
        config: PPO hyperparameters (including network sizes).
        observation_space: Single-environment observation space.
        action_space: The normalised action Box.
        num_envs: Number of parallel environments.
        device: Warp device (``"cpu"``, ``"cuda:0"``).
        seed: Seed of the weights, the sampling and the shuffles.
        total_timesteps: Environment steps of the run (for the "linear" learning-rate schedule).

    Returns:
        The agent.
    """
    sizes, per_update = config.hidden_sizes, config.rollouts * num_envs
    policy = GaussianMLPPolicy(
        observation_space, action_space, hidden_sizes=sizes, activation=config.activation,
        initialization=config.initialization, initial_log_std=config.initial_log_std, device=device, seed=seed,
    )  # fmt: skip
    value = ValueMLP(
        observation_space, hidden_sizes=sizes, activation=config.activation, initialization=config.initialization,
        device=device, seed=seed + 1,
    )  # fmt: skip
    total_updates = -(-total_timesteps // per_update) if total_timesteps else None
    return PPO(policy=policy, value=value, config=config, num_envs=num_envs, total_updates=total_updates, seed=seed)


def build_warp_sac(
    config: SACConfig,
    observation_space: spaces.Space,
    action_space: spaces.Box,
    *,
    num_envs: int,
    device: str,
    seed: int = 0,
) -> SAC:
    """Warp SAC with a tanh-squashed MLP Gaussian policy and twin MLP critics (those of the torch agents).

    Args:
        config: SAC hyperparameters (including network sizes).
        observation_space: Single-environment observation space.
        action_space: The normalised action Box.
        num_envs: Number of parallel environments.
        device: Warp device.
        seed: Seed of the weights, the sampling and the replay draws.

    Returns:
        The agent.
    """
    policy = GaussianMLPPolicy(
        observation_space,
        action_space,
        hidden_sizes=config.hidden_sizes,
        activation="relu",
        state_dependent_std=True,
        squash_actions=True,
        device=device,
        seed=seed,
    )
    critics = [
        QMLP(observation_space, action_space, hidden_sizes=config.hidden_sizes, device=device, seed=seed + 1 + i)
        for i in range(4)
    ]
    return SAC(
        policy=policy,
        critics=(critics[0], critics[1]),
        target_critics=(critics[2], critics[3]),
        config=config,
        num_envs=num_envs,
        seed=seed,
    )


def build_warp_agent(config: TrainConfig, env: TorchVecEnv) -> WarpAgent:
    """The configured Warp agent for ``env``, behind the torch-tensor boundary.

    Args:
        config: The run (``backend="warp"``).
        env: The training environment.

    Returns:
        The wrapped agent.
    """
    spaces_ = (env.observation_space, env.action_space)
    common: dict[str, Any] = {"num_envs": env.num_envs, "device": config.device, "seed": config.seed}
    agent: PPO | SAC
    if config.algo == "ppo":
        agent = build_warp_ppo(config.ppo, *spaces_, total_timesteps=config.timesteps, **common)
    else:
        agent = build_warp_sac(config.sac, *spaces_, **common)
    return WarpAgent(agent, config.device)
