"""The Warp agents behind the trainer's torch-tensor environment boundary (``gaussrl train --backend warp``).

:class:`WarpAgent` takes and returns torch tensors like the torch agents (the Gymnasium
environments of :mod:`gaussrl.envs` speak torch) and converts at the boundary: through NumPy
on the CPU, with ``wp.from_torch``/``wp.to_torch`` on CUDA. Checkpoint state goes out as torch
tensors (so :mod:`gaussrl.io.checkpoint` writes it without pickle) and comes back as NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import warp as wp
from gymnasium import spaces

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.agents.warp import PPO, SAC, WarpStep
from gaussrl.agents.warp.networks import QMLP, GaussianMLPPolicy, ValueMLP
from gaussrl.envs.gymnasium import Step, TorchVecEnv

if TYPE_CHECKING:
    from gaussrl.trainer.loop import TrainConfig

f32 = wp.float32


def _to_warp(tensor: torch.Tensor, device: Any) -> wp.array:
    if tensor.device.type == "cpu":
        return wp.array(tensor.numpy(), dtype=f32, device=device)
    return wp.from_torch(tensor.contiguous().float(), dtype=f32)


def _to_torch(array: wp.array, device: torch.device) -> torch.Tensor:
    if str(array.device) == "cpu":
        return torch.from_numpy(array.numpy().copy()).to(device)
    return wp.to_torch(array).clone().to(device)


def _tensors(tree: Any) -> Any:
    """NumPy arrays to torch tensors, through nested dicts and lists."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(tree))
    if isinstance(tree, dict):
        return {k: _tensors(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [_tensors(v) for v in tree]
    return tree


def _arrays(tree: Any) -> Any:
    """Torch tensors to NumPy arrays, through nested dicts and lists."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu().numpy()
    if isinstance(tree, dict):
        return {k: _arrays(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_arrays(v) for v in tree]
    return tree


class WarpAgent:
    """A Warp PPO or SAC agent with the torch agents' interface (``act``, ``observe``, ``act_eval``, state).

    Args:
        agent: The Warp agent.
        device: Torch device of the environment's tensors.
    """

    def __init__(self, agent: PPO | SAC, device: str | torch.device = "cpu") -> None:
        self.agent, self.device = agent, torch.device(device)
        self.warp_device = agent.device

    def act(self, observations: torch.Tensor) -> torch.Tensor:
        """Training actions (see the Warp agent's ``act``).

        Args:
            observations: Shape (N, num_observations).

        Returns:
            Actions (N, A).
        """
        return _to_torch(self.agent.act(_to_warp(observations, self.warp_device)), self.device)

    def observe(self, step: Step) -> dict[str, float]:
        """Pass a vector step to the Warp agent.

        Args:
            step: What the environment returned.

        Returns:
            The agent's update metrics, or an empty dict.
        """
        warp_step = WarpStep(
            observations=_to_warp(step.observations, self.warp_device),
            rewards=_to_warp(step.rewards, self.warp_device),
            terminated=step.terminated.cpu().numpy().reshape(-1),
            truncated=step.truncated.cpu().numpy().reshape(-1),
            final_observations=_to_warp(step.final_observations, self.warp_device),
        )
        return self.agent.observe(warp_step)

    def act_eval(
        self, observations: torch.Tensor, states: list[torch.Tensor], *, deterministic: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Evaluation actions.

        Args:
            observations: Shape (N, num_observations).
            states: Hidden states (empty: the Warp policies are feed-forward).
            deterministic: Mean actions instead of samples.

        Returns:
            Actions and ``states``.
        """
        actions, _ = self.agent.act_eval(_to_warp(observations, self.warp_device), [], deterministic=deterministic)
        return _to_torch(actions, self.device), states

    def eval_states(self, batch: int) -> list[torch.Tensor]:
        """No hidden states.

        Args:
            batch: Number of environments.

        Returns:
            An empty list.
        """
        return []

    def state(self) -> dict[str, Any]:
        """The Warp agent's state with its arrays as torch tensors.

        Returns:
            Nested dicts of tensors and JSON values.
        """
        return _tensors(self.agent.state())  # type: ignore[no-any-return]

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: Nested dicts of tensors and JSON values.
        """
        self.agent.load_state(_arrays(state))


def build_warp_ppo(
    config: PPOConfig,
    observation_space: spaces.Space,  # type: ignore[type-arg]
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
    sizes = config.hidden_sizes
    policy = GaussianMLPPolicy(
        observation_space, action_space, hidden_sizes=sizes, initial_log_std=config.initial_log_std, device=device,
        seed=seed,
    )  # fmt: skip
    value = ValueMLP(observation_space, hidden_sizes=sizes, device=device, seed=seed + 1)
    per_update = config.rollouts * num_envs
    total_updates = -(-total_timesteps // per_update) if total_timesteps else None
    return PPO(policy=policy, value=value, config=config, num_envs=num_envs, total_updates=total_updates, seed=seed)


def build_warp_sac(
    config: SACConfig,
    observation_space: spaces.Space,  # type: ignore[type-arg]
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
